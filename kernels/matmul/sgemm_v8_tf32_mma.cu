// v8: tensor-core TF32 GEMM with mma.sync.m16n8k8 (opt-in: TF32 keeps 10 mantissa bits, so results differ
// from FP32 by ~1e-3 relative; never the default).
//
// C[z] = A[z] @ B[z], row-major; blockIdx.z is the batch index and a batch stride of 0 broadcasts an
// operand. A block of 256 threads (8 warps, 2 along M x 4 along N) owns a 128x128 tile of C; each warp owns
// a 64x32 sub-tile = 4x4 mma tiles of 16x8, accumulated in FP32 registers (64 floats per thread). Per
// 16-wide k step the block stages A (128x16) and B (16x128) in shared memory, already rounded to TF32 so the
// conversion is paid once per element rather than once per fragment read. Inline PTX instead of WMMA: NVRTC
// ships no <mma.h>, and mma.sync's fragment layout is documented per lane, which lets the shared-memory
// padding below be chosen so fragment reads are free of bank conflicts.
//
// Edges as in v7: zero-filled loads past M, N, K; guarded stores; the float4 loads need K and N multiples
// of 4 and 16-byte aligned bases, else the launcher picks the scalar entry point.

#define BM 128
#define BN 128
#define BK 16
#define WARPS_M 2
#define WARPS_N 4
#define WM (BM / WARPS_M)  // 64 rows per warp
#define WN (BN / WARPS_N)  // 32 columns per warp
#define MI (WM / 16)
#define NI (WN / 8)
#define THREADS (32 * WARPS_M * WARPS_N)
// Row pitches: a lane (group g = lane / 4, t = lane % 4) reads As[g][t] and Bs[t][g]; a pitch of 20 (= 20
// mod 32) and 136 (= 8 mod 32) words puts the 32 lanes of a warp on 32 different banks.
#define AS_PITCH (BK + 4)
#define BS_PITCH (BN + 8)

#ifdef TENSORLIB_HOST_EMULATION
// run on the CPU (kernels/host_cuda.h), which emulates both instructions from their PTX ISA definitions
__device__ __forceinline__ unsigned to_tf32(float x) { return tl_host::cvt_rna_tf32(x); }

__device__ __forceinline__ void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    tl_host::mma_m16n8k8_tf32(d, a, b);
}
#else
__device__ __forceinline__ unsigned to_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

template <bool kVec>
__device__ __forceinline__ float4 load4(const float* __restrict__ p, long long offset, bool row_ok, int col, int cols) {
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (!row_ok) return v;
    if (kVec) {
        if (col < cols) v = *reinterpret_cast<const float4*>(p + offset + col);
    } else {
        float* pv = &v.x;
        for (int q = 0; q < 4; ++q)
            if (col + q < cols) pv[q] = p[offset + col + q];
    }
    return v;
}

template <bool kVec>
__device__ __forceinline__ void sgemm_tf32(const float* __restrict__ A, const float* __restrict__ B,
                                           float* __restrict__ C, int M, int N, int K,
                                           long long strideA, long long strideB) {
    __shared__ __align__(16) unsigned As[BM * AS_PITCH];
    __shared__ __align__(16) unsigned Bs[BK * BS_PITCH];

    const int z = blockIdx.z;
    A += z * strideA;
    B += z * strideB;
    C += (long long)z * M * N;
    const int blockRow = blockIdx.y * BM;
    const int blockCol = blockIdx.x * BN;
    const int tid = threadIdx.x;
    const int lane = tid % 32, warp = tid / 32;
    const int g = lane / 4, t = lane % 4;  // mma fragment coordinates of this lane
    const int warpRow = (warp / WARPS_N) * WM;
    const int warpCol = (warp % WARPS_N) * WN;

    float acc[MI][NI][4] = {};

    for (int k0 = 0; k0 < K; k0 += BK) {
        // Each thread stages (BM*BK + BK*BN) / THREADS / 4 = 2 + 2 groups of 4 consecutive floats.
#pragma unroll
        for (int e = tid; e < BM * BK / 4; e += THREADS) {
            const int r = e / (BK / 4), c = (e % (BK / 4)) * 4;
            const float4 v = load4<kVec>(A, (long long)(blockRow + r) * K + k0, blockRow + r < M, c, K - k0);
            *reinterpret_cast<uint4*>(&As[r * AS_PITCH + c]) = make_uint4(to_tf32(v.x), to_tf32(v.y), to_tf32(v.z), to_tf32(v.w));
        }
#pragma unroll
        for (int e = tid; e < BK * BN / 4; e += THREADS) {
            const int r = e / (BN / 4), c = (e % (BN / 4)) * 4;
            const float4 v = load4<kVec>(B, (long long)(k0 + r) * N + blockCol, k0 + r < K, c, N - blockCol);
            *reinterpret_cast<uint4*>(&Bs[r * BS_PITCH + c]) = make_uint4(to_tf32(v.x), to_tf32(v.y), to_tf32(v.z), to_tf32(v.w));
        }
        __syncthreads();  // tiles complete before the fragment reads

#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            unsigned a[MI][4], b[NI][2];
            // Fragment layouts of m16n8k8 (PTX ISA): A row-major 16x8, a0/a1 at column t, a2/a3 at t + 4,
            // a1/a3 eight rows below; B column-major 8x8, b0 at row t, b1 at row t + 4, column g.
#pragma unroll
            for (int i = 0; i < MI; ++i) {
                const unsigned* p = &As[(warpRow + i * 16 + g) * AS_PITCH + kk + t];
                a[i][0] = p[0];
                a[i][1] = p[8 * AS_PITCH];
                a[i][2] = p[4];
                a[i][3] = p[8 * AS_PITCH + 4];
            }
#pragma unroll
            for (int j = 0; j < NI; ++j) {
                const unsigned* p = &Bs[(kk + t) * BS_PITCH + warpCol + j * 8 + g];
                b[j][0] = p[0];
                b[j][1] = p[4 * BS_PITCH];
            }
#pragma unroll
            for (int i = 0; i < MI; ++i)
#pragma unroll
                for (int j = 0; j < NI; ++j) mma_tf32(acc[i][j], a[i], b[j]);
        }
        __syncthreads();  // tiles consumed before the next step overwrites them
    }

    // Accumulator layout: d0/d1 at row g, columns 2t and 2t + 1; d2/d3 eight rows below.
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int r = blockRow + warpRow + i * 16 + g + 8 * h;
                const int c = blockCol + warpCol + j * 8 + 2 * t;
                if (r < M && c < N) C[(long long)r * N + c] = acc[i][j][2 * h];
                if (r < M && c + 1 < N) C[(long long)r * N + c + 1] = acc[i][j][2 * h + 1];
            }
}

extern "C" __global__ void __launch_bounds__(THREADS)
sgemm_v8_tf32_vec4(const float* A, const float* B, float* C, int M, int N, int K, long long strideA, long long strideB) {
    sgemm_tf32<true>(A, B, C, M, N, K, strideA, strideB);
}

extern "C" __global__ void __launch_bounds__(THREADS)
sgemm_v8_tf32_scalar(const float* A, const float* B, float* C, int M, int N, int K, long long strideA, long long strideB) {
    sgemm_tf32<false>(A, B, C, M, N, K, strideA, strideB);
}
