"""The transforms of ``numpy.v3_winograd`` (``winograd.py`` has the algorithm and its matrices).

Every kernel runs its innermost loop over channels, which are contiguous in U, V and M: a block of 16
float32 (8 float64) channels is one 64-byte vector (``kernels/simd.py``), and a 4x4 tile of them is 16
vectors on the stack, which LLVM keeps in registers (its constant offsets let SROA split the stack array).
Channels past the last whole vector take the scalar functions, which do the same operations in the same
order, so every channel gets the same bits either way. The NCHW input and output pass image by image
through a channels-last scratch ``image`` (zero outside the part the kernels write), which stays in L2.

Flat arrays are indexed with unsigned integers: Numba then omits its negative-index wraparound check.
``half`` is 0.5 in the arrays' type (a Python float would promote float32 arithmetic to float64).

``winograd.py`` loads this file through ``kernels.cache.load_module``, whose file name hashes
``kernels/simd.py`` too: Numba's own cache looks at this file's date only.
"""

from numba import carray, njit, prange, uint64

from kernels.simd import add_lanes, copy_lanes, scale_lanes, stack_array, sub_lanes

TILE = 256  # elements of a stack tile: 16 vectors of float32 (float64 uses half)
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS's enums


# --- one column of a transform, on scalars (the channels past the last whole vector) -----------------------

@njit(cache=True, nogil=True)
def g_column(g0, g1, g2, half):
    """G times a column of 3."""
    return g0, half * (g0 + g1 + g2), half * (g0 - g1 + g2), g2


@njit(cache=True, nogil=True)
def gt_column(u0, u1, u2, u3, half):
    """G^T times a column of 4."""
    mixed = half * (u1 + u2)
    return u0 + mixed, half * (u1 - u2), mixed + u3


@njit(cache=True, nogil=True)
def bt_column(d0, d1, d2, d3):
    """B^T times a column of 4."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, nogil=True)
def at_column(m0, m1, m2, m3):
    """A^T times a column of 4."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(cache=True, nogil=True)
def a_column(y0, y1, minus_one):
    """A times a column of 2."""
    return y0, y0 + y1, y0 - y1, minus_one * y1


# --- the same on vectors: dst[i + k * di] from src[j + k * sj], k the row of the column ---------------------

@njit(inline="always")
def g_vectors(dst, i, di, src, j, sj, half):
    copy_lanes(dst, i, src, j)
    copy_lanes(dst, i + di, src, j)
    add_lanes(dst, i + di, src, j + sj)
    add_lanes(dst, i + di, src, j + 2 * sj)
    scale_lanes(dst, i + di, half)
    copy_lanes(dst, i + 2 * di, src, j)
    sub_lanes(dst, i + 2 * di, src, j + sj)
    add_lanes(dst, i + 2 * di, src, j + 2 * sj)
    scale_lanes(dst, i + 2 * di, half)
    copy_lanes(dst, i + 3 * di, src, j + 2 * sj)


@njit(inline="always")
def gt_vectors(dst, i, di, src, j, sj, half):
    copy_lanes(dst, i + 2 * di, src, j + sj)  # the mixed term first, in row 2
    add_lanes(dst, i + 2 * di, src, j + 2 * sj)
    scale_lanes(dst, i + 2 * di, half)
    copy_lanes(dst, i, src, j)
    add_lanes(dst, i, dst, i + 2 * di)
    add_lanes(dst, i + 2 * di, src, j + 3 * sj)
    copy_lanes(dst, i + di, src, j + sj)
    sub_lanes(dst, i + di, src, j + 2 * sj)
    scale_lanes(dst, i + di, half)


@njit(inline="always")
def bt_vectors(dst, i, di, src, j, sj):
    copy_lanes(dst, i, src, j)
    sub_lanes(dst, i, src, j + 2 * sj)
    copy_lanes(dst, i + di, src, j + sj)
    add_lanes(dst, i + di, src, j + 2 * sj)
    copy_lanes(dst, i + 2 * di, src, j + 2 * sj)
    sub_lanes(dst, i + 2 * di, src, j + sj)
    copy_lanes(dst, i + 3 * di, src, j + sj)
    sub_lanes(dst, i + 3 * di, src, j + 3 * sj)


@njit(inline="always")
def at_vectors(dst, i, di, src, j, sj):
    copy_lanes(dst, i, src, j)
    add_lanes(dst, i, src, j + sj)
    add_lanes(dst, i, src, j + 2 * sj)
    copy_lanes(dst, i + di, src, j + sj)
    sub_lanes(dst, i + di, src, j + 2 * sj)
    sub_lanes(dst, i + di, src, j + 3 * sj)


@njit(inline="always")
def a_vectors(dst, i, di, src, j, sj, minus_one):
    copy_lanes(dst, i, src, j)
    copy_lanes(dst, i + di, src, j)
    add_lanes(dst, i + di, src, j + sj)
    copy_lanes(dst, i + 2 * di, src, j)
    sub_lanes(dst, i + 2 * di, src, j + sj)
    copy_lanes(dst, i + 3 * di, src, j + sj)
    scale_lanes(dst, i + 3 * di, minus_one)


# --- the kernels --------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def filter_transform(w, U, k0, k1, half):
    """U[xi, k, c] = (G g G^T)[xi] for filters k0 <= k < k1; w (K, Cg, 3, 3), U (16, K, Cg)."""
    K, Cg = w.shape[0], w.shape[1]
    L = 64 // w.itemsize
    wf, uf = w.reshape(-1), U.reshape(-1)
    plane = K * Cg
    g = carray(stack_array(TILE, w.dtype), TILE)
    h = carray(stack_array(TILE, w.dtype), TILE)
    u = carray(stack_array(TILE, w.dtype), TILE)
    for k in range(k0, k1):
        full = Cg - Cg % L
        for c in range(0, full, L):
            src = (k * Cg + c) * 9
            for lane in range(L):  # the filters' taps to vectors over channels: g[(3 r + s) L + lane]
                for tap in range(9):
                    g[tap * L + lane] = wf[uint64(src + lane * 9 + tap)]
            for s in range(3):  # G g, column by column: h[(3 a + s) L]
                g_vectors(h, s * L, 3 * L, g, s * L, 3 * L, half)
            for a in range(4):  # (G g) G^T, row by row: u[(4 a + b) L]
                g_vectors(u, 4 * a * L, L, h, 3 * a * L, L, half)
            for xi in range(16):
                copy_lanes(uf, xi * plane + k * Cg + c, u, xi * L)
        for c in range(full, Cg):
            src, dst = (k * Cg + c) * 9, k * Cg + c
            h0 = g_column(wf[uint64(src)], wf[uint64(src + 3)], wf[uint64(src + 6)], half)
            h1 = g_column(wf[uint64(src + 1)], wf[uint64(src + 4)], wf[uint64(src + 7)], half)
            h2 = g_column(wf[uint64(src + 2)], wf[uint64(src + 5)], wf[uint64(src + 8)], half)
            for a in range(4):
                row = g_column(h0[a], h1[a], h2[a], half)
                for b in range(4):
                    uf[uint64((4 * a + b) * plane + dst)] = row[b]


@njit(cache=True, nogil=True)
def filter_gradient(dU, dw, k0, k1, half):
    """dw[k, c] = G^T dU[:, k, c] G (the filter transform's transpose) for k0 <= k < k1."""
    K, Cg = dw.shape[0], dw.shape[1]
    L = 64 // dw.itemsize
    uf, wf = dU.reshape(-1), dw.reshape(-1)
    plane = K * Cg
    u = carray(stack_array(TILE, dw.dtype), TILE)
    h = carray(stack_array(TILE, dw.dtype), TILE)
    g = carray(stack_array(TILE, dw.dtype), TILE)
    for k in range(k0, k1):
        full = Cg - Cg % L
        for c in range(0, full, L):
            for xi in range(16):
                copy_lanes(u, xi * L, uf, xi * plane + k * Cg + c)
            for b in range(4):  # G^T dU, column by column: h[(4 r + b) L]
                gt_vectors(h, b * L, 4 * L, u, b * L, 4 * L, half)
            for r in range(3):  # (G^T dU) G, row by row: g[(3 r + s) L]
                gt_vectors(g, 3 * r * L, L, h, 4 * r * L, L, half)
            dst = (k * Cg + c) * 9
            for lane in range(L):
                for tap in range(9):
                    wf[uint64(dst + lane * 9 + tap)] = g[tap * L + lane]
        for c in range(full, Cg):
            src, dst = k * Cg + c, (k * Cg + c) * 9
            h0 = gt_column(uf[uint64(src)], uf[uint64(4 * plane + src)], uf[uint64(8 * plane + src)],
                           uf[uint64(12 * plane + src)], half)
            h1 = gt_column(uf[uint64(plane + src)], uf[uint64(5 * plane + src)], uf[uint64(9 * plane + src)],
                           uf[uint64(13 * plane + src)], half)
            h2 = gt_column(uf[uint64(2 * plane + src)], uf[uint64(6 * plane + src)], uf[uint64(10 * plane + src)],
                           uf[uint64(14 * plane + src)], half)
            h3 = gt_column(uf[uint64(3 * plane + src)], uf[uint64(7 * plane + src)], uf[uint64(11 * plane + src)],
                           uf[uint64(15 * plane + src)], half)
            for r in range(3):
                row = gt_column(h0[r], h1[r], h2[r], h3[r], half)
                for s in range(3):
                    wf[uint64(dst + 3 * r + s)] = row[s]


@njit(cache=True, nogil=True)
def to_channels_last(x, n, image, top, left, width):
    """image[((top + i) * width + left + j) * C + c] = x[n, c, i, j]."""
    _, C, H, W = x.shape
    xf = x.reshape(-1)
    for c in range(C):
        src = (n * C + c) * H * W
        for i in range(H):
            for j in range(W):
                image[uint64(((top + i) * width + left + j) * C + c)] = xf[uint64(src + i * W + j)]


@njit(cache=True, nogil=True)
def input_transform(x, first, n0, n1, ph, pw, TP, TQ, V, image):
    """V[xi, t, c] = (B^T d B)[xi] for the tiles t of images n0 <= n < n1 (counted from image ``first``),
    d the 4x4 window at rows 2*tp - ph.., columns 2*tq - pw.. of the zero-padded input x (N, C, H, W);
    ``image`` is a zeroed scratch of (2*TP + 2) * (2*TQ + 2) * C elements."""
    C = x.shape[1]
    L = 64 // x.itemsize
    full = C - C % L
    row = (2 * TQ + 2) * C
    vf = V.reshape(-1)
    plane = V.shape[1] * C
    d = carray(stack_array(TILE, x.dtype), TILE)
    e = carray(stack_array(TILE, x.dtype), TILE)
    for n in range(n0, n1):
        to_channels_last(x, n, image, ph, pw, 2 * TQ + 2)
        for tp in range(TP):
            for tq in range(TQ):
                corner = 2 * tp * row + 2 * tq * C
                out = ((n - first) * TP * TQ + tp * TQ + tq) * C
                for c in range(0, full, L):
                    for i in range(4):  # the tile: d[(4 i + j) L]
                        for j in range(4):
                            copy_lanes(d, (4 * i + j) * L, image, corner + i * row + j * C + c)
                    for j in range(4):  # B^T d, column by column: e[(4 a + j) L]
                        bt_vectors(e, j * L, 4 * L, d, j * L, 4 * L)
                    for a in range(4):  # (B^T d) B, row by row, back into d
                        bt_vectors(d, 4 * a * L, L, e, 4 * a * L, L)
                    for xi in range(16):
                        copy_lanes(vf, xi * plane + out + c, d, xi * L)
                for c in range(full, C):
                    p = corner + c
                    e0 = bt_column(image[uint64(p)], image[uint64(p + row)], image[uint64(p + 2 * row)],
                                   image[uint64(p + 3 * row)])
                    e1 = bt_column(image[uint64(p + C)], image[uint64(p + row + C)],
                                   image[uint64(p + 2 * row + C)], image[uint64(p + 3 * row + C)])
                    e2 = bt_column(image[uint64(p + 2 * C)], image[uint64(p + row + 2 * C)],
                                   image[uint64(p + 2 * row + 2 * C)], image[uint64(p + 3 * row + 2 * C)])
                    e3 = bt_column(image[uint64(p + 3 * C)], image[uint64(p + row + 3 * C)],
                                   image[uint64(p + 2 * row + 3 * C)], image[uint64(p + 3 * row + 3 * C)])
                    for a in range(4):
                        values = bt_column(e0[a], e1[a], e2[a], e3[a])
                        for b in range(4):
                            vf[uint64((4 * a + b) * plane + out + c)] = values[b]


@njit(cache=True, nogil=True)
def output_transform(M, bias, y, first, n0, n1, TP, TQ, relu, image):
    """y[n, k] = A^T M[:, t, k] A + bias[k] per tile t, the 2x2 blocks cut to y's P x Q, ReLU if ``relu``;
    ``image`` is a scratch of 2*TP * 2*TQ * K elements."""
    _, K, P, Q = y.shape
    L = 64 // y.itemsize
    full = K - K % L
    mf, yf = M.reshape(-1), y.reshape(-1)
    plane = M.shape[1] * K
    row = 2 * TQ * K
    m = carray(stack_array(TILE, y.dtype), TILE)
    h = carray(stack_array(TILE, y.dtype), TILE)
    o = carray(stack_array(TILE, y.dtype), TILE)
    for n in range(n0, n1):
        for tp in range(TP):
            for tq in range(TQ):
                src = ((n - first) * TP * TQ + tp * TQ + tq) * K
                corner = 2 * tp * row + 2 * tq * K
                for k in range(0, full, L):
                    for xi in range(16):
                        copy_lanes(m, xi * L, mf, xi * plane + src + k)
                    for b in range(4):  # A^T M, column by column: h[(4 a + b) L]
                        at_vectors(h, b * L, 4 * L, m, b * L, 4 * L)
                    for a in range(2):  # (A^T M) A, row by row: o[(2 a + b) L]
                        at_vectors(o, 2 * a * L, L, h, 4 * a * L, L)
                    for a in range(2):
                        for b in range(2):
                            copy_lanes(image, corner + a * row + b * K + k, o, (2 * a + b) * L)
                for k in range(full, K):
                    p = src + k
                    h0 = at_column(mf[uint64(p)], mf[uint64(4 * plane + p)], mf[uint64(8 * plane + p)],
                                   mf[uint64(12 * plane + p)])
                    h1 = at_column(mf[uint64(plane + p)], mf[uint64(5 * plane + p)], mf[uint64(9 * plane + p)],
                                   mf[uint64(13 * plane + p)])
                    h2 = at_column(mf[uint64(2 * plane + p)], mf[uint64(6 * plane + p)],
                                   mf[uint64(10 * plane + p)], mf[uint64(14 * plane + p)])
                    h3 = at_column(mf[uint64(3 * plane + p)], mf[uint64(7 * plane + p)],
                                   mf[uint64(11 * plane + p)], mf[uint64(15 * plane + p)])
                    for a in range(2):
                        values = at_column(h0[a], h1[a], h2[a], h3[a])
                        image[uint64(corner + a * row + k)] = values[0]
                        image[uint64(corner + a * row + K + k)] = values[1]
        for k in range(K):  # back to NCHW, with the bias and the ReLU
            shift, dst = bias[k], (n * K + k) * P * Q
            for p in range(P):
                for q in range(Q):
                    v = image[uint64((p * 2 * TQ + q) * K + k)] + shift
                    if relu and v < 0:  # a comparison, so NaN stays NaN; storing 0 keeps v in y's type
                        yf[uint64(dst + p * Q + q)] = 0
                    else:
                        yf[uint64(dst + p * Q + q)] = v


@njit(cache=True, nogil=True)
def grad_output_transform(dy, first, n0, n1, TP, TQ, dM, image, minus_one):
    """dM[xi, t, k] = (A dy A^T)[xi] per 2x2 tile of dy (zero past its P x Q): the output transform's
    transpose; ``image`` is a zeroed scratch of 2*TP * 2*TQ * K elements."""
    K = dy.shape[1]
    L = 64 // dy.itemsize
    full = K - K % L
    mf = dM.reshape(-1)
    plane = dM.shape[1] * K
    row = 2 * TQ * K
    t = carray(stack_array(TILE, dy.dtype), TILE)
    h = carray(stack_array(TILE, dy.dtype), TILE)
    o = carray(stack_array(TILE, dy.dtype), TILE)
    for n in range(n0, n1):
        to_channels_last(dy, n, image, 0, 0, 2 * TQ)
        for tp in range(TP):
            for tq in range(TQ):
                corner = 2 * tp * row + 2 * tq * K
                out = ((n - first) * TP * TQ + tp * TQ + tq) * K
                for k in range(0, full, L):
                    for a in range(2):  # the 2x2 tile: t[(2 a + b) L]
                        for b in range(2):
                            copy_lanes(t, (2 * a + b) * L, image, corner + a * row + b * K + k)
                    for b in range(2):  # A dy, column by column: h[(2 a + b) L]
                        a_vectors(h, b * L, 2 * L, t, b * L, 2 * L, minus_one)
                    for a in range(4):  # (A dy) A^T, row by row: o[(4 a + b) L]
                        a_vectors(o, 4 * a * L, L, h, 2 * a * L, L, minus_one)
                    for xi in range(16):
                        copy_lanes(mf, xi * plane + out + k, o, xi * L)
                for k in range(full, K):
                    p = corner + k
                    left = a_column(image[uint64(p)], image[uint64(p + row)], minus_one)
                    right = a_column(image[uint64(p + K)], image[uint64(p + row + K)], minus_one)
                    for a in range(4):
                        values = a_column(left[a], right[a], minus_one)
                        for b in range(4):
                            mf[uint64((4 * a + b) * plane + out + k)] = values[b]


# --- a pass's phases over the threads: prange over parts (one per thread), GEMMs through CBLAS ---------------
# Numba's OpenMP threads run every phase, as they run the blocked kernels and the other layers: handing work
# to Python threads instead, right after an OpenMP kernel, found both cores taken by OpenMP's spinning
# workers for milliseconds (kernels/conv2d/README.md, "Winograd").

@njit(cache=True)
def part_range(count, parts, part):
    step = (count + parts - 1) // parts
    return min(part * step, count), min((part + 1) * step, count)


@njit(cache=True, parallel=True)
def filters_parallel(w, U, half, parts):
    for part in prange(parts):
        k0, k1 = part_range(w.shape[0], parts, part)
        filter_transform(w, U, k0, k1, half)


@njit(cache=True, parallel=True)
def gradient_parallel(dU, dw, half, parts):
    for part in prange(parts):
        k0, k1 = part_range(dw.shape[0], parts, part)
        filter_gradient(dU, dw, k0, k1, half)


@njit(cache=True, parallel=True)
def inputs_parallel(x, first, last, ph, pw, TP, TQ, V, images):
    """input_transform of images first..last, part p with the scratch images[p]."""
    parts = images.shape[0]
    for part in prange(parts):
        n0, n1 = part_range(last - first, parts, part)
        input_transform(x, first, first + n0, first + n1, ph, pw, TP, TQ, V, images[part])


@njit(cache=True, parallel=True)
def outputs_parallel(M, bias, y, first, last, TP, TQ, relu, images):
    parts = images.shape[0]
    for part in prange(parts):
        n0, n1 = part_range(last - first, parts, part)
        output_transform(M, bias, y, first, first + n0, first + n1, TP, TQ, relu, images[part])


@njit(cache=True, parallel=True)
def grads_parallel(dy, first, last, TP, TQ, dM, images, minus_one):
    parts = images.shape[0]
    for part in prange(parts):
        n0, n1 = part_range(last - first, parts, part)
        grad_output_transform(dy, first, first + n0, first + n1, TP, TQ, dM, images[part], minus_one)


@njit(cache=True)
def address(a, index):
    """The address of element ``index`` of the C-contiguous array a, an integer as CBLAS's pointers."""
    return a.ctypes.data + uint64(index * a.itemsize)


@njit(cache=True, parallel=True)
def gemms_forward(V, U, M, T, groups, gemm, one, zero):
    """M[xi, :T] = V[xi, :T] @ U[xi]^T per group; V (16, T', C), U (16, K, C/groups), M (16, T', K)."""
    C, K, Cg = V.shape[2], M.shape[2], U.shape[2]
    Kg = K // groups
    for xi in prange(16):
        for grp in range(groups):
            gemm(ROW_MAJOR, NO_TRANS, TRANS, T, Kg, Cg, one, address(V, xi * V.shape[1] * C + grp * Cg), C,
                 address(U, (xi * K + grp * Kg) * Cg), Cg, zero, address(M, xi * M.shape[1] * K + grp * Kg), K)


@njit(cache=True, parallel=True)
def gemms_backward_input(V, U, M, T, groups, flip, gemm, one, zero):
    """M[xi, :T] = V[xi, :T] @ U[flip[xi]] per group; V (16, T', K), U (16, K, C/groups), M (16, T', C)."""
    K, C, Cg = V.shape[2], M.shape[2], U.shape[2]
    Kg = K // groups
    for xi in prange(16):
        for grp in range(groups):
            gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, T, Cg, Kg, one, address(V, xi * V.shape[1] * K + grp * Kg), K,
                 address(U, (flip[xi] * K + grp * Kg) * Cg), Cg, zero, address(M, xi * M.shape[1] * C + grp * Cg),
                 C)


@njit(cache=True, parallel=True)
def gemms_backward_weight(dM, V, dU, T, groups, gemm, one, beta):
    """dU[xi] = beta dU[xi] + dM[xi, :T]^T @ V[xi, :T] per group; dM (16, T', K), V (16, T', C),
    dU (16, K, C/groups)."""
    K, C, Cg = dM.shape[2], V.shape[2], dU.shape[2]
    Kg = K // groups
    for xi in prange(16):
        for grp in range(groups):
            gemm(ROW_MAJOR, TRANS, NO_TRANS, Kg, Cg, T, one, address(dM, xi * dM.shape[1] * K + grp * Kg), K,
                 address(V, xi * V.shape[1] * C + grp * Cg), C, beta, address(dU, (xi * K + grp * Kg) * Cg), Cg)
