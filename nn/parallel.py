"""Data-parallel training across processes, with ``torch.distributed``'s names.

    from nn import parallel
    parallel.init_process_group()              # under mpiexec, torchrun-style variables, or alone (world size 1)
    model = parallel.DistributedDataParallel(model)
    loss.backward(); model.sync_gradients(); optimizer.step()

Where rank and world size come from:

- ``mpiexec -n P ...``: from MPI (mpi4py); every collective on CPU tensors goes through ``MPI_Allreduce``/
  ``MPI_Bcast``, and CUDA tensors through an NCCL communicator whose unique id rank 0 broadcasts over MPI.
- ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set (torchrun style) without an MPI launch: CUDA tensors use NCCL, the
  unique id handed out by rank 0 over TCP at ``MASTER_ADDR:MASTER_PORT``. CPU collectives need MPI, so a CPU job
  with ``WORLD_SIZE`` > 1 must be launched by ``mpiexec`` (the variables are then checked against MPI's view).
- neither: one process, world size 1; collectives return their input and MPI is never imported.

The communicator is picked by where a tensor lives (NumPy -> MPI, CuPy -> NCCL), so one group serves both.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from contextlib import contextmanager

import numpy as np

import tensorlib as tl
from nn.module import Module
from tensorlib.device import array_module

# Variables set by the MPI launchers for each process they start (Open MPI, PMIx, MPICH/Hydra, Slurm's PMI).
_MPI_LAUNCH_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK")


class _Group:
    """The process group: rank, world size and the communicators (MPI for host arrays, NCCL for device arrays)."""

    def __init__(self, rank, world_size, local_rank, mpi_comm, device):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.mpi, self.device, self.nccl = mpi_comm, device, None

    # ---- the one place that differs between MPI and NCCL -----------------------------------------------
    def all_reduce_sum(self, array):
        """Sum ``array`` (contiguous) across ranks in place."""
        if array.size == 0:
            return
        if self._uses_nccl(array):
            import cupy

            self.nccl.allReduce(array.data.ptr, array.data.ptr, array.size, _nccl_dtype(array.dtype), 0,  # 0: sum
                                cupy.cuda.get_current_stream().ptr)
        elif self._has_mpi("all_reduce"):
            from mpi4py import MPI

            self.mpi.Allreduce(MPI.IN_PLACE, _host_buffer(array), op=MPI.SUM)

    def broadcast(self, array, src):
        if array.size == 0:
            return
        if self._uses_nccl(array):
            import cupy

            self.nccl.bcast(array.data.ptr, array.size, _nccl_dtype(array.dtype), src,
                            cupy.cuda.get_current_stream().ptr)
        elif self._has_mpi("broadcast"):
            self.mpi.Bcast(_host_buffer(array), root=src)

    def _uses_nccl(self, array):
        return self.nccl is not None and array_module(array) is not np

    def _has_mpi(self, what):
        """Whether to call MPI; False in a one-process group without it (nothing to exchange)."""
        if self.mpi is not None:
            return True
        if self.world_size > 1:
            raise RuntimeError(f"{what} of host arrays across {self.world_size} processes needs MPI: launch with "
                               "mpiexec (pip install tensorlib[dist])")
        return False


_group: _Group | None = None


def _host_buffer(array):
    """The NumPy array MPI reads and writes (device arrays without NCCL would need a copy: refuse them)."""
    if not isinstance(array, np.ndarray):
        raise RuntimeError("collectives on CUDA tensors need the NCCL backend: init_process_group(device=\"cuda\")")
    return array


def _nccl_dtype(dtype):
    from cupy.cuda import nccl

    table = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64, "float16": nccl.NCCL_FLOAT16,
             "int32": nccl.NCCL_INT32, "int64": nccl.NCCL_INT64, "uint8": nccl.NCCL_UINT8, "int8": nccl.NCCL_INT8}
    if str(dtype) not in table:
        raise TypeError(f"NCCL collectives do not support dtype {dtype}")
    return table[str(dtype)]


def _launched_by_mpi() -> bool:
    return any(name in os.environ for name in _MPI_LAUNCH_VARIABLES)


def init_process_group(backend: str | None = None, device: str | None = None):
    """Join the job's process group (see the module docstring for where rank and world size come from).

    ``backend`` is "mpi", "nccl" or None: NCCL when ``device`` is "cuda" (None: cuda when usable), else MPI.
    With NCCL, this process uses GPU ``LOCAL_RANK`` (one rank per GPU; more ranks on a machine than GPUs is an
    error). Without the NCCL library, a one-process group on cuda makes no communicator (its collectives are
    no-ops), and an explicit ``backend="nccl"`` or several processes raise an error that says what to install.
    """
    global _group
    if _group is not None:
        raise RuntimeError("init_process_group was already called; call destroy_process_group first")
    if backend not in (None, "mpi", "nccl"):
        raise ValueError(f"backend must be 'mpi', 'nccl' or None, got {backend!r}")
    if device in (None, "auto"):
        device = "cuda" if tl.cuda_unavailable_reason() is None else "cpu"
    explicit_nccl = backend == "nccl"
    backend = backend or ("nccl" if device == "cuda" else "mpi")

    mpi_comm, rank, world_size, local_rank = None, 0, 1, 0
    if _launched_by_mpi():
        try:
            from mpi4py import MPI
        except ImportError:
            raise RuntimeError("launched by mpiexec but mpi4py is not installed: pip install tensorlib[dist]") from None
        mpi_comm = MPI.COMM_WORLD
        rank, world_size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        local_rank = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    if "WORLD_SIZE" in os.environ:
        env_rank, env_size = int(os.environ.get("RANK", 0)), int(os.environ["WORLD_SIZE"])
        if mpi_comm is not None and (env_rank, env_size) != (rank, world_size):
            raise RuntimeError(f"RANK={env_rank}, WORLD_SIZE={env_size} disagree with MPI's rank {rank} "
                               f"of {world_size}")
        rank, world_size = env_rank, env_size
        local_rank = int(os.environ.get("LOCAL_RANK", local_rank))
    if not 0 <= rank < world_size:
        raise RuntimeError(f"rank {rank} is outside world size {world_size}")

    group = _Group(rank, world_size, local_rank, mpi_comm, device)
    if backend == "nccl" and not nccl_available():
        # one process needs no communicator (its collectives are no-ops); an explicit request, or several
        # processes with device arrays to exchange, do
        if explicit_nccl or world_size > 1:
            raise RuntimeError("the NCCL backend needs the NCCL library, which CuPy did not find: "
                               "pip install nvidia-nccl-cu13 (or put libnccl.so.2 on the library path)")
        backend = "mpi" if mpi_comm is not None else None
    if backend == "nccl":
        import cupy
        from cupy.cuda import nccl

        gpus = cupy.cuda.runtime.getDeviceCount()
        if world_size > 1 and local_rank >= gpus:  # NCCL refuses two ranks on one GPU, and obscurely
            raise RuntimeError(f"rank {rank} has local rank {local_rank} but this machine has {gpus} GPU(s); NCCL "
                               f"needs a GPU per rank: start at most {gpus} ranks per machine, or use device='cpu'")
        cupy.cuda.Device(local_rank % gpus).use()
        unique_id = nccl.get_unique_id() if rank == 0 else None
        if world_size > 1:
            unique_id = mpi_comm.bcast(unique_id, root=0) if mpi_comm is not None else _tcp_rendezvous(
                unique_id, rank, world_size)
        group.nccl = nccl.NcclCommunicator(world_size, unique_id, rank)
    elif world_size > 1 and mpi_comm is None:
        raise RuntimeError(f"WORLD_SIZE={world_size} on CPU needs MPI: launch with mpiexec -n {world_size}")
    _group = group


def nccl_available() -> bool:
    """Whether CuPy found the NCCL library (``cupy.cuda.nccl`` imports without it and says so here)."""
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", False))


def _tcp_rendezvous(unique_id, rank, world_size, timeout=300.0):
    """Hand rank 0's NCCL unique id to the other ranks over TCP at MASTER_ADDR:MASTER_PORT."""
    address = (os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", 29500)))
    if rank == 0:
        payload = json.dumps(list(unique_id)).encode()
        with socket.create_server(address) as server:
            server.settimeout(timeout)
            for _ in range(world_size - 1):
                connection, _ = server.accept()
                with connection:
                    connection.sendall(payload)
        return unique_id
    deadline = time.monotonic() + timeout
    while True:  # rank 0 may not be listening yet
        try:
            with socket.create_connection(address, timeout=timeout) as connection:
                chunks = []
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
            return tuple(json.loads(b"".join(chunks)))
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _current() -> _Group:
    if _group is None:
        raise RuntimeError("call nn.parallel.init_process_group() first")
    return _group


def is_initialized() -> bool:
    return _group is not None


def get_rank() -> int:
    """This process's rank (0 when no group is initialised)."""
    return _group.rank if _group is not None else 0


def get_world_size() -> int:
    """The number of processes (1 when no group is initialised)."""
    return _group.world_size if _group is not None else 1


def get_local_rank() -> int:
    """The rank among the processes on this machine: the GPU a rank uses."""
    return _group.local_rank if _group is not None else 0


def destroy_process_group():
    """Leave the group (MPI itself is finalised by mpi4py at exit)."""
    global _group
    _group = None


def _contiguous_apply(tensor, collective):
    """Run ``collective`` on a contiguous array of ``tensor.array`` and write the result back in place."""
    data = tensor.array if isinstance(tensor, tl.Tensor) else tensor
    xp = array_module(data)
    buffer = data if data.flags.c_contiguous else xp.ascontiguousarray(data)
    collective(buffer)
    if buffer is not data:
        data[...] = buffer


def all_reduce(tensor, op: str = "sum"):
    """Reduce ``tensor`` across ranks, in place on its data. ``op``: "sum" or "mean" (integers: floor division)."""
    if op not in ("sum", "mean"):
        raise ValueError(f"op must be 'sum' or 'mean', got {op!r}")
    group = _current()

    def reduce(buffer):
        group.all_reduce_sum(buffer)
        if op == "mean":
            _divide(buffer, group.world_size)

    _contiguous_apply(tensor, reduce)
    return tensor


def _divide(buffer, divisor):
    if buffer.dtype.kind in "iu":
        buffer //= divisor
    else:
        buffer /= divisor


def broadcast(tensor, src: int = 0):
    """Overwrite ``tensor``'s data on every rank with rank ``src``'s, in place."""
    group = _current()
    if not 0 <= src < group.world_size:
        raise ValueError(f"src must be a rank below {group.world_size}, got {src}")
    _contiguous_apply(tensor, lambda buffer: group.broadcast(buffer, src))
    return tensor


def barrier():
    """Wait until every rank gets here."""
    group = _current()
    if group.mpi is not None:
        group.mpi.Barrier()
    elif group.nccl is not None:
        all_reduce(tl.zeros(1, device="cuda"))


def collective_device() -> str:
    """Where small host-side values (flags, metric sums) must live to be all-reduced or broadcast: "cpu" when
    MPI carries host arrays, "cuda" in a torchrun-style NCCL job without MPI (only NCCL can carry them)."""
    group = _group
    return "cuda" if group is not None and group.mpi is None and group.nccl is not None else "cpu"


def broadcast_object(value, src: int = 0):
    """Rank ``src``'s JSON-serialisable ``value`` on every rank (e.g. a run's configuration)."""
    group = _group
    if group is None or group.world_size == 1:
        return value
    device = collective_device()
    payload = json.dumps(value).encode() if group.rank == src else b""
    length = broadcast(tl.tensor([len(payload)], dtype=tl.int64, device=device), src)
    buffer = tl.zeros(int(length.item()), dtype=tl.uint8, device=device)
    if group.rank == src:
        buffer = tl.tensor(np.frombuffer(payload, dtype=np.uint8), device=device)
    broadcast(buffer, src)
    return json.loads(bytes(buffer.numpy()).decode())


@contextmanager
def abort_on_error(one_line=()):
    """An exception on one rank ends the whole job: print "rank R failed: ..." and abort every process.

    Without it, the other ranks would wait for the failed one in their next collective forever. With a
    single process the exception propagates as usual. Without MPI (torchrun) the process exits with status 1
    and the launcher stops the others. The traceback is printed before, except for exceptions of the types
    in ``one_line`` (errors a program reports to its user as a message, say).
    """
    try:
        yield
    except (Exception, KeyboardInterrupt) as error:
        if get_world_size() == 1:
            raise
        if not isinstance(error, one_line):
            traceback.print_exc()
        print(f"rank {get_rank()} failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        if _group.mpi is not None:
            _group.mpi.Abort(1)
        os._exit(1)


# ---- DistributedDataParallel ---------------------------------------------------------------------------
class _Bucket:
    """Tensors of one dtype and device laid end to end in one flat array, so a bucket costs one collective."""

    def __init__(self, tensors):
        self.tensors = tensors
        sizes = [t.array.size for t in tensors]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.flat = array_module(tensors[0].array).empty(int(self.offsets[-1]), dtype=tensors[0].dtype)

    def views(self):
        for tensor, start, stop in zip(self.tensors, self.offsets[:-1], self.offsets[1:]):
            yield tensor, self.flat[start:stop].reshape(tensor.shape)


def _buckets(tensors, cap_bytes):
    """Consecutive runs of ``tensors`` grouped by (dtype, device), each run cut at ``cap_bytes``."""
    open_runs, buckets = {}, []
    for tensor in tensors:
        key = (tensor.dtype, tensor.device)
        run = open_runs.setdefault(key, [])
        if run and sum(t.array.nbytes for t in run) + tensor.array.nbytes > cap_bytes:
            buckets.append(_Bucket(run))
            run = open_runs[key] = []
        run.append(tensor)
    buckets += [_Bucket(run) for run in open_runs.values() if run]
    return buckets


class DistributedDataParallel(Module):
    """Replicates ``module`` on every rank and averages its gradients, as ``torch.nn.parallel.DistributedDataParallel``.

    - At construction, parameters and buffers are broadcast from rank 0, so every replica starts equal.
    - ``sync_gradients()``, called after ``loss.backward()`` and before ``optimizer.step()`` (the Trainer does
      it), packs the gradients into flat buckets of up to ``bucket_cap_mb`` MB (parameters in reverse order,
      as backward produces them), all-reduces each bucket once, divides by the world size and copies the
      averages back into each ``.grad``. With each rank's loss a mean over its own batch of equal size, the
      result is the gradient of the mean loss over the global batch. A parameter without a gradient on a rank
      contributes zeros there and gets the average. The reduction runs after backward, not overlapped with it.
    - BatchNorm normalises with each rank's own batch statistics (no synchronised BatchNorm). With
      ``broadcast_buffers`` (PyTorch's default), rank 0's buffers (running statistics) are broadcast before
      every training forward, so all replicas, and the checkpoint rank 0 writes, hold rank 0's; without it each
      rank keeps its own.
    - ``forward`` calls the wrapped module; ``state_dict``/``load_state_dict`` are the wrapped module's, with its
      keys (no "module." prefix, unlike PyTorch), so checkpoints load into the plain model.
    """

    def __init__(self, module, bucket_cap_mb: float = 25, broadcast_buffers: bool = True):
        super().__init__()
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        cap = int(bucket_cap_mb * 2**20)
        params = [p for p in module.parameters() if p.requires_grad]
        self._grad_buckets = _buckets(list(reversed(params)), cap)
        for bucket in _buckets(list(module.parameters()) + list(module.buffers()), cap):
            self._broadcast(bucket)
        self._buffer_buckets = _buckets(list(module.buffers()), cap) if broadcast_buffers else []

    @staticmethod
    def _broadcast(bucket):
        if _group is None:  # a plain single process: nothing to agree on
            return
        for tensor, view in bucket.views():
            view[...] = tensor.array
        _current().broadcast(bucket.flat, 0)
        for tensor, view in bucket.views():
            tensor.array[...] = view

    def forward(self, *args, **kwargs):
        if self.training:
            for bucket in self._buffer_buckets:
                self._broadcast(bucket)
        return self.module(*args, **kwargs)

    def sync_gradients(self):
        """Average the gradients over all ranks (bucketed all-reduce); a no-op in a one-process group."""
        group = _group
        if group is None:
            return
        for bucket in self._grad_buckets:
            for param, view in bucket.views():
                if param.grad is None:
                    view[...] = 0
                else:
                    view[...] = param.grad.array
            group.all_reduce_sum(bucket.flat)
            _divide(bucket.flat, group.world_size)
            for param, view in bucket.views():
                if param.grad is None:
                    param.grad = tl.Tensor._make(view.copy())
                else:
                    param.grad.array[...] = view

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        return self.module.state_dict(destination, prefix, keep_vars)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.module.load_state_dict(state_dict, strict, assign)
