// CUDA C on the CPU: the part of the CUDA programming model this project's .cu kernels use, emulated on the
// host, so their logic (indexing, tiling, edge guards, barriers, tensor-core fragment layouts) runs and is
// tested on a machine without a GPU. kernels/host_cuda.py compiles a .cu file with g++ and this header
// forced in front of it, and launches its kernels on NumPy arrays.
//
// Execution model. A launch runs the blocks of the grid one after another. The threads of a block are
// fibers (ucontext) on one OS thread: each runs until it reaches a barrier (__syncthreads, or the warp
// barrier inside an emulated mma.sync) or returns, then the next one runs. A barrier opens when every
// thread of its scope waits at it, and a warp runs on through its warp barriers until it reaches the
// block's barrier before the next warp starts. This order is deterministic and it is hostile to missing
// barriers: warp 0 (and within it thread 0) runs alone to the first __syncthreads, so a thread that reads
// shared memory another thread has not written yet, or overwrites a tile others still read, gets wrong
// data every time, not once in a while.
// __shared__ variables are function statics, which is what shared memory is when one block runs at a time.
//
// Asynchronous copies (cp.async) happen as late as the PTX ISA allows (when a cp.async.wait_group that
// covers their group runs, or when their thread returns), so a kernel that reads a staged tile before
// waiting for it reads the tile's old contents; or, with tl_host_early_copies(1), as early as it allows
// (when issued), so a kernel that starts the next copy into a buffer other threads still read (a missing
// barrier after the last read) overwrites it under them. The tests run pipelined kernels both ways.
//
// Checked: a __syncthreads that not every thread of the block reaches (some returned, or wait at a warp
// barrier) stops the launch with an error naming the block, instead of hanging or passing silently.
// Not emulated: the timing, occupancy and memory model of a GPU (there is one OS thread), atomics, warp
// shuffles, dynamic shared memory; a kernel using them does not compile here. Shared memory is not
// cleared between blocks (stale values from the previous block stay, as they may on a GPU).

#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#define TENSORLIB_HOST_EMULATION 1

#define __global__ __attribute__((used))
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
};
struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
};
struct __attribute__((aligned(16))) uint4 {
    unsigned x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
// rounded arithmetic that is never contracted into an FMA (the host build is compiled with -ffp-contract=off)
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
using std::max;
using std::min;

// The built-in variables: plain globals, set by the scheduler before it resumes a thread.
uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace tl_host {

enum State { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct Thread {
    ucontext_t context;
    State state;
    char* stack;
};

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr int WARP = 32;

ucontext_t scheduler;
std::vector<Thread> threads;
int current = 0;
void (*body)(void*) = nullptr;
void* body_argument = nullptr;
std::string error;

inline unsigned linear_thread() { return (unsigned)current; }

// cp.async: per thread, the copies of the open group, then the committed groups, oldest first
struct Copy {
    void* dst;
    const void* src;
    int bytes, src_bytes;
};
std::vector<std::vector<Copy>> open_copies;
bool early_copies = false;
std::vector<std::vector<std::vector<Copy>>> committed_copies;

inline void perform(const std::vector<Copy>& group) {
    for (const Copy& c : group) {
        std::memcpy(c.dst, c.src, (size_t)c.src_bytes);
        std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0, (size_t)(c.bytes - c.src_bytes));  // zero-fill
    }
}

// Leaves the newest ``pending`` committed groups of this thread in flight and completes the rest.
inline void wait_copies(unsigned thread, size_t pending) {
    auto& groups = committed_copies[thread];
    while (groups.size() > pending) {
        perform(groups.front());
        groups.erase(groups.begin());
    }
}

inline void wait(State state) {
    threads[current].state = state;
    swapcontext(&threads[current].context, &scheduler);
}

inline void thread_main() {
    body(body_argument);
    // copies still in flight complete before the thread's block ends
    committed_copies[current].push_back(std::move(open_copies[current]));
    open_copies[current].clear();
    wait_copies((unsigned)current, 0);
    threads[current].state = DONE;  // returning resumes the scheduler (uc_link)
}

inline void set_thread_index(unsigned i) {
    threadIdx.x = i % blockDim.x;
    threadIdx.y = i / blockDim.x % blockDim.y;
    threadIdx.z = i / (blockDim.x * blockDim.y);
}

// Runs one block to completion; false (and ``error`` set) when its threads can never all finish.
inline bool run_block() {
    const unsigned n = blockDim.x * blockDim.y * blockDim.z;
    for (unsigned i = 0; i < n; ++i) {
        Thread& t = threads[i];
        getcontext(&t.context);
        t.context.uc_stack.ss_sp = t.stack;
        t.context.uc_stack.ss_size = STACK_BYTES;
        t.context.uc_link = &scheduler;
        makecontext(&t.context, thread_main, 0);
        t.state = RUNNABLE;
    }
    for (;;) {
        // warp by warp: a warp runs on through its warp barriers until every lane waits at __syncthreads
        // or has returned, before the next warp starts (so warps are as far apart as a GPU lets them be)
        for (unsigned w = 0; w * WARP < n; ++w) {
            const unsigned begin = w * WARP, end = std::min(n, begin + WARP);
            for (;;) {
                for (unsigned i = begin; i < end; ++i) {
                    if (threads[i].state != RUNNABLE) continue;
                    current = (int)i;
                    set_thread_index(i);
                    swapcontext(&scheduler, &threads[i].context);
                }
                // a warp barrier opens when every thread of the warp waits at it
                bool all = true;
                for (unsigned i = begin; i < end; ++i) all = all && threads[i].state == AT_WARP_BARRIER;
                if (!all) break;
                for (unsigned i = begin; i < end; ++i) threads[i].state = RUNNABLE;
            }
        }
        unsigned done = 0, at_block = 0, at_warp = 0;
        for (unsigned i = 0; i < n; ++i) {
            done += threads[i].state == DONE;
            at_block += threads[i].state == AT_BLOCK_BARRIER;
            at_warp += threads[i].state == AT_WARP_BARRIER;
        }
        if (done == n) return true;
        bool released = false;
        // __syncthreads opens when every thread of the block waits at it
        if (at_block == n) {
            for (unsigned i = 0; i < n; ++i) threads[i].state = RUNNABLE;
            released = true;
        }
        if (!released) {
            char message[256];
            std::snprintf(message, sizeof message,
                          "block (%u, %u, %u) of %u threads: %u wait at __syncthreads(), %u at a warp barrier, "
                          "%u returned: a barrier that not every thread reaches",
                          blockIdx.x, blockIdx.y, blockIdx.z, n, at_block, at_warp, done);
            error = message;
            return false;
        }
    }
}

inline int run(const unsigned* grid, const unsigned* block, void (*fn)(void*), void* argument) {
    error.clear();
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    const unsigned n = blockDim.x * blockDim.y * blockDim.z;
    if (n == 0 || n > 1024 || gridDim.x == 0 || gridDim.y == 0 || gridDim.z == 0) {
        error = "invalid launch configuration: a block has 1 to 1024 threads and every grid dimension is >= 1";
        return 1;
    }
    while (threads.size() < n) threads.push_back({{}, DONE, static_cast<char*>(std::malloc(STACK_BYTES))});
    open_copies.assign(n, {});
    committed_copies.assign(n, {});
    body = fn;
    body_argument = argument;
    for (unsigned z = 0; z < gridDim.z; ++z)
        for (unsigned y = 0; y < gridDim.y; ++y)
            for (unsigned x = 0; x < gridDim.x; ++x) {
                blockIdx = {x, y, z};
                if (!run_block()) return 1;
            }
    return 0;
}

// Calls ``fn`` with its arguments read from ``args`` (pointers to the values, as cuLaunchKernel takes them).
template <class... A, size_t... I>
void call(void (*fn)(A...), void** args, std::index_sequence<I...>) {
    fn(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

template <class... A>
int launch(void (*fn)(A...), const unsigned* grid, const unsigned* block, void** args) {
    struct Call {
        void (*fn)(A...);
        void** args;
    } closure{fn, args};
    return run(grid, block,
               [](void* p) {
                   auto* c = static_cast<Call*>(p);
                   call(c->fn, c->args, std::index_sequence_for<A...>{});
               },
               &closure);
}

// The parameter kinds, comma separated: p<element bytes> for a pointer, i<bytes> an integer, f<bytes> a
// floating-point value, s<bytes> anything else passed by value.
template <class T>
std::string kind() {
    if constexpr (std::is_pointer_v<T>) {
        using E = std::remove_cv_t<std::remove_pointer_t<T>>;
        if constexpr (std::is_void_v<E>)
            return "p0";
        else
            return "p" + std::to_string(sizeof(E));
    } else if constexpr (std::is_floating_point_v<T>) {
        return "f" + std::to_string(sizeof(T));
    } else if constexpr (std::is_integral_v<T>) {
        return "i" + std::to_string(sizeof(T));
    } else {
        return "s" + std::to_string(sizeof(T));
    }
}

template <class... A>
const char* signature(void (*)(A...)) {
    static const std::string text = [] {
        std::string s;
        ((s += (s.empty() ? "" : ",") + kind<A>()), ...);
        return s;
    }();
    return text.c_str();
}

// ---- tensor cores: cvt.rna.tf32.f32 and mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32

inline float bits_to_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline unsigned float_to_bits(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}

// Round to the nearest TF32 value (10 mantissa bits), ties away from zero; the low 13 bits become 0.
inline unsigned cvt_rna_tf32(float x) {
    unsigned u = float_to_bits(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x007fffffu) ? 0x7fffffffu : u;  // NaN, +-inf
    return (u + 0x1000u) & 0xffffe000u;
}

struct MmaLane {
    unsigned a[4], b[2];
    float c[4];
};
MmaLane mma_lanes[1024];

// One warp-wide D = A (16x8, row) * B (8x8, col) + C, every lane holding the fragments the PTX ISA assigns
// it (group g = lane / 4, t = lane % 4): A a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); B b0 (t, g),
// b1 (t+4, g); C and D c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1). Each lane deposits its
// fragments, the warp meets, each lane computes its four results from everyone's, the warp meets again.
inline void mma_m16n8k8_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    const unsigned me = linear_thread(), warp_base = me - me % WARP;
    MmaLane& mine = mma_lanes[me];
    for (int i = 0; i < 4; ++i) mine.a[i] = a[i], mine.c[i] = d[i];
    mine.b[0] = b[0], mine.b[1] = b[1];
    wait(AT_WARP_BARRIER);
    const unsigned lane = me % WARP, g = lane / 4, t = lane % 4;
    float out[4];
    for (int i = 0; i < 4; ++i) {
        const unsigned row = g + 8 * (i / 2), col = 2 * t + i % 2;
        float sum = mine.c[i];
        for (unsigned k = 0; k < 8; ++k) {
            const MmaLane& a_owner = mma_lanes[warp_base + (row % 8) * 4 + k % 4];
            const MmaLane& b_owner = mma_lanes[warp_base + col * 4 + k % 4];
            const float x = bits_to_float(a_owner.a[(row >= 8) + 2 * (k >= 4)] & 0xffffe000u);
            const float y = bits_to_float(b_owner.b[k >= 4] & 0xffffe000u);
            sum += x * y;
        }
        out[i] = sum;
    }
    wait(AT_WARP_BARRIER);  // every lane has read the deposits before any lane's next mma overwrites them
    for (int i = 0; i < 4; ++i) d[i] = out[i];
}

// ---- asynchronous copies: cp.async.{ca,cg}.shared.global, commit_group, wait_group

inline void cp_async(void* shared, const void* global, int bytes, int src_bytes) {
    if (early_copies)
        perform({{shared, global, bytes, src_bytes}});
    else
        open_copies[current].push_back({shared, global, bytes, src_bytes});
}

inline void cp_async_commit() {
    committed_copies[current].push_back(std::move(open_copies[current]));
    open_copies[current].clear();
}

inline void cp_async_wait(int pending) { wait_copies((unsigned)current, (size_t)pending); }

}  // namespace tl_host

inline void __syncthreads() { tl_host::wait(tl_host::AT_BLOCK_BARRIER); }

extern "C" const char* tl_host_error() { return tl_host::error.c_str(); }
extern "C" void tl_host_early_copies(int early) { tl_host::early_copies = early != 0; }
