"""CUDA graphs: device work recorded once and replayed with a single launch.

A small CNN's training step is a few hundred kernels of a few microseconds each; launched one by one
from Python, each costs more host time than the GPU spends on it, and the GPU waits. Captured into a CUDA
graph (CuPy's ``Stream.begin_capture``), the whole step replays with one launch and no Python in between.

What replay asks of the captured work:
- the same memory: a replay reads and writes the addresses the capture saw. Arrays made during the
  capture come from a memory pool owned by the graph, which nothing else allocates from; state that
  lives across replays (parameters, optimizer buffers, running statistics) must be updated in place.
- no host in the loop: reading a device value on the host (``item()``, ``bool()``, printing), copies
  between host and device and host-side random draws cannot be captured; the capture raises
  ``CaptureError`` saying so.
- values that change between replays (a scheduled learning rate, step counts) must sit in device memory
  written before each replay: a captured kernel keeps the Python numbers it was launched with.

Under Numba's CUDA simulator there are no graphs. ``capture`` runs the work once with the host-access
checks armed (``kernels.device_arrays.check_host_access``) and the first ``replay`` after it does nothing;
later replays run the work again and copy its results into the arrays the capture returned, so callers
see the same sequence through the same arrays as on a GPU.
"""

from __future__ import annotations

from kernels import device_arrays
from kernels.device_arrays import CaptureError

__all__ = ["CaptureError", "Graph"]


class Graph:
    """``outputs = graph.capture(fn)`` records ``fn``'s device work without running it; each
    ``graph.replay()`` runs it, rewriting ``outputs`` in place. ``fn`` returns a device array or a
    tuple/list of them, whose values are defined after the first replay."""

    def __init__(self):
        self._graph = self._fn = self._outputs = None
        self._ran_in_capture = False

    def capture(self, fn):
        if self._outputs is not None:
            raise RuntimeError("this graph already holds a capture; make a new Graph to capture again")
        if device_arrays.simulating():  # running fn is the only way to learn its outputs: replay 1 is done
            self._fn, self._ran_in_capture = fn, True
            self._outputs = _simulated_run(fn)
            return self._outputs
        import cupy

        self._pool = cupy.cuda.MemoryPool()  # private: replays own these addresses for the graph's lifetime
        self._stream = cupy.cuda.Stream(non_blocking=True)
        self._stream.wait_event(cupy.cuda.get_current_stream().record())  # after the work queued so far
        with self._stream, cupy.cuda.using_allocator(self._pool.malloc):
            self._stream.begin_capture()
            try:
                outputs = fn()
            except BaseException as error:
                _abandon_capture(self._stream)
                if isinstance(error, CaptureError) or not _is_capture_violation(error):
                    raise
                raise CaptureError(
                    f"the captured work did something a CUDA graph cannot hold ({error}); a captured step must not "
                    "read device values on the host (item(), bool(), printing), copy between host and device, or "
                    "draw random numbers on the host") from error
            self._graph = self._stream.end_capture()
        self._outputs = outputs
        return outputs

    def replay(self):
        """Run the captured work again on the current stream, in order with the work queued before it."""
        if self._outputs is None:
            raise RuntimeError("replay() before capture(): nothing has been recorded")
        if self._graph is not None:
            import cupy

            self._graph.launch(cupy.cuda.get_current_stream())
            return
        if self._ran_in_capture:
            self._ran_in_capture = False
            return
        for captured, fresh in zip(_flat(self._outputs), _flat(_simulated_run(self._fn))):
            captured[...] = fresh


def _simulated_run(fn):
    device_arrays.set_simulated_capture(True)
    try:
        return fn()
    finally:
        device_arrays.set_simulated_capture(False)


def _flat(outputs):
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def _abandon_capture(stream):
    """End a capture that failed, so the stream can be used again (the partial graph is dropped)."""
    try:
        stream.end_capture()
    except Exception:  # an invalidated capture reports its invalidation here: the error that matters is raised
        pass


def _is_capture_violation(error) -> bool:
    text = str(error)
    return "Capture" in text or "capturing" in text or type(error).__name__ == "CUDARuntimeError"
