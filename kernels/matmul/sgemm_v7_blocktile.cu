// v7: 2-D block tiling in CUDA C with float4 loads and a transposed A tile (siboehm's kernel 6).
//
// C[z] = A[z] @ B[z], row-major; blockIdx.z is the batch index and a batch stride of 0 broadcasts an
// operand. A block of 256 threads owns a 128x128 tile of C; each thread owns an 8x8 register block.
// Per 8-wide k step the block stages A (128x8) and B (8x128) in shared memory: every thread loads one
// float4 of each. A is stored k-major (As[k][m]) so a thread's 8 values of A for one k are contiguous and
// load as two LDS.128, like its 8 values of B.
//
// Edges: loads past M, N or K read zero (so the partial K step adds nothing) and stores past M or N are
// skipped. The float4 path needs K and N to be multiples of 4 and 16-byte aligned bases (then a group of 4
// is either wholly inside or wholly outside the matrix); the launcher picks the scalar entry point otherwise.

#define BM 128
#define BN 128
#define BK 8
#define TM 8
#define TN 8
#define THREADS ((BM / TM) * (BN / TN))

template <bool kVec>
__device__ __forceinline__ void sgemm_blocktile(const float* __restrict__ A, const float* __restrict__ B,
                                                float* __restrict__ C, int M, int N, int K,
                                                long long strideA, long long strideB) {
    __shared__ __align__(16) float As[BK * BM];
    __shared__ __align__(16) float Bs[BK * BN];

    const int z = blockIdx.z;
    A += z * strideA;
    B += z * strideB;
    C += (long long)z * M * N;
    const int blockRow = blockIdx.y * BM;
    const int blockCol = blockIdx.x * BN;
    const int tid = threadIdx.x;
    const int threadRow = tid / (BN / TN);
    const int threadCol = tid % (BN / TN);
    // The group of 4 each thread stages: A row aRow, columns aCol..aCol+3; B row bRow, columns bCol..+3.
    const int aRow = tid / (BK / 4), aCol = (tid % (BK / 4)) * 4;
    const int bRow = tid / (BN / 4), bCol = (tid % (BN / 4)) * 4;

    float acc[TM][TN] = {};
    float regM[TM], regN[TN];

    for (int k0 = 0; k0 < K; k0 += BK) {
        float4 a4 = make_float4(0.f, 0.f, 0.f, 0.f), b4 = make_float4(0.f, 0.f, 0.f, 0.f);
        const int r = blockRow + aRow, ka = k0 + aCol;
        const int kb = k0 + bRow, c = blockCol + bCol;
        if (kVec) {
            if (r < M && ka < K) a4 = *reinterpret_cast<const float4*>(&A[(long long)r * K + ka]);
            if (kb < K && c < N) b4 = *reinterpret_cast<const float4*>(&B[(long long)kb * N + c]);
        } else {
            float* pa = &a4.x;
            float* pb = &b4.x;
            for (int q = 0; q < 4; ++q) {
                if (r < M && ka + q < K) pa[q] = A[(long long)r * K + ka + q];
                if (kb < K && c + q < N) pb[q] = B[(long long)kb * N + c + q];
            }
        }
        As[(aCol + 0) * BM + aRow] = a4.x;  // transposed store: 4 scalar STS, paid once per tile
        As[(aCol + 1) * BM + aRow] = a4.y;
        As[(aCol + 2) * BM + aRow] = a4.z;
        As[(aCol + 3) * BM + aRow] = a4.w;
        *reinterpret_cast<float4*>(&Bs[bRow * BN + bCol]) = b4;
        __syncthreads();  // tiles complete before the outer products

#pragma unroll
        for (int k = 0; k < BK; ++k) {
#pragma unroll
            for (int i = 0; i < TM; i += 4)
                *reinterpret_cast<float4*>(&regM[i]) = *reinterpret_cast<const float4*>(&As[k * BM + threadRow * TM + i]);
#pragma unroll
            for (int j = 0; j < TN; j += 4)
                *reinterpret_cast<float4*>(&regN[j]) = *reinterpret_cast<const float4*>(&Bs[k * BN + threadCol * TN + j]);
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] += regM[i] * regN[j];
        }
        __syncthreads();  // tiles consumed before the next step overwrites them
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int r = blockRow + threadRow * TM + i;
        if (r >= M) break;
#pragma unroll
        for (int j = 0; j < TN; j += 4) {
            const int c = blockCol + threadCol * TN + j;
            if (kVec && c < N) {
                *reinterpret_cast<float4*>(&C[(long long)r * N + c]) =
                    make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
            } else {
                for (int q = 0; q < 4; ++q)
                    if (c + q < N) C[(long long)r * N + c + q] = acc[i][j + q];
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
sgemm_v7_vec4(const float* A, const float* B, float* C, int M, int N, int K, long long strideA, long long strideB) {
    sgemm_blocktile<true>(A, B, C, M, N, K, strideA, strideB);
}

extern "C" __global__ void __launch_bounds__(THREADS)
sgemm_v7_scalar(const float* A, const float* B, float* C, int M, int N, int K, long long strideA, long long strideB) {
    sgemm_blocktile<false>(A, B, C, M, N, K, strideA, strideB);
}
