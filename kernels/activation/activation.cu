// Activation gradients in CUDA C (v2; launchers in cupy_cuda.py): dL/dx from the saved output y and the
// incoming gradient g, one pass, one thread per element in a grid-stride loop (each warp reads 128
// consecutive bytes of g and of y and writes 128 of the result: coalesced, the bandwidth bound).
//
// The products and differences use the _rn intrinsics, which the compiler never contracts into a fused
// multiply-add, so the result is rounded step by step as NumPy rounds ``g * (1 - y * y)``: bit for bit
// the CPU's value. ReLU follows PyTorch's threshold_backward: 0 where y <= 0, else g (so an output of NaN
// passes its gradient, and a NaN gradient at a clamped output becomes 0).

__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }

template <typename T>
struct ReluGrad {
    __device__ T operator()(T g, T y) const { return y <= T(0) ? T(0) : g; }
};

template <typename T>
struct TanhGrad {
    __device__ T operator()(T g, T y) const { return mul(g, sub(T(1), mul(y, y))); }
};

template <typename T>
struct SigmoidGrad {
    __device__ T operator()(T g, T y) const { return mul(mul(g, y), sub(T(1), y)); }
};

template <typename T, class Grad>
__device__ void pointwise(const T* __restrict__ g, const T* __restrict__ y, T* __restrict__ out, long long n) {
    const Grad grad;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = grad(g[i], y[i]);
}

#define GRADIENT(name, Grad, T, suffix)                                                                      \
    extern "C" __global__ void activation_backward_##name##_##suffix(const T* g, const T* y, T* out,         \
                                                                     long long n) {                          \
        pointwise<T, Grad<T>>(g, y, out, n);                                                                 \
    }

GRADIENT(relu, ReluGrad, float, f32)
GRADIENT(relu, ReluGrad, double, f64)
GRADIENT(tanh, TanhGrad, float, f32)
GRADIENT(tanh, TanhGrad, double, f64)
GRADIENT(sigmoid, SigmoidGrad, float, f32)
GRADIENT(sigmoid, SigmoidGrad, double, f64)
