// The scheduler and the device-memory model of the CUDA emulation (see include/cuda_runtime.h).
// Blocks run one after another on the calling OS thread. The threads of a block are fibers: a
// context switch written in assembly on x86-64 ELF targets (no system call per switch), POSIX
// ucontext elsewhere. Fibers are started lazily and give their stack back when they finish, so a
// kernel without barriers runs thread after thread on one stack. After every barrier the runnable
// threads are resumed in the order set by emu::order_mode.
#if !(defined(__x86_64__) && defined(__ELF__)) || defined(EMU_USE_UCONTEXT)
#define EMU_UCONTEXT 1
#if defined(__APPLE__) && !defined(_XOPEN_SOURCE)
#define _XOPEN_SOURCE 600
#endif
#include <ucontext.h>
#endif

#include <cuda_runtime.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace emu {

// ---- fibers -------------------------------------------------------------------------------------------
enum State : int { kFresh, kRunning, kBlockWait, kWarpWait, kDone };

struct Fiber {
#if defined(EMU_UCONTEXT)
    ucontext_t uc;
#else
    void* sp = nullptr;
#endif
    dim3 tid;
    int state = kFresh;
    unsigned long wait_gen = 0;
    char* stack = nullptr;  // base of the usable stack (above the guard page)
};

Fiber* cur = nullptr;
dim3 cur_tid;
dim3 bIdx, bDim, gDim;
void (*kernel_body)(void*) = nullptr;
void* kernel_ctx = nullptr;
unsigned long long block_serial = 0;
int order_mode = 0;
long long n_launch = 0, n_blocks = 0, n_threads_run = 0;
long n_alloc = 0;
long n_mem_faults = 0;
std::size_t free_mem = std::size_t(1) << 30;
double* warp_xchg = nullptr;
unsigned long* warp_gens = nullptr;
#if defined(EMU_UCONTEXT)
const bool fast_switch = false;  // swapcontext: a system call (signal mask) per switch
#else
const bool fast_switch = true;
#endif

namespace {

constexpr std::size_t kStack = 256 * 1024;  // usable bytes per fiber stack
constexpr unsigned char kGuardByte = 0xA5;  // guard zones after device and dynamic shared memory
std::size_t page_size() {
    static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return p;
}

std::vector<Fiber> fibers;
std::vector<char*> stack_pool;
std::vector<unsigned> order;
unsigned nthreads = 0;
unsigned block_count = 0;
unsigned long block_gen = 0;
int block_or[2] = {0, 0};
std::vector<unsigned> warp_count, warp_size;
std::vector<unsigned long> warp_gen;
std::vector<unsigned> warp_ball;   // [warp][2]
std::vector<double> xchg;          // [2][threads]
std::vector<double> dyn;           // dynamic shared memory of the current launch
std::size_t dyn_bytes = 0;
constexpr std::size_t kDynGuard = 64;     // bytes after the dynamic shared memory, checked per block
char cur_site[256] = "";                  // "file:line kernel" of the running launch
void mem_fault(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned long long rng = 88172645463325252ull;

char* new_stack() {
    if (!stack_pool.empty()) {
        char* s = stack_pool.back();
        stack_pool.pop_back();
        return s;
    }
    const std::size_t guard = page_size();
    void* m = mmap(nullptr, kStack + guard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fatal("mmap of a fiber stack failed");
    if (mprotect(m, guard, PROT_NONE) != 0) fatal("mprotect of a fiber stack guard page failed");
    return static_cast<char*>(m) + guard;
}

#if defined(EMU_UCONTEXT)
ucontext_t sched_uc;

void fiber_entry() {
    kernel_body(kernel_ctx);
    cur->state = kDone;
    // returning resumes uc_link (the scheduler)
}
void start_fiber(Fiber& f) {
    if (getcontext(&f.uc) != 0) fatal("getcontext failed");
    f.uc.uc_stack.ss_sp = f.stack;
    f.uc.uc_stack.ss_size = kStack;
    f.uc.uc_link = &sched_uc;
    makecontext(&f.uc, fiber_entry, 0);
}
void resume(Fiber& f) {
    if (swapcontext(&sched_uc, &f.uc) != 0) fatal("swapcontext failed");
}
void yield() {
    if (swapcontext(&cur->uc, &sched_uc) != 0) fatal("swapcontext failed");
}
#else
void* sched_sp = nullptr;
}  // namespace
}  // namespace emu

// emu_swap(save, to): pushes the callee-saved registers, stores the stack pointer in *save, switches
// to the stack `to` and pops its registers (System V x86-64 ABI).
extern "C" void emu_swap(void** save_sp, void* to_sp);
asm(R"(
.text
.globl emu_swap
.type emu_swap,@function
emu_swap:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size emu_swap, .-emu_swap
)");

namespace emu {
namespace {

void yield() { emu_swap(&cur->sp, sched_sp); }

[[noreturn]] void fiber_entry() {
    kernel_body(kernel_ctx);
    cur->state = kDone;
    yield();
    __builtin_unreachable();
}
void start_fiber(Fiber& f) {
    auto top = reinterpret_cast<std::uintptr_t>(f.stack + kStack) & ~std::uintptr_t(15);
    void** sp = reinterpret_cast<void**>(top);
    *--sp = nullptr;                                     // fake return address of fiber_entry
    *--sp = reinterpret_cast<void*>(&fiber_entry);       // emu_swap's ret jumps here
    for (int r = 0; r < 6; ++r) *--sp = nullptr;         // rbp rbx r12 r13 r14 r15
    f.sp = sp;
}
void resume(Fiber& f) { emu_swap(&sched_sp, f.sp); }
#endif

const char* state_name(int s) {
    switch (s) {
        case kFresh: return "not started";
        case kRunning: return "running";
        case kBlockWait: return "at __syncthreads";
        case kWarpWait: return "at a warp shuffle/ballot";
        default: return "exited";
    }
}

// Resumes f if it can go on; returns whether it ran.
inline bool try_resume(Fiber& f, unsigned& remaining) {
    switch (f.state) {
        case kDone: return false;
        case kBlockWait:
            if (block_gen == f.wait_gen) return false;
            break;
        case kWarpWait:
            if (warp_gen[f.tid.x / 32] == f.wait_gen) return false;
            break;
        case kFresh:
            f.stack = new_stack();
            start_fiber(f);
            break;
        default: fatal("internal error: fiber in state %d", f.state);
    }
    f.state = kRunning;
    cur = &f;
    cur_tid = f.tid;
    resume(f);
    if (f.state == kDone) {
        stack_pool.push_back(f.stack);
        f.stack = nullptr;
        --remaining;
    }
    return true;
}

unsigned next_random(unsigned bound) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<unsigned>(rng % bound);
}

// order: the threads grouped by warp, warps and the lanes inside each warp in the order of
// order_mode; warp_first[i]..warp_first[i + 1] the lanes of the i-th warp to run.
std::vector<unsigned> warp_first, warp_perm;
void make_order(unsigned nt, unsigned nw) {
    warp_perm.resize(nw);
    warp_first.resize(nw + 1);
    for (unsigned w = 0; w < nw; ++w) warp_perm[w] = order_mode == 1 ? nw - 1 - w : w;
    if (order_mode == 2)
        for (unsigned w = nw - 1; w > 0; --w) std::swap(warp_perm[w], warp_perm[next_random(w + 1)]);
    unsigned pos = 0;
    for (unsigned i = 0; i < nw; ++i) {
        const unsigned w = warp_perm[i], t0 = 32 * w, cnt = std::min(32u, nt - t0);
        warp_first[i] = pos;
        for (unsigned l = 0; l < cnt; ++l) order[pos + l] = t0 + (order_mode == 1 ? cnt - 1 - l : l);
        if (order_mode == 2)
            for (unsigned l = cnt - 1; l > 0; --l) std::swap(order[pos + l], order[pos + next_random(l + 1)]);
        pos += cnt;
    }
    warp_first[nw] = pos;
}

void run_block(unsigned nt) {
    nthreads = nt;
    if (fibers.size() < nt) fibers.resize(nt);
    order.resize(nt);
    for (unsigned t = 0; t < nt; ++t) {
        fibers[t].tid = dim3(t);
        fibers[t].state = kFresh;
        fibers[t].wait_gen = 0;
    }
    block_count = 0;
    block_or[0] = block_or[1] = 0;
    const unsigned nw = (nt + 31) / 32;
    warp_count.assign(nw, 0u);
    warp_size.resize(nw);
    for (unsigned w = 0; w < nw; ++w) warp_size[w] = std::min(32u, nt - 32 * w);
    warp_gen.assign(nw, 0ul);
    warp_gens = warp_gen.data();
    warp_ball.assign(2 * std::size_t(nw), 0u);
    ++block_serial;
    ++n_blocks;
    auto* dyn_base = reinterpret_cast<unsigned char*>(dyn.data());
    poison(dyn_base, dyn_bytes);
    std::memset(dyn_base + dyn_bytes, kGuardByte, kDynGuard);
    n_threads_run += nt;

    // Rounds: every warp in turn runs as far as it can (until each of its threads has finished or
    // waits at __syncthreads), its lanes resumed one after another until none can go on; a round
    // ends when every warp is stuck. The next round starts when __syncthreads has released the block.
    // Running a warp at a time keeps 32 fiber stacks hot in the cache.
    unsigned remaining = nt;
    while (remaining) {
        make_order(nt, nw);
        bool progress = false;
        for (unsigned wi = 0; wi < nw; ++wi) {
            const unsigned* lanes = order.data() + warp_first[wi];
            const unsigned count = warp_first[wi + 1] - warp_first[wi];
            for (;;) {
                bool moved = false;
                for (unsigned k = 0; k < count; ++k) moved |= try_resume(fibers[lanes[k]], remaining);
                if (!moved) break;
                progress = true;
            }
        }
        if (!progress) {
            unsigned count[kDone + 1] = {0, 0, 0, 0, 0};
            for (unsigned t = 0; t < nt; ++t) ++count[fibers[t].state];
            std::fflush(stdout);
            std::fprintf(stderr,
                         "EMU: deadlock in block (%u,%u,%u) of %u threads of the launch at %s: %u %s, %u %s, "
                         "%u %s (a barrier not reached by every thread of the block / warp)\n",
                         bIdx.x, bIdx.y, bIdx.z, nt, cur_site, count[kBlockWait], state_name(kBlockWait),
                         count[kWarpWait], state_name(kWarpWait), count[kDone], state_name(kDone));
            std::abort();
        }
    }
    cur = nullptr;
    for (std::size_t g = 0; g < kDynGuard; ++g)
        if (dyn_base[dyn_bytes + g] != kGuardByte) {
            mem_fault("block (%u,%u,%u) of the launch at %s wrote past its %zu bytes of dynamic shared memory",
                      bIdx.x, bIdx.y, bIdx.z, cur_site, dyn_bytes);
            break;
        }
}

// ---- device memory ------------------------------------------------------------------------------------
constexpr std::size_t kGuard = 4096;  // guard bytes before and after every device allocation
std::map<std::uintptr_t, std::size_t> allocations;  // start -> bytes

void mem_fault(const char* fmt, ...) {
    if (++n_mem_faults > 20) {
        if (n_mem_faults == 21) std::fputs("EMU memory fault: more faults, not shown\n", stderr);
        return;
    }
    std::fflush(stdout);
    std::fputs("EMU memory fault: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

bool in_any_allocation(const void* p) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin()) return false;
    --it;
    return a < it->first + std::max<std::size_t>(it->second, 1);
}

}  // namespace

void fatal(const char* fmt, ...) {
    std::fflush(stdout);
    std::fputs("EMU: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
    std::abort();
}

namespace {
struct Site {
    std::string kernel;
    long long launches = 0;
};
std::map<std::pair<std::string, int>, Site>& sites() {
    static std::map<std::pair<std::string, int>, Site> s;  // constructed before any registration
    return s;
}
}  // namespace

int register_site(const char* file, int line, const char* kernel) {
    sites()[{file, line}].kernel = kernel;
    return 0;
}

void site_launched(const char* file, int line) {
    auto it = sites().find({file, line});
    if (it == sites().end()) fatal("launch from %s:%d, a site transform.py did not register", file, line);
    ++it->second.launches;
    std::snprintf(cur_site, sizeof cur_site, "%s:%d %s", file, line, it->second.kernel.c_str());
}

int report_unlaunched_sites(bool all) {
    int missing = 0;
    for (const auto& [key, site] : sites()) {
        if (site.launches && !all) continue;
        if (!site.launches) ++missing;
        std::printf("  launch site %s:%d %s: %lld launches\n", key.first.c_str(), key.second, site.kernel.c_str(),
                    site.launches);
    }
    return missing;
}

void check_launch(dim3 grid, dim3 block, std::size_t smem) {
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    if (block.x == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 || smem > 48 * 1024)
        fatal("invalid launch: grid (%u,%u,%u) block (%u,%u,%u) dynamic shared memory %zu bytes "
              "(CUDA rejects it)", grid.x, grid.y, grid.z, block.x, block.y, block.z, smem);
    if (block.y != 1 || block.z != 1)
        fatal("launch with a 2-D/3-D block (%u,%u,%u): not emulated", block.x, block.y, block.z);
    if (cur) fatal("kernel launch from device code: not emulated");
}

void run_grid(dim3 grid, dim3 block, std::size_t smem) {
    ++n_launch;
    bDim = block;
    gDim = grid;
    dyn_bytes = smem;
    dyn.resize((smem + kDynGuard) / sizeof(double) + 1);
    xchg.resize(2 * std::size_t(block.x));
    warp_xchg = xchg.data();
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                bIdx = dim3(bx, by, bz);
                run_block(block.x);
            }
    dyn_bytes = 0;
}

void block_barrier() {
    if (!cur) fatal("__syncthreads outside a kernel");
    if (++block_count == nthreads) {  // the last arrival releases the others and goes on
        block_count = 0;
        block_or[(block_gen + 1) & 1] = 0;
        ++block_gen;
        return;
    }
    cur->state = kBlockWait;
    cur->wait_gen = block_gen;
    yield();
}

int block_barrier_or(int p) {
    if (!cur) fatal("__syncthreads_or outside a kernel");
    const unsigned slot = static_cast<unsigned>(block_gen & 1);
    block_or[slot] |= (p != 0);
    block_barrier();
    return block_or[slot];
}

void warp_barrier() {
    if (!cur) fatal("warp operation outside a kernel");
    const unsigned w = cur_tid.x / 32;
    if (warp_size[w] != 32) fatal("warp operation in the partial warp %u of a block of %u threads", w, nthreads);
    if (++warp_count[w] == 32) {
        warp_count[w] = 0;
        warp_ball[2 * w + ((warp_gen[w] + 1) & 1)] = 0;
        ++warp_gen[w];
        return;
    }
    cur->state = kWarpWait;
    cur->wait_gen = warp_gen[w];
    yield();
}


unsigned warp_ballot(int p) {
    if (!cur) fatal("__ballot_sync outside a kernel");
    const unsigned t = cur_tid.x, w = t / 32;
    const std::size_t slot = 2 * std::size_t(w) + (warp_gen[w] & 1);
    if (p) warp_ball[slot] |= 1u << (t % 32);
    warp_barrier();
    return warp_ball[slot];
}

void* dyn_smem() { return dyn.data(); }

void poison(void* p, std::size_t bytes) { std::memset(p, 0xFF, bytes); }

// Layout: [guard kGuard][bytes][guard kGuard]; the allocation map holds the user pointer.
bool device_malloc(void** p, std::size_t bytes) {
    *p = nullptr;
    if (bytes > (std::size_t(1) << 36)) return false;
    auto* m = static_cast<unsigned char*>(std::malloc(bytes + 2 * kGuard));
    if (!m) return false;
    std::memset(m, kGuardByte, kGuard);
    std::memset(m + kGuard, 0xFF, bytes);  // garbage: NaN as double, -1 as an integer
    std::memset(m + kGuard + bytes, kGuardByte, kGuard);
    allocations[reinterpret_cast<std::uintptr_t>(m + kGuard)] = bytes;
    ++n_alloc;
    *p = m + kGuard;
    return true;
}

bool device_free(void* p) {
    auto it = allocations.find(reinterpret_cast<std::uintptr_t>(p));
    if (it == allocations.end()) {
        mem_fault("cudaFree(%p): not a live allocation", p);
        return false;
    }
    auto* m = static_cast<unsigned char*>(p) - kGuard;
    const std::size_t bytes = it->second;
    std::size_t before = 0, after = 0;
    for (std::size_t g = 0; g < kGuard; ++g) {
        before += m[g] != kGuardByte;
        after += m[kGuard + bytes + g] != kGuardByte;
    }
    if (before || after)
        mem_fault("cudaFree(%p): a kernel or copy wrote outside the %zu-byte allocation (%zu guard bytes "
                  "before it and %zu after it overwritten)", p, bytes, before, after);
    allocations.erase(it);
    std::free(m);
    --n_alloc;
    return true;
}

bool is_device_range(const void* p, std::size_t bytes) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin()) return false;
    --it;
    return a >= it->first && a + bytes <= it->first + it->second;
}

namespace {
bool check_side(const void* p, std::size_t extent, bool device, const char* call, const char* side) {
    if (extent == 0) return true;
    if (device ? is_device_range(p, extent) : !in_any_allocation(p)) return true;
    mem_fault(device ? "%s: %s %p + %zu bytes is not inside one device allocation"
                     : "%s: %s %p is device memory but the copy kind says host",
              call, side, p, extent);
    return false;
}
bool dst_is_device(cudaMemcpyKind k) { return k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice; }
bool src_is_device(cudaMemcpyKind k) { return k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice; }
}  // namespace

}  // namespace emu

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
    if (bytes == 0) return cudaSuccess;
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice) return cudaErrorInvalidValue;
    if (!emu::check_side(dst, bytes, emu::dst_is_device(kind), "cudaMemcpy", "destination") ||
        !emu::check_side(src, bytes, emu::src_is_device(kind), "cudaMemcpy", "source"))
        return cudaErrorInvalidValue;
    std::memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpy2D(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                         std::size_t width, std::size_t height, cudaMemcpyKind kind) {
    if (width > dpitch || width > spitch) return cudaErrorInvalidValue;
    if (width == 0 || height == 0) return cudaSuccess;
    const std::size_t dext = (height - 1) * dpitch + width, sext = (height - 1) * spitch + width;
    if (!emu::check_side(dst, dext, emu::dst_is_device(kind), "cudaMemcpy2D", "destination") ||
        !emu::check_side(src, sext, emu::src_is_device(kind), "cudaMemcpy2D", "source"))
        return cudaErrorInvalidValue;
    for (std::size_t r = 0; r < height; ++r)
        std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
    return cudaSuccess;
}

cudaError_t cudaMemset(void* dst, int value, std::size_t bytes) {
    if (bytes == 0) return cudaSuccess;
    if (!emu::check_side(dst, bytes, true, "cudaMemset", "destination")) return cudaErrorInvalidValue;
    std::memset(dst, value, bytes);
    return cudaSuccess;
}
