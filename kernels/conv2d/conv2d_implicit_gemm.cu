// conv2d v4: implicit GEMM in CUDA C, NCHW (launchers in cupy_cuda.py, compiled by NVRTC through CuPy).
//
// Every pass is one GEMM per group whose operand tiles are gathered from the tensors on the fly, so no
// column matrix ever touches memory (v3 writes and re-reads C*R*S x N*P*Q elements):
//   forward          y[k, (n,p,q)]  = sum over (c,r,s) of w[k, (c,r,s)] * x~[(c,r,s), (n,p,q)]
//   backward_input   dx[c, (n,h,w)] = sum over (k,r,s) of w[k, c, r, s] * dy~[(k,r,s), (n,h,w)]
//   backward_weight  dw[k, (c,r,s)] = sum over (n,p,q) of dy[k, (n,p,q)] * x~[(n,p,q), (c,r,s)]
// where x~ and dy~ are the zero-padded gathers (a tap outside the input, or, for backward_input, a tap
// whose position is not on the stride grid, reads 0).
//
// Tiles: a 256-thread block computes a BM x BN output tile, 4 x 4 per thread in registers, walking the
// reduction 8 deep through shared memory; the next 8-deep slab is fetched into registers while the
// current one is multiplied, so global latency hides behind 128 FMAs per thread. v4 uses 64 x 64 tiles
// everywhere (entry points without a tile suffix). v5 shapes the tile by the GEMM's row count M (output
// channels per group for forward and backward_weight, input channels for backward_input): 16 x 256
// (``_m16``) for M <= 16 and 32 x 128 (``_m32``) for M <= 32, else 64 x 64, so a 16-channel layer fills its
// tiles instead of computing 48 rows of zeros in each (a 64-row tile is 1/4 full at M = 16).
// Depthwise layers (one input and one output channel per group) would fill 1 of 64 tile rows, so they
// take the direct kernels at the end of the file.
// The forward kernels come in two instances of one template: plain, and *_relu, which clamps each output at
// 0 in the epilogue, in the register about to be stored (conv -> ReLU in one pass over the output).

#define BK 8
#define TM 4
#define TN 4
#define THREADS 256  // (BM / TM) * (BN / TN) for every tile shape

struct Conv {
    int N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, groups;
};

#define CONV_PARAMS                                                                                     \
    int N, int C, int H, int W, int K, int R, int S, int P, int Q, int sh, int sw, int ph, int pw, int dh, \
        int dw, int groups
#define CONV_ARGS Conv{N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, groups}

// The GEMM core. A (M x depth) and B (depth x cols) are read through loaders: ``row(i)`` prepares what a
// thread needs for one row of A (column of B) once, ``tap(kk)`` decomposes a reduction index into what
// addresses element kk (a channel's offset, the filter tap's (r*dh, s*dw), ...: the integer divisions),
// and ``load(row, tap)`` fetches the element.
// A_K_FAST / B_K_FAST pick which index consecutive threads walk when loading: the reduction index where
// the operand is contiguous along it (weights, and every operand of backward_weight), else the row or
// column index (the gathered image columns, contiguous along q).
// TAPS (v6) decomposes each reduction index once per slab instead of once per load: walking k fastest,
// all of a thread's loads of a slab share one k, so one tap() serves them; walking the columns fastest,
// a thread's loads have different k, so BK threads decompose the slab's BK indices into shared memory
// (double-buffered: the next slab's taps are written while the current slab's loads may still read).
// Without TAPS (v4, v5) every load calls tap(): two integer divisions per gathered element, each some
// 20 instructions on a GPU, against the 128 FMAs a thread does per slab.
template <int BM, int BN, bool TAPS, typename T, bool A_K_FAST, bool B_K_FAST, class LoadA, class LoadB,
          class Store>
__device__ __forceinline__ void tile_gemm(int M, int cols, int k_begin, int k_end, const LoadA& la,
                                          const LoadB& lb, const Store& store) {
    static_assert((BM / TM) * (BN / TN) == THREADS, "a TM x TN block of outputs per thread");
    static_assert(A_K_FAST, "the A operand of every pass is loaded k-fast");
    static_assert(THREADS % BM == 0 && THREADS % BN == 0 && THREADS % BK == 0, "loads repeat every THREADS");
    // elements of each operand's slab per thread; at BM = 16 the A slab (128) is loaded by half the block
    constexpr int LOADS_A = (BM * BK + THREADS - 1) / THREADS, LOADS_B = (BN * BK + THREADS - 1) / THREADS;
    // Load i of a thread is element e = tid + i*THREADS of the slab. Walking k fastest, its k is the same
    // for every i and its rows differ; walking the rows fastest, its row (column) is the same for every i
    // (THREADS is a multiple of BM and BN), so the gather state of that one row is prepared once: one
    // ``Row`` instead of LOADS_B (8 at BN = 256), which is most of the registers of the narrow tiles.
    constexpr int ROWS_A = A_K_FAST ? LOADS_A : 1, ROWS_B = B_K_FAST ? LOADS_B : 1;
    // k-major tiles so a thread's TM (TN) operands of one k are a row; +4 keeps k-fast stores on
    // distinct banks and rows 16-byte aligned
    __shared__ T As[BK][BM + 4];
    __shared__ T Bs[BK][BN + 4];
    const int tid = threadIdx.x;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

    int a_row[LOADS_A], a_k[LOADS_A], b_col[LOADS_B], b_k[LOADS_B];
    bool a_mine[LOADS_A];  // the element is in the slab (false for half the block at BM = 16)
#pragma unroll
    for (int i = 0; i < LOADS_A; ++i) {
        const int e = tid + i * THREADS;
        a_mine[i] = e < BM * BK;
        a_row[i] = A_K_FAST ? e / BK : e % BM;
        a_k[i] = A_K_FAST ? e % BK : e / BM;
    }
#pragma unroll
    for (int i = 0; i < LOADS_B; ++i) {
        const int e = tid + i * THREADS;
        b_col[i] = B_K_FAST ? e / BK : e % BN;
        b_k[i] = B_K_FAST ? e % BK : e / BN;
    }
    typename LoadA::Row ra[ROWS_A];
    typename LoadB::Row rb[ROWS_B];
#pragma unroll
    for (int i = 0; i < ROWS_A; ++i) ra[i] = la.row(a_mine[i] ? m0 + a_row[i] : M, M);
#pragma unroll
    for (int i = 0; i < ROWS_B; ++i) rb[i] = lb.row(n0 + b_col[i], cols);

    // the taps of the slab being fetched and of the next one, when B walks its columns fastest
    __shared__ typename LoadB::Tap b_taps[2][BK];
    auto decompose = [&](int k0, int buf) {
        if constexpr (TAPS && !B_K_FAST)
            if (tid < BK) b_taps[buf][tid] = lb.tap(k0 + tid);
    };

    T a_next[LOADS_A], b_next[LOADS_B];
    auto fetch = [&](int k0, int buf) {
        // A walks k fastest: a_k[i] is the same for every i (THREADS is a multiple of BK)
        typename LoadA::Tap ta{};
        if constexpr (TAPS) ta = la.tap(k0 + a_k[0]);
#pragma unroll
        for (int i = 0; i < LOADS_A; ++i) {
            const int ka = k0 + a_k[i];
            if constexpr (!TAPS) ta = la.tap(ka);
            a_next[i] = ka < k_end ? la.load(ra[i], ta) : T(0);
        }
        typename LoadB::Tap tb{};
        if constexpr (TAPS && B_K_FAST) tb = lb.tap(k0 + b_k[0]);
#pragma unroll
        for (int i = 0; i < LOADS_B; ++i) {
            const int kb = k0 + b_k[i];
            if constexpr (!TAPS) tb = lb.tap(kb);
            if constexpr (TAPS && !B_K_FAST) tb = b_taps[buf][b_k[i]];
            b_next[i] = kb < k_end ? lb.load(rb[B_K_FAST ? i : 0], tb) : T(0);
        }
    };

    // thread (ty, tx) owns rows ty + i*BM/TM and columns tx + j*BN/TN: a warp's B reads are 16 (64 x 64
    // tiles) or 32 consecutive words (no bank conflicts), its A reads one word (a broadcast), and its
    // stores 16 or 32 consecutive output positions (coalesced)
    const int ty = tid / (BN / TN), tx = tid % (BN / TN);
    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    int buf = 0;
    decompose(k_begin, buf);
    if constexpr (TAPS && !B_K_FAST) __syncthreads();  // the first slab's taps are written
    fetch(k_begin, buf);
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
#pragma unroll
        for (int i = 0; i < LOADS_A; ++i)
            if (a_mine[i]) As[a_k[i]][a_row[i]] = a_next[i];
#pragma unroll
        for (int i = 0; i < LOADS_B; ++i) Bs[b_k[i]][b_col[i]] = b_next[i];
        buf ^= 1;
        decompose(k0 + BK, buf);  // the other buffer: its last reader was the fetch before the previous slab
        __syncthreads();  // the slab (and the next slab's taps) are complete before anyone reads them
        if (k0 + BK < k_end) fetch(k0 + BK, buf);  // in flight while this slab is multiplied
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            T a[TM], b[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) a[i] = As[kk][ty + i * (BM / TM)];
#pragma unroll
            for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx + j * (BN / TN)];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();  // everyone is done reading before the next slab overwrites it
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + ty + i * (BM / TM);
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int n = n0 + tx + j * (BN / TN);
            if (m < M && n < cols) store(m, n, acc[i][j]);
        }
    }
}

// ---------------------------------------------------------------- forward

template <typename T>
struct WeightRows {  // A[m, kk] = w[k0 + m, kk]: each filter is a contiguous row of C/groups*R*S
    const T* w;
    int depth, k0;
    struct Row { const T* p; };
    struct Tap { int kk; };
    __device__ Row row(int m, int M) const { return {m < M ? w + (size_t)(k0 + m) * depth : nullptr}; }
    __device__ Tap tap(int kk) const { return {kk}; }
    __device__ T load(const Row& r, const Tap& t) const { return r.p ? r.p[t.kk] : T(0); }
};

template <typename T>
struct ImageColumns {  // B[(c,r,s), (n,p,q)] = x[n, c0 + c, p*sh - ph + r*dh, q*sw - pw + s*dw], or 0
    const T* x;
    Conv g;
    int c0;
    struct Row { const T* base; int h0, w0; };
    struct Tap { int plane, dh, dw; };  // c*H*W, r*dh, s*dw
    __device__ Row row(int col, int cols) const {
        if (col >= cols) return {nullptr, 0, 0};
        const int PQ = g.P * g.Q, n = col / PQ, pq = col - n * PQ, p = pq / g.Q, q = pq - p * g.Q;
        return {x + ((size_t)n * g.C + c0) * g.H * g.W, p * g.sh - g.ph, q * g.sw - g.pw};
    }
    __device__ Tap tap(int kk) const {
        const int RS = g.R * g.S, c = kk / RS, t = kk - c * RS, rr = t / g.S, s = t - rr * g.S;
        return {c * g.H * g.W, rr * g.dh, s * g.dw};
    }
    __device__ T load(const Row& r, const Tap& t) const {
        const int h = r.h0 + t.dh, w = r.w0 + t.dw;
        // unsigned compares test 0 <= h < H in one instruction
        if (!r.base || (unsigned)h >= (unsigned)g.H || (unsigned)w >= (unsigned)g.W) return T(0);
        return r.base[t.plane + h * g.W + w];
    }
};

// The activation of the forward epilogue; a comparison rather than fmax, so NaN stays NaN as in torch.relu.
template <bool RELU, typename T>
__device__ __forceinline__ T activate(T v) {
    return RELU && v < T(0) ? T(0) : v;
}

template <typename T, bool RELU = false>
struct StoreNCHW {  // y[n, k0 + m, pq] = acc + bias, clamped at 0 if RELU; column (n, pq)
    T* y;
    const T* bias;
    int K, PQ, k0;
    __device__ void operator()(int m, int col, T acc) const {
        const int n = col / PQ, pq = col - n * PQ, k = k0 + m;
        y[((size_t)n * K + k) * PQ + pq] = activate<RELU>(bias ? acc + bias[k] : acc);
    }
};

template <int BM, int BN, bool TAPS, typename T, bool RELU>
__device__ void forward(const T* x, const T* w, const T* bias, T* y, Conv g) {
    const int grp = blockIdx.z, Cg = g.C / g.groups, Kg = g.K / g.groups, depth = Cg * g.R * g.S;
    const int PQ = g.P * g.Q;
    tile_gemm<BM, BN, TAPS, T, true, false>(Kg, g.N * PQ, 0, depth, WeightRows<T>{w, depth, grp * Kg},
                              ImageColumns<T>{x, g, grp * Cg}, StoreNCHW<T, RELU>{y, bias, g.K, PQ, grp * Kg});
}

// Entry points: conv2d_forward_implicit_gemm[_relu]{,_m16,_m32}{,_taps}_{f32,f64}: the tile infix (none:
// 64 x 64; _m16: 16 x 256; _m32: 32 x 128), then _taps for the per-slab decomposition (v6).
#define FORWARD(T, suffix, tile, BM, BN, taps, TAPS)                                                    \
    extern "C" __global__ void __launch_bounds__(THREADS)                                               \
        conv2d_forward_implicit_gemm##tile##taps##_##suffix(const T* x, const T* w, const T* bias, T* y, \
                                                            CONV_PARAMS) {                              \
        forward<BM, BN, TAPS, T, false>(x, w, bias, y, CONV_ARGS);                                      \
    }                                                                                                   \
    extern "C" __global__ void __launch_bounds__(THREADS)                                               \
        conv2d_forward_implicit_gemm_relu##tile##taps##_##suffix(const T* x, const T* w, const T* bias,  \
                                                                 T* y, CONV_PARAMS) {                   \
        forward<BM, BN, TAPS, T, true>(x, w, bias, y, CONV_ARGS);                                       \
    }

// Every tile, with and without TAPS, of one pass and element type.
#define EVERY_TILE(PASS, T, suffix)                                                                  \
    PASS(T, suffix, , 64, 64, , false)                                                               \
    PASS(T, suffix, _m16, 16, 256, , false)                                                          \
    PASS(T, suffix, _m32, 32, 128, , false)                                                          \
    PASS(T, suffix, , 64, 64, _taps, true)                                                           \
    PASS(T, suffix, _m16, 16, 256, _taps, true)                                                      \
    PASS(T, suffix, _m32, 32, 128, _taps, true)

EVERY_TILE(FORWARD, float, f32)
EVERY_TILE(FORWARD, double, f64)

// ---------------------------------------------------------------- backward_input

template <typename T>
struct TransposedWeightRows {  // A[c, (k,r,s)] = w[k0 + k, c, r, s]
    const T* w;
    int Cg, RS, k0;
    struct Row { const T* p; };
    struct Tap { int offset; };  // k*Cg*RS + (r, s)
    __device__ Row row(int c, int rows) const {
        return {c < rows ? w + (size_t)k0 * Cg * RS + (size_t)c * RS : nullptr};
    }
    __device__ Tap tap(int kk) const {
        const int k = kk / RS;
        return {k * Cg * RS + (kk - k * RS)};
    }
    __device__ T load(const Row& r, const Tap& t) const { return r.p ? r.p[t.offset] : T(0); }
};

template <typename T>
struct GradientColumns {  // B[(k,r,s), (n,h,w)] = dy[n, k0 + k, p, q] where p*sh = h + ph - r*dh, or 0
    const T* dy;
    Conv g;
    int k0;
    struct Row { const T* base; int hp, wp; };
    struct Tap { int plane, dh, dw; };  // k*P*Q, r*dh, s*dw
    __device__ Row row(int col, int cols) const {
        if (col >= cols) return {nullptr, 0, 0};
        const int HW = g.H * g.W, n = col / HW, hw = col - n * HW, h = hw / g.W, w = hw - h * g.W;
        return {dy + ((size_t)n * g.K + k0) * g.P * g.Q, h + g.ph, w + g.pw};
    }
    __device__ Tap tap(int kk) const {
        const int RS = g.R * g.S, k = kk / RS, t = kk - k * RS, rr = t / g.S, s = t - rr * g.S;
        return {k * g.P * g.Q, rr * g.dh, s * g.dw};
    }
    __device__ T load(const Row& r, const Tap& t) const {
        const int hp = r.hp - t.dh, wp = r.wp - t.dw;
        if (!r.base || hp < 0 || wp < 0) return T(0);
        const int p = hp / g.sh, q = wp / g.sw;
        // a tap between two stride steps never met this input element in the forward pass
        if (p * g.sh != hp || q * g.sw != wp || p >= g.P || q >= g.Q) return T(0);
        return r.base[t.plane + p * g.Q + q];
    }
};

template <int BM, int BN, bool TAPS, typename T>
__device__ void backward_input(const T* dy, const T* w, T* dx, Conv g) {
    const int grp = blockIdx.z, Cg = g.C / g.groups, Kg = g.K / g.groups, RS = g.R * g.S;
    const int HW = g.H * g.W;
    // the output store has the forward's layout with C in place of K
    tile_gemm<BM, BN, TAPS, T, true, false>(Cg, g.N * HW, 0, Kg * RS, TransposedWeightRows<T>{w, Cg, RS, grp * Kg},
                              GradientColumns<T>{dy, g, grp * Kg},
                              StoreNCHW<T>{dx, nullptr, g.C, HW, grp * Cg});
}

#define BACKWARD_INPUT(T, suffix, tile, BM, BN, taps, TAPS)                                            \
    extern "C" __global__ void __launch_bounds__(THREADS)                                               \
        conv2d_backward_input_implicit_gemm##tile##taps##_##suffix(const T* dy, const T* w, T* dx,       \
                                                                   CONV_PARAMS) {                       \
        backward_input<BM, BN, TAPS, T>(dy, w, dx, CONV_ARGS);                                          \
    }

EVERY_TILE(BACKWARD_INPUT, float, f32)
EVERY_TILE(BACKWARD_INPUT, double, f64)

// ---------------------------------------------------------------- backward_weight (split over N*P*Q)

template <typename T>
struct GradientRows {  // A[k, (n,p,q)] = dy[n, k0 + k, p, q]
    const T* dy;
    int K, PQ, k0;
    struct Row { const T* p; };
    struct Tap { long long offset; };  // n*K*P*Q + (p, q)
    __device__ Row row(int m, int M) const { return {m < M ? dy + (size_t)(k0 + m) * PQ : nullptr}; }
    __device__ Tap tap(int j) const {
        const int n = j / PQ;
        return {(long long)n * K * PQ + (j - n * PQ)};
    }
    __device__ T load(const Row& r, const Tap& t) const { return r.p ? r.p[t.offset] : T(0); }
};

template <typename T>
struct ImageRows {  // B[(n,p,q), (c,r,s)] = x[n, c0 + c, p*sh - ph + r*dh, q*sw - pw + s*dw], or 0
    const T* x;
    Conv g;
    int c0;
    struct Row { const T* base; int h0, w0; };
    struct Tap { long long image; int ph, qw; };  // n*C*H*W, p*sh, q*sw
    __device__ Row row(int col, int cols) const {
        if (col >= cols) return {nullptr, 0, 0};
        const int RS = g.R * g.S, c = col / RS, t = col - c * RS, r = t / g.S, s = t - r * g.S;
        return {x + (size_t)(c0 + c) * g.H * g.W, r * g.dh - g.ph, s * g.dw - g.pw};
    }
    __device__ Tap tap(int j) const {
        const int PQ = g.P * g.Q, n = j / PQ, pq = j - n * PQ, p = pq / g.Q, q = pq - p * g.Q;
        return {(long long)n * g.C * g.H * g.W, p * g.sh, q * g.sw};
    }
    __device__ T load(const Row& r, const Tap& t) const {
        const int h = t.ph + r.h0, w = t.qw + r.w0;
        if (!r.base || (unsigned)h >= (unsigned)g.H || (unsigned)w >= (unsigned)g.W) return T(0);
        return r.base[t.image + (long long)h * g.W + w];
    }
};

template <typename T>
struct StoreRows {  // out[k0 + m, col]: the weight gradient, or one split's partial sum of it
    T* out;
    int depth, k0;
    __device__ void operator()(int m, int col, T acc) const { out[(size_t)(k0 + m) * depth + col] = acc; }
};

template <int BM, int BN, bool TAPS, typename T>
__device__ void backward_weight(const T* dy, const T* x, T* partial, int chunk, Conv g) {
    // blockIdx.z = split * groups + group; split s reduces (n,p,q) in [s*chunk, (s+1)*chunk) into its own
    // slice of ``partial`` (no atomics: deterministic, and the reduce kernel sums the slices)
    const int grp = blockIdx.z % g.groups, split = blockIdx.z / g.groups;
    const int Cg = g.C / g.groups, Kg = g.K / g.groups, depth = Cg * g.R * g.S, NPQ = g.N * g.P * g.Q;
    const int begin = split * chunk, end = min(NPQ, begin + chunk);
    tile_gemm<BM, BN, TAPS, T, true, true>(Kg, depth, begin, end, GradientRows<T>{dy, g.K, g.P * g.Q, grp * Kg},
                             ImageRows<T>{x, g, grp * Cg},
                             StoreRows<T>{partial + (size_t)split * g.K * depth, depth, grp * Kg});
}

#define BACKWARD_WEIGHT(T, suffix, tile, BM, BN, taps, TAPS)                                           \
    extern "C" __global__ void __launch_bounds__(THREADS)                                               \
        conv2d_backward_weight_implicit_gemm##tile##taps##_##suffix(const T* dy, const T* x, T* partial, \
                                                                    int chunk, CONV_PARAMS) {           \
        backward_weight<BM, BN, TAPS, T>(dy, x, partial, chunk, CONV_ARGS);                             \
    }

EVERY_TILE(BACKWARD_WEIGHT, float, f32)
EVERY_TILE(BACKWARD_WEIGHT, double, f64)

template <typename T>
__device__ void sum_splits(const T* partial, T* out, int size, int splits) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= size) return;
    T total = T(0);
    for (int s = 0; s < splits; ++s) total += partial[(size_t)s * size + i];
    out[i] = total;
}

extern "C" __global__ void sum_splits_f32(const float* partial, float* out, int size, int splits) {
    sum_splits<float>(partial, out, size, splits);
}

extern "C" __global__ void sum_splits_f64(const double* partial, double* out, int size, int splits) {
    sum_splits<double>(partial, out, size, splits);
}

// ---------------------------------------------------------------- depthwise (C = K = groups)

template <typename T, bool RELU>
__device__ void depthwise_forward(const T* x, const T* w, const T* bias, T* y, Conv g) {
    // one thread per output, q fastest; the filter taps are few (R*S) and shared by a whole plane (L1)
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)g.N * g.K * g.P * g.Q) return;
    const int q = i % g.Q, p = i / g.Q % g.P, c = i / ((size_t)g.Q * g.P) % g.K;
    const size_t n = i / ((size_t)g.Q * g.P * g.K);
    const T* plane = x + (n * g.C + c) * g.H * g.W;
    const T* filter = w + (size_t)c * g.R * g.S;
    T acc = bias ? bias[c] : T(0);
    for (int r = 0; r < g.R; ++r) {
        const int h = p * g.sh - g.ph + r * g.dh;
        if ((unsigned)h >= (unsigned)g.H) continue;
        for (int s = 0; s < g.S; ++s) {
            const int w_ = q * g.sw - g.pw + s * g.dw;
            if ((unsigned)w_ < (unsigned)g.W) acc += plane[h * g.W + w_] * filter[r * g.S + s];
        }
    }
    y[i] = activate<RELU>(acc);
}

template <typename T>
__device__ void depthwise_backward_input(const T* dy, const T* w, T* dx, Conv g) {
    // gather: one thread per input element over the taps whose output position lies on the stride grid
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)g.N * g.C * g.H * g.W) return;
    const int x_ = i % g.W, h = i / g.W % g.H, c = i / ((size_t)g.W * g.H) % g.C;
    const size_t n = i / ((size_t)g.W * g.H * g.C);
    const T* plane = dy + (n * g.K + c) * g.P * g.Q;
    const T* filter = w + (size_t)c * g.R * g.S;
    T acc = T(0);
    for (int r = 0; r < g.R; ++r) {
        const int hp = h + g.ph - r * g.dh, p = hp / g.sh;
        if (hp < 0 || p * g.sh != hp || p >= g.P) continue;
        for (int s = 0; s < g.S; ++s) {
            const int wp = x_ + g.pw - s * g.dw, q = wp / g.sw;
            if (wp >= 0 && q * g.sw == wp && q < g.Q) acc += plane[p * g.Q + q] * filter[r * g.S + s];
        }
    }
    dx[i] = acc;
}

template <typename T>
__device__ void depthwise_backward_weight(const T* dy, const T* x, T* grad_w, Conv g) {
    // one block per weight element (c, r, s): a strided sum over (n, p, q), then a shared-memory tree
    __shared__ T buf[THREADS];
    const int e = blockIdx.x, s = e % g.S, r = e / g.S % g.R, c = e / (g.S * g.R);
    const int PQ = g.P * g.Q, NPQ = g.N * PQ;
    T acc = T(0);
    for (int j = threadIdx.x; j < NPQ; j += THREADS) {
        const int n = j / PQ, pq = j - n * PQ, p = pq / g.Q, q = pq - p * g.Q;
        const int h = p * g.sh - g.ph + r * g.dh, w_ = q * g.sw - g.pw + s * g.dw;
        if ((unsigned)h < (unsigned)g.H && (unsigned)w_ < (unsigned)g.W)
            acc += dy[((size_t)n * g.K + c) * PQ + pq] * x[(((size_t)n * g.C + c) * g.H + h) * g.W + w_];
    }
    buf[threadIdx.x] = acc;
    __syncthreads();
    for (int step = THREADS / 2; step > 0; step /= 2) {
        if (threadIdx.x < step) buf[threadIdx.x] += buf[threadIdx.x + step];
        __syncthreads();  // this level is written before the next one reads it
    }
    if (threadIdx.x == 0) grad_w[e] = buf[0];
}

#define DEPTHWISE(T, suffix)                                                                           \
    extern "C" __global__ void depthwise_forward_##suffix(const T* x, const T* w, const T* bias, T* y, \
                                                          CONV_PARAMS) {                               \
        depthwise_forward<T, false>(x, w, bias, y, CONV_ARGS);                                         \
    }                                                                                                  \
    extern "C" __global__ void depthwise_forward_relu_##suffix(const T* x, const T* w, const T* bias,  \
                                                               T* y, CONV_PARAMS) {                    \
        depthwise_forward<T, true>(x, w, bias, y, CONV_ARGS);                                          \
    }                                                                                                  \
    extern "C" __global__ void depthwise_backward_input_##suffix(const T* dy, const T* w, T* dx,       \
                                                                 CONV_PARAMS) {                        \
        depthwise_backward_input<T>(dy, w, dx, CONV_ARGS);                                             \
    }                                                                                                  \
    extern "C" __global__ void __launch_bounds__(THREADS)                                              \
        depthwise_backward_weight_##suffix(const T* dy, const T* x, T* grad_w, CONV_PARAMS) {              \
        depthwise_backward_weight<T>(dy, x, grad_w, CONV_ARGS);                                         \
    }

DEPTHWISE(float, f32)
DEPTHWISE(double, f64)
