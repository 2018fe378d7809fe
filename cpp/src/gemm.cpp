// Run-time choice among the dot-tile kernels compiled for several instruction sets.
#include "latentbridge/detail/gemm.hpp"

#include <atomic>
#include <cstdlib>

#include "latentbridge/detail/check.hpp"

namespace latentbridge {
#define LB_DECLARE_ISA(name)                     \
    namespace name {                             \
    const DotTileKernel<float>& dot_tile_f32();  \
    const DotTileKernel<double>& dot_tile_f64(); \
    }
LB_DECLARE_ISA(generic)
#if defined(LATENTBRIDGE_X86_DISPATCH)
LB_DECLARE_ISA(avx2)
LB_DECLARE_ISA(avx512)
#endif
#undef LB_DECLARE_ISA

namespace {

struct IsaEntry {
    const char* name;
    bool (*supported)();
    const DotTileKernel<float>& (*f32)();
    const DotTileKernel<double>& (*f64)();
};

const IsaEntry kIsas[] = {
#if defined(LATENTBRIDGE_X86_DISPATCH)
    {"avx512",
     [] {
         __builtin_cpu_init();
         return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
     },
     &avx512::dot_tile_f32, &avx512::dot_tile_f64},
    {"avx2",
     [] {
         __builtin_cpu_init();
         return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
     },
     &avx2::dot_tile_f32, &avx2::dot_tile_f64},
#endif
    {"generic", [] { return true; }, &generic::dot_tile_f32, &generic::dot_tile_f64},
};

const IsaEntry* best_isa() {
    // LATENTBRIDGE_SIMD caps the choice (e.g. "avx2" on an AVX-512 machine), for measurements.
    const char* cap = std::getenv("LATENTBRIDGE_SIMD");
    bool allowed = cap == nullptr || *cap == '\0';
    for (const auto& e : kIsas) {
        if (!allowed && std::string(cap) == e.name) allowed = true;
        if (allowed && e.supported()) return &e;
    }
    return &kIsas[sizeof(kIsas) / sizeof(kIsas[0]) - 1];
}

std::atomic<const IsaEntry*>& selected() {
    static std::atomic<const IsaEntry*> s{best_isa()};
    return s;
}

}  // namespace

template <>
const DotTileKernel<float>& dot_tile_kernel<float>() {
    return selected().load()->f32();
}
template <>
const DotTileKernel<double>& dot_tile_kernel<double>() {
    return selected().load()->f64();
}

std::vector<std::string> available_simd_isas() {
    std::vector<std::string> out;
    for (const auto& e : kIsas)
        if (e.supported()) out.emplace_back(e.name);
    return out;
}

std::string simd_isa() { return selected().load()->name; }

void set_simd_isa(const std::string& name) {
    for (const auto& e : kIsas) {
        if (name == e.name) {
            LATENTBRIDGE_CHECK(e.supported(), "set_simd_isa",
                               name + " is not supported by this CPU");
            selected().store(&e);
            return;
        }
    }
    fail("set_simd_isa", "unknown instruction set '" + name + "'");
}

}  // namespace latentbridge
