"""Batch normalisation on the GPU in Python: Numba CUDA kernels on the (N, C, L) view.

Statistics are per channel, so each channel gets one block: its threads stride over the channel's
M = N*L values (consecutive threads read consecutive l, so loads coalesce within a sample's plane), keep
a private partial sum in a register, and combine the partials with a shared-memory tree. The variance is
a second pass over the channel (squared deviations from the mean just reduced), which keeps float32
accurate when |mean| >> std; the second read mostly hits L2. The backward reduction forms sum(dy) and
sum(dy * x_hat) in the same pass, in two shared arrays. The elementwise steps (normalising, the input
gradient) are separate kernels with one thread per element: a block per channel would leave most of the
GPU idle for the 16..64 channels of small CNNs, while the element grid fills it.
"""

from __future__ import annotations

import math

import numba

from kernels.cuda_tools import compile_kernel, contiguous, grid_1d, kernel_factory, launch
from kernels.device_arrays import empty
from kernels.registry import register

try:
    from numba import cuda
except ImportError:  # numba-cuda is optional: the registry then reports the backend unavailable
    cuda = None

REDUCE_THREADS = 256  # a power of two (the trees halve it)
ELEMENT_THREADS = 256
_A3 = "{t}[:, :, ::1]"
_V = "{t}[::1]"


@kernel_factory(f"void({_A3}, {{t}}, {_V}, {_V}, {_V})")
def _stats_factory(T, threads):
    def batchnorm_stats(x, eps, mean, var, inv_std):
        buf = cuda.shared.array(threads, T)
        c, tid = cuda.blockIdx.x, cuda.threadIdx.x
        L = x.shape[2]
        count = x.shape[0] * L
        acc = T(0)
        for k in range(tid, count, threads):
            acc += x[k // L, c, k % L]
        buf[tid] = acc
        cuda.syncthreads()
        step = threads // 2
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()  # this level is written before the next one reads it
            step //= 2
        mu = buf[0] / T(count)
        cuda.syncthreads()  # every thread has read buf[0] before it is overwritten
        acc = T(0)
        for k in range(tid, count, threads):
            d = x[k // L, c, k % L] - mu
            acc += d * d
        buf[tid] = acc
        cuda.syncthreads()
        step = threads // 2
        while step > 0:
            if tid < step:
                buf[tid] += buf[tid + step]
            cuda.syncthreads()  # this level is written before the next one reads it
            step //= 2
        if tid == 0:
            v = buf[0] / T(count)
            mean[c] = mu
            var[c] = v
            inv_std[c] = T(1) / math.sqrt(v + eps)

    return batchnorm_stats


@kernel_factory(f"void({_A3}, {_V}, {_V}, {_V}, {_V}, {_A3})")
def _normalize_factory(T):
    def batchnorm_normalize(x, mean, inv_std, weight, bias, y):
        i = cuda.grid(1)
        N, C, L = x.shape
        if i >= N * C * L:
            return
        l, c, n = i % L, i // L % C, i // (L * C)
        y[n, c, l] = (x[n, c, l] - mean[c]) * (inv_std[c] * weight[c]) + bias[c]

    return batchnorm_normalize


@kernel_factory(f"void({_A3}, {_A3}, {_V}, {_V}, {_V}, {_V})")
def _backward_reduce_factory(T, threads):
    def batchnorm_backward_reduce(dy, x, mean, inv_std, dweight, dbias):
        sum_dy = cuda.shared.array(threads, T)
        sum_dy_xhat = cuda.shared.array(threads, T)
        c, tid = cuda.blockIdx.x, cuda.threadIdx.x
        L = x.shape[2]
        mu, istd = mean[c], inv_std[c]
        acc_dy, acc_dy_xhat = T(0), T(0)
        for k in range(tid, x.shape[0] * L, threads):
            n, l = k // L, k % L
            g = dy[n, c, l]
            acc_dy += g
            acc_dy_xhat += g * ((x[n, c, l] - mu) * istd)
        sum_dy[tid] = acc_dy
        sum_dy_xhat[tid] = acc_dy_xhat
        cuda.syncthreads()
        step = threads // 2
        while step > 0:  # both trees in one loop: one barrier per level for the two sums
            if tid < step:
                sum_dy[tid] += sum_dy[tid + step]
                sum_dy_xhat[tid] += sum_dy_xhat[tid + step]
            cuda.syncthreads()
            step //= 2
        if tid == 0:
            dbias[c] = sum_dy[0]
            dweight[c] = sum_dy_xhat[0]

    return batchnorm_backward_reduce


@kernel_factory(f"void({_A3}, {_A3}, {_V}, {_V}, {_V}, {_V}, {_V}, {_A3})")
def _backward_input_factory(T):
    def batchnorm_backward_input(dy, x, mean, inv_std, weight, dweight, dbias, dx):
        i = cuda.grid(1)
        N, C, L = x.shape
        if i >= N * C * L:
            return
        l, c, n = i % L, i // L % C, i // (L * C)
        count = T(N * L)
        istd = inv_std[c]
        x_hat = (x[n, c, l] - mean[c]) * istd
        dx[n, c, l] = weight[c] * istd * (dy[n, c, l] - dbias[c] / count - x_hat * (dweight[c] / count))

    return batchnorm_backward_input





def _channel_vector(value, fill, like):
    """A contiguous (C,) array on the device: ``value``, or ``fill`` everywhere when it is None."""
    if value is None:
        out = empty(like.shape[1:2], like.dtype, like=like)
        out[...] = fill
        return out
    return contiguous(value)


@register("batchnorm_forward_train", "numba_cuda", "v1_channel_blocks", device="cuda", default=True)
def batchnorm_forward_train(x, weight, bias, eps, reduce_threads=None, threads=None):
    """A block per channel reduces mean, then the squared deviations; a thread per element normalises.
    Block sizes: REDUCE_THREADS and ELEMENT_THREADS (read at each call) where None."""
    reduce_threads, threads = reduce_threads or REDUCE_THREADS, threads or ELEMENT_THREADS
    C = x.shape[1]
    mean, var, inv_std = (empty((C,), x.dtype, like=x) for _ in range(3))
    y = empty(x.shape, x.dtype, like=x)
    launch(compile_kernel(_stats_factory, x.dtype, reduce_threads), C, reduce_threads, x, eps, mean, var, inv_std)
    launch(compile_kernel(_normalize_factory, x.dtype), grid_1d(x.size, threads), threads,
            x, mean, inv_std, _channel_vector(weight, 1, x), _channel_vector(bias, 0, x), y)
    return y, mean, var, inv_std


@register("batchnorm_backward", "numba_cuda", "v1_channel_blocks", device="cuda", default=True)
def batchnorm_backward(dy, x, weight, mean, inv_std, reduce_threads=None, threads=None):
    """A block per channel reduces sum(dy) and sum(dy * x_hat) in one pass; a thread per element forms dx;
    block sizes as in the forward."""
    reduce_threads, threads = reduce_threads or REDUCE_THREADS, threads or ELEMENT_THREADS
    C = x.shape[1]
    mean, inv_std = contiguous(mean), contiguous(inv_std)
    dweight, dbias = empty((C,), x.dtype, like=x), empty((C,), x.dtype, like=x)
    dx = empty(x.shape, x.dtype, like=x)
    launch(compile_kernel(_backward_reduce_factory, x.dtype, reduce_threads), C, reduce_threads,
            dy, x, mean, inv_std, dweight, dbias)
    launch(compile_kernel(_backward_input_factory, x.dtype), grid_1d(x.size, threads), threads,
            dy, x, mean, inv_std, _channel_vector(weight, 1, x), dweight, dbias, dx)
    return dx, dweight, dbias


KERNELS = [
    (factory(numba.float32, *config), factory.signature.format(t="float32"), True)
    for factory, config in [
        (_stats_factory, (REDUCE_THREADS,)),
        (_normalize_factory, ()),
        (_backward_reduce_factory, (REDUCE_THREADS,)),
        (_backward_input_factory, ()),
    ]
]
