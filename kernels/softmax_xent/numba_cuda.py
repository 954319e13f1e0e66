"""Softmax cross-entropy on the GPU in Python: Numba CUDA kernels, one block per row of the logits.

A row (C classes: 10 for LeNet, 1000 for ImageNet) is read by the block's threads in strides of the
block size, so the loads of a warp are consecutive (coalesced). The row maximum and the sum of
exponentials are tree reductions in one shared array; thread 0 then writes the loss. The exponentials
are recomputed in the normalising pass rather than stored: a second read of a row that is still in L1/L2
is cheaper than a scratch array in global memory. The backward kernel has the same shape, so the row's
target and gradient are read once per block rather than once per element.
"""

from __future__ import annotations

import math

import numba

from kernels.cuda_tools import compile_kernel, contiguous, kernel_factory, launch
from kernels.device_arrays import empty
from kernels.registry import register

try:
    from numba import cuda
except ImportError:  # numba-cuda is optional: the registry then reports the backend unavailable
    cuda = None

THREADS = 128  # a power of two (the tree reductions halve it); C is usually 10..1000


@kernel_factory("void({t}[:, ::1], int64[::1], int64, {t}[::1], {t}[:, ::1])")
def _forward_factory(T, threads):
    def softmax_xent_forward(logits, targets, ignore_index, losses, probs):
        buf = cuda.shared.array(threads, T)
        row, tid = cuda.blockIdx.x, cuda.threadIdx.x
        C = logits.shape[1]
        # row maximum; a NaN wins every comparison so that it propagates like NumPy's max
        best = -math.inf
        for j in range(tid, C, threads):
            v = logits[row, j]
            if v > best or v != v:
                best = v
        buf[tid] = best
        cuda.syncthreads()
        step = threads // 2
        while step > 0:
            if tid < step:
                other = buf[tid + step]
                if other > buf[tid] or other != other:
                    buf[tid] = other
            cuda.syncthreads()  # this level is written before the next one reads it
            step //= 2
        row_max = buf[0]
        cuda.syncthreads()  # every thread has read the maximum before buf is reused for the sum
        total = T(0)
        for j in range(tid, C, threads):
            total += math.exp(logits[row, j] - row_max)
        buf[tid] = total
        cuda.syncthreads()
        step = threads // 2
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()
            step //= 2
        total = buf[0]
        for j in range(tid, C, threads):
            probs[row, j] = math.exp(logits[row, j] - row_max) / total
        if tid == 0:
            target = targets[row]
            if target == ignore_index:
                losses[row] = T(0)
            elif 0 <= target < C:
                losses[row] = math.log(total) - (logits[row, target] - row_max)
            else:  # unchecked (inside a graph capture): a NaN loss instead of an out-of-bounds read
                losses[row] = math.nan

    return softmax_xent_forward


@kernel_factory("void({t}[:, ::1], int64[::1], {t}[::1], int64, {t}[:, ::1])")
def _backward_factory(T, threads):
    def softmax_xent_backward(probs, targets, grad_losses, ignore_index, dlogits):
        row, tid = cuda.blockIdx.x, cuda.threadIdx.x
        target = targets[row]
        g = T(0) if target == ignore_index else grad_losses[row]
        for j in range(tid, probs.shape[1], threads):
            p = probs[row, j]
            dlogits[row, j] = ((p - T(1)) if j == target else p) * g

    return softmax_xent_backward





@register("softmax_xent_forward", "numba_cuda", "v1_block_per_row", device="cuda", default=True)
def softmax_xent_forward(logits, targets, ignore_index, threads=None):
    """One block per row: shared-memory tree max and sum, thread 0 writes the loss, all write the softmax;
    ``threads`` per block, THREADS (read at each call) when None."""
    threads = threads or THREADS
    losses = empty(logits.shape[:1], logits.dtype, like=logits)
    probs = empty(logits.shape, logits.dtype, like=logits)
    if logits.shape[0]:  # one block per row: nothing to launch for an empty batch
        kernel = compile_kernel(_forward_factory, logits.dtype, threads)
        launch(kernel, logits.shape[0], threads, contiguous(logits), targets, ignore_index, losses, probs)
    return losses, probs


@register("softmax_xent_backward", "numba_cuda", "v1_block_per_row", device="cuda", default=True)
def softmax_xent_backward(probs, targets, grad_losses, ignore_index, threads=None):
    """One block per row: (softmax - onehot) * g with the row's target and g read once; ``threads`` as in
    the forward."""
    threads = threads or THREADS
    dlogits = empty(probs.shape, probs.dtype, like=probs)
    if probs.shape[0]:
        kernel = compile_kernel(_backward_factory, probs.dtype, threads)
        launch(kernel, probs.shape[0], threads, contiguous(probs), targets, contiguous(grad_losses), ignore_index,
               dlogits)
    return dlogits


KERNELS = [
    (factory(numba.float32, THREADS), factory.signature.format(t="float32"), True)
    for factory in (_forward_factory, _backward_factory)
]
