// Stand-in for the CUDA runtime header, used only by the CPU emulation test of the CUDA kernels
// (tests/test_cuda_emulated.py). The .cu files are rewritten by tests/cuda_emu/transform.py
// (kernel<<<...>>>(args) -> emu::launch(...), __shared__ -> static storage poisoned per block) and
// compiled by the host compiler against this header and tests/cuda_emu/emu_rt.cpp.
//
// Execution model: a launch runs its blocks one after another on the calling OS thread; inside a
// block every CUDA thread is a fiber with its own stack (started lazily, its stack recycled when it
// finishes, so barrier-free kernels run on one hot stack). __syncthreads / __syncthreads_or is a
// real barrier over all threads of the block, warp shuffles and ballots a real barrier over the 32
// lanes of the warp. A barrier that can never complete (a thread exited or took another path) is
// reported as a deadlock and aborts. The order in which runnable threads are resumed is set per
// case (forward / reverse / pseudo-random) so that a missing barrier shows up as a wrong result.
// Device memory is host memory filled with 0xFF (NaN / -1) on allocation, with a guard zone checked
// on cudaFree; shared memory is refilled with 0xFF at the start of every block; cudaMemcpy checks
// that the "device" side of a copy lies inside a live allocation. Anything this header does not
// declare is a compile error, never a silent no-op.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

typedef int cudaError_t;
typedef void* cudaStream_t;
constexpr int cudaSuccess = 0;
constexpr int cudaErrorInvalidValue = 1;
constexpr int cudaErrorMemoryAllocation = 2;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3
};

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace emu {

// ---- the scheduler (emu_rt.cpp) ---------------------------------------------------------------------
struct Fiber;
extern Fiber* cur;                 // the running CUDA thread
extern dim3 cur_tid;               // its threadIdx (kept next to cur for cheap access)
extern dim3 bIdx, bDim, gDim;
extern void (*kernel_body)(void*);
extern void* kernel_ctx;
extern unsigned long long block_serial;  // increases at every block start

/// Resume order of runnable threads after each barrier: 0 forward, 1 reverse, 2 pseudo-random.
extern int order_mode;
/// Counters for the driver's report.
extern long long n_launch, n_blocks, n_threads_run;
/// Live cudaMalloc allocations, and faults found by the memory checks (guard zone overwritten,
/// copy outside an allocation, free of an unknown pointer).
extern long n_alloc;
extern long n_mem_faults;
/// What cudaMemGetInfo reports as free (the k-NN and re-ranking batch by it).
extern std::size_t free_mem;
/// Whether fibers switch without a system call (the assembly switch of x86-64 ELF targets); the
/// portable ucontext fallback is about 15 times slower.
extern const bool fast_switch;

[[noreturn]] void fatal(const char* fmt, ...);
/// Launch sites: transform.py registers every `<<<` of a .cu file at start-up; each launch counts.
int register_site(const char* file, int line, const char* kernel);
void site_launched(const char* file, int line);
/// Prints the launch sites never run (all of them when `all`), returns their number.
int report_unlaunched_sites(bool all);
void check_launch(dim3 grid, dim3 block, std::size_t smem);
void run_grid(dim3 grid, dim3 block, std::size_t smem);
void block_barrier();
int block_barrier_or(int p);
void warp_barrier();
extern double* warp_xchg;           // [2][threads] exchange buffers of the warp shuffles
extern unsigned long* warp_gens;    // per warp: completed warp barriers in this block
inline unsigned long warp_generation() { return warp_gens[cur_tid.x / 32]; }
inline double* warp_exchange(unsigned parity) { return warp_xchg + std::size_t(parity) * bDim.x; }
unsigned warp_ballot(int p);
void* dyn_smem();
bool device_malloc(void** p, std::size_t bytes);  // false when the request cannot be met
bool device_free(void* p);                        // false for a pointer not from device_malloc
bool is_device_range(const void* p, std::size_t bytes);
void poison(void* p, std::size_t bytes);

/// A kernel launch: the arguments are converted to the kernel's parameter types once, on the host,
/// then every block of the grid runs in turn, every thread of a block a fiber calling the kernel
/// with its own copy of the parameters.
/// file:line is the launch site in the .cu file (see register_site).
template <class... P, class... A>
void launch(const char* file, int line, dim3 grid, dim3 block, std::size_t smem, void (*kernel)(P...),
            A&&... args) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    site_launched(file, line);
    check_launch(grid, block, smem);
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    auto body = [&] { std::apply(kernel, params); };
    using Body = decltype(body);
    kernel_body = [](void* p) { (*static_cast<Body*>(p))(); };
    kernel_ctx = &body;
    run_grid(grid, block, smem);
}

/// __shared__ arrays become function-local statics; the first thread of each block that passes the
/// declaration refills the array with 0xFF (shared memory is uninitialised on a GPU, and stale
/// values of the previous block must not hide a missing write).
inline void shared_use(void* p, std::size_t bytes, unsigned long long& serial) {
    if (serial != block_serial) {
        serial = block_serial;
        poison(p, bytes);
    }
}

}  // namespace emu

#define threadIdx (::emu::cur_tid)
#define blockIdx (::emu::bIdx)
#define blockDim (::emu::bDim)
#define gridDim (::emu::gDim)

// ---- synchronisation and warp operations --------------------------------------------------------------
inline void __syncthreads() { emu::block_barrier(); }
inline int __syncthreads_or(int p) { return emu::block_barrier_or(p); }

namespace emu {
inline void full_mask(unsigned mask, const char* what) {
    if (mask != 0xffffffffu) fatal("%s with a partial mask 0x%x is not emulated", what, mask);
}
}  // namespace emu

// Lane l receives the value of lane l + off (its own value when l + off >= 32).
inline double __shfl_down_sync(unsigned mask, double v, unsigned off) {
    emu::full_mask(mask, "__shfl_down_sync");
    const unsigned t = threadIdx.x, lane = t % 32;
    double* buf = emu::warp_exchange(static_cast<unsigned>(emu::warp_generation() & 1));
    buf[t] = v;
    emu::warp_barrier();
    return lane + off < 32 ? buf[t + off] : v;
}
// Lane l receives the value of lane l ^ off.
inline double __shfl_xor_sync(unsigned mask, double v, int off) {
    emu::full_mask(mask, "__shfl_xor_sync");
    const unsigned t = threadIdx.x;
    double* buf = emu::warp_exchange(static_cast<unsigned>(emu::warp_generation() & 1));
    buf[t] = v;
    emu::warp_barrier();
    return buf[(t & ~31u) | ((t & 31u) ^ (static_cast<unsigned>(off) & 31u))];
}
inline unsigned __ballot_sync(unsigned mask, int p) {
    emu::full_mask(mask, "__ballot_sync");
    return emu::warp_ballot(p);
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }

// Atomics: fibers switch only at barriers, so a plain read-modify-write is atomic.
inline int atomicOr(int* p, int v) {
    const int old = *p;
    *p = old | v;
    return old;
}
inline double atomicAdd(double* p, double v) {
    const double old = *p;
    *p = old + v;
    return old;
}

// Correctly rounded arithmetic without contraction (the test is built with -ffp-contract=off).
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }

// CUDA's device math in the global namespace, and its integer min / max overloads.
using std::exp;
using std::fma;
using std::fmax;
using std::fmin;
using std::pow;
using std::sqrt;
inline int min(int a, int b) { return a < b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }

// 16-byte vector types (the layout and alignment of CUDA's vector_types.h) and their makers.
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) double2 {
    double x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }

// ---- runtime API (synchronous; streams are ignored) ---------------------------------------------------
inline const char* cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : (e == cudaErrorMemoryAllocation ? "out of memory (emulated)"
                                                                           : "invalid argument (emulated)");
}
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaPeekAtLastError() { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) {
    *d = 0;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
    *free_bytes = emu::free_mem;
    *total_bytes = emu::free_mem;
    return cudaSuccess;
}

template <class T>
cudaError_t cudaMalloc(T** p, std::size_t bytes) {
    void* q = nullptr;
    const cudaError_t e = emu::device_malloc(&q, bytes) ? cudaSuccess : cudaErrorMemoryAllocation;
    *p = static_cast<T*>(q);
    return e;
}
inline cudaError_t cudaFree(void* p) {
    if (!p) return cudaSuccess;
    return emu::device_free(p) ? cudaSuccess : cudaErrorInvalidValue;
}
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpy2D(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                         std::size_t width, std::size_t height, cudaMemcpyKind kind);
cudaError_t cudaMemset(void* dst, int value, std::size_t bytes);
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t = nullptr) {
    return cudaMemcpy(dst, src, bytes, kind);
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t = nullptr) {
    return cudaMemset(dst, value, bytes);
}
inline cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                                     std::size_t width, std::size_t height, cudaMemcpyKind kind,
                                     cudaStream_t = nullptr) {
    return cudaMemcpy2D(dst, dpitch, src, spitch, width, height, kind);
}
