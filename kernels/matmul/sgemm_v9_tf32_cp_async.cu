// v9: v8's tensor-core TF32 GEMM with its tiles staged by cp.async into two shared-memory buffers, so the
// next 16-deep step's loads are in flight while the current one is multiplied (opt-in, as v8: TF32).
//
// v8 stages each step synchronously: every thread loads its float4s into registers, converts them to TF32,
// stores them, and the block waits at a barrier; the global latency (hundreds of cycles) is exposed once per
// step, and nothing else runs in the warp meanwhile. cp.async (sm_80+) copies global memory straight into
// shared memory without passing through registers: the block issues step k+1's copies into the other
// buffer, then multiplies step k, and waits for the copies only when it needs them. The conversion to TF32
// moves to the fragment reads (cvt.rna per fragment register, once per warp that reads the element instead
// of once per element), since the copy cannot transform the data. Same tiling as v8: 256 threads, 8 warps
// of 64x32, 128x128x16 tiles, padded rows so fragment reads are conflict-free. Two buffers of
// 128x20 + 16x136 floats: 37,888 bytes of static shared memory (under the 48 KB static limit).
//
// Edges as in v8: copies past M, N or K are zero-filled (cp.async's src-size operand), stores are guarded;
// the 16-byte copies need K and N multiples of 4 and 16-byte aligned bases, else the launcher picks the
// scalar entry point, which copies 4 bytes at a time.

#define BM 128
#define BN 128
#define BK 16
#define WARPS_M 2
#define WARPS_N 4
#define WM (BM / WARPS_M)
#define WN (BN / WARPS_N)
#define MI (WM / 16)
#define NI (WN / 8)
#define THREADS (32 * WARPS_M * WARPS_N)
#define AS_PITCH (BK + 4)
#define BS_PITCH (BN + 8)

#ifdef TENSORLIB_HOST_EMULATION
// run on the CPU (kernels/host_cuda.h), which emulates these instructions from their PTX ISA definitions
__device__ __forceinline__ unsigned to_tf32(float x) { return tl_host::cvt_rna_tf32(x); }

__device__ __forceinline__ void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    tl_host::mma_m16n8k8_tf32(d, a, b);
}

template <int BYTES>
__device__ __forceinline__ void copy_async(float* shared, const float* global, int src_bytes) {
    tl_host::cp_async(shared, global, BYTES, src_bytes);
}

__device__ __forceinline__ void copy_commit() { tl_host::cp_async_commit(); }

template <int PENDING>
__device__ __forceinline__ void copy_wait() {
    tl_host::cp_async_wait(PENDING);
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

// BYTES (16 or 4) from global to shared; bytes past src_bytes are written as zeros. 16-byte copies bypass
// L1 (.cg); 4-byte ones must go through it (.ca).
template <int BYTES>
__device__ __forceinline__ void copy_async(float* shared, const float* global, int src_bytes) {
    const unsigned address = (unsigned)__cvta_generic_to_shared(shared);
    if (BYTES == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(global), "r"(src_bytes));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(address), "l"(global), "r"(src_bytes));
}

// "memory": the compiler must not move shared-memory reads across the wait (the barrier after it also
// stops them today, but the wait should not depend on that)
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int PENDING>
__device__ __forceinline__ void copy_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING) : "memory");
}
#endif

// One step's copies: A rows blockRow.. x columns k0..k0+15 into As, B rows k0..k0+15 x columns blockCol..
// into Bs. A group of 4 floats is wholly inside or outside the matrix on the vector path (K, N multiples
// of 4); the scalar path copies each float on its own. Outside: a zero-filling copy from the matrix base
// (src-size 0 reads nothing).
template <bool kVec>
__device__ __forceinline__ void stage(float* As, float* Bs, const float* A, const float* B, int M, int N, int K,
                                      int blockRow, int blockCol, int k0, int tid) {
#pragma unroll
    for (int e = tid; e < BM * BK / 4; e += THREADS) {
        const int r = e / (BK / 4), c = (e % (BK / 4)) * 4;
        const bool row_ok = blockRow + r < M;
        const float* src = A + (long long)(blockRow + r) * K + k0 + c;
        if (kVec) {
            const bool ok = row_ok && k0 + c < K;
            copy_async<16>(&As[r * AS_PITCH + c], ok ? src : A, ok ? 16 : 0);
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const bool ok = row_ok && k0 + c + q < K;
                copy_async<4>(&As[r * AS_PITCH + c + q], ok ? src + q : A, ok ? 4 : 0);
            }
        }
    }
#pragma unroll
    for (int e = tid; e < BK * BN / 4; e += THREADS) {
        const int r = e / (BN / 4), c = (e % (BN / 4)) * 4;
        const bool row_ok = k0 + r < K;
        const float* src = B + (long long)(k0 + r) * N + blockCol + c;
        if (kVec) {
            const bool ok = row_ok && blockCol + c < N;
            copy_async<16>(&Bs[r * BS_PITCH + c], ok ? src : B, ok ? 16 : 0);
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const bool ok = row_ok && blockCol + c + q < N;
                copy_async<4>(&Bs[r * BS_PITCH + c + q], ok ? src + q : B, ok ? 4 : 0);
            }
        }
    }
}

template <bool kVec>
__device__ __forceinline__ void sgemm_tf32_pipelined(const float* __restrict__ A, const float* __restrict__ B,
                                                     float* __restrict__ C, int M, int N, int K,
                                                     long long strideA, long long strideB) {
    __shared__ __align__(16) float As[2][BM * AS_PITCH];
    __shared__ __align__(16) float Bs[2][BK * BS_PITCH];

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
    const int steps = (K + BK - 1) / BK;

    stage<kVec>(As[0], Bs[0], A, B, M, N, K, blockRow, blockCol, 0, tid);
    copy_commit();
    for (int step = 0; step < steps; ++step) {
        const int buf = step & 1;
        // the other buffer was last read in the previous step, which every thread has finished (barrier below)
        if (step + 1 < steps)
            stage<kVec>(As[buf ^ 1], Bs[buf ^ 1], A, B, M, N, K, blockRow, blockCol, (step + 1) * BK, tid);
        copy_commit();    // possibly empty: one group per step keeps the count below uniform
        copy_wait<1>();   // this thread's copies of step ``step`` are done (the next step's may be in flight)
        __syncthreads();  // ... and everyone's

        const float* as = As[buf];
        const float* bs = Bs[buf];
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            unsigned a[MI][4], b[NI][2];
            // fragment layouts of m16n8k8 as in v8, converted to TF32 as they are read
#pragma unroll
            for (int i = 0; i < MI; ++i) {
                const float* p = &as[(warpRow + i * 16 + g) * AS_PITCH + kk + t];
                a[i][0] = to_tf32(p[0]);
                a[i][1] = to_tf32(p[8 * AS_PITCH]);
                a[i][2] = to_tf32(p[4]);
                a[i][3] = to_tf32(p[8 * AS_PITCH + 4]);
            }
#pragma unroll
            for (int j = 0; j < NI; ++j) {
                const float* p = &bs[(kk + t) * BS_PITCH + warpCol + j * 8 + g];
                b[j][0] = to_tf32(p[0]);
                b[j][1] = to_tf32(p[4 * BS_PITCH]);
            }
#pragma unroll
            for (int i = 0; i < MI; ++i)
#pragma unroll
                for (int j = 0; j < NI; ++j) mma_tf32(acc[i][j], a[i], b[j]);
        }
        __syncthreads();  // this buffer is consumed before the next step's copies overwrite it
    }

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
sgemm_v9_tf32_cp_async_vec4(const float* A, const float* B, float* C, int M, int N, int K, long long strideA,
                            long long strideB) {
    sgemm_tf32_pipelined<true>(A, B, C, M, N, K, strideA, strideB);
}

extern "C" __global__ void __launch_bounds__(THREADS)
sgemm_v9_tf32_cp_async_scalar(const float* A, const float* B, float* C, int M, int N, int K, long long strideA,
                              long long strideB) {
    sgemm_tf32_pipelined<false>(A, B, C, M, N, K, strideA, strideB);
}
