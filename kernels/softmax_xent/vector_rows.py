"""The row kernels of ``numba.v2_vector_exp`` (registered in ``numba_cpu.py``): v1's row loops with every
step on whole vectors (``kernels/simd.py``; 16 float32 or 8 float64 lanes), the exponential a polynomial
(``simd.exp_lanes``) instead of a scalar ``expf`` call per element.

Per row: the maximum as lane-wise maxima then a tree over the lanes; the shifted exponentials written into
the softmax while 16 (8) partial sums collect them; the loss from the row's sum; the softmax scaled by the
sum's reciprocal, as PyTorch's CPU softmax does (at most one unit in the last place from a division). The
last ``C % lanes`` columns go through a one-vector buffer on the stack, so a row of any width, LeNet's 10
classes included, takes the same vector exponential.

``numba_cpu.py`` loads this file through ``kernels.cache.load_module``, whose file name hashes
``kernels/simd.py`` and ``numba_cpu.py`` (``row_loss``) too: Numba's own cache looks at this file's date only, and would keep machine code
built from intrinsics that have since changed.
"""

from numba import carray, njit, prange

from kernels.simd import add_lanes, copy_lanes, exp_lanes, max_lanes, max_of_lanes, scale_lanes, stack_array
from kernels.simd import sum_lanes, zero_lanes
from kernels.softmax_xent.numba_cpu import row_loss

BUFFER = 16  # elements of a stack buffer: one vector of float32 (two of float64)


@njit(inline="always")
def _forward_row(logits, targets, ignore_index, losses, probs, i, acc, tail, zero):
    C = logits.shape[1]
    V = 64 // logits.itemsize
    full = C - C % V
    row, out = logits[i], probs[i]
    peak = row[0]
    if full:
        copy_lanes(acc, 0, row, 0)
        for j in range(V, full, V):
            max_lanes(acc, 0, row, j)
        peak = max_of_lanes(acc, 0)
    for j in range(full, C):
        if row[j] > peak:
            peak = row[j]
    # a NaN logit needs no care here: its exponential is NaN, and so are the row's sum, softmax and loss

    zero_lanes(acc, 0)
    for j in range(0, full, V):
        exp_lanes(out, j, row, j, peak)
        add_lanes(acc, 0, out, j)
    total = sum_lanes(acc, 0)
    if full < C:
        for k in range(V):
            tail[k] = row[full + k] if full + k < C else peak
        exp_lanes(tail, 0, tail, 0, peak)
        for k in range(C - full):
            out[full + k] = tail[k]
            total += tail[k]

    losses[i] = row_loss(row, targets[i], ignore_index, total, peak, zero)

    scale = (zero + 1) / total
    for j in range(0, full, V):
        scale_lanes(out, j, scale)
    for j in range(full, C):
        out[j] *= scale


@njit(cache=True)
def forward_serial(logits, targets, ignore_index, losses, probs, zero):
    acc = carray(stack_array(BUFFER, logits.dtype), (BUFFER,))
    tail = carray(stack_array(BUFFER, logits.dtype), (BUFFER,))
    for i in range(logits.shape[0]):
        _forward_row(logits, targets, ignore_index, losses, probs, i, acc, tail, zero)


@njit(parallel=True, cache=True)
def forward_parallel(logits, targets, ignore_index, losses, probs, zero):
    for i in prange(logits.shape[0]):
        acc = carray(stack_array(BUFFER, logits.dtype), (BUFFER,))
        tail = carray(stack_array(BUFFER, logits.dtype), (BUFFER,))
        _forward_row(logits, targets, ignore_index, losses, probs, i, acc, tail, zero)
