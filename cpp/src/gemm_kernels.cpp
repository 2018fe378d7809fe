// Dot-tile kernels, compiled once per instruction set (LATENTBRIDGE_ISA = generic | avx2 | avx512,
// with matching compiler flags; see CMakeLists.txt). Written with GCC/Clang vector extensions so
// one source yields SSE2, AVX2+FMA and AVX-512 code. Only this translation unit's own symbols live
// in the ISA namespace; it uses no out-of-line library templates, so no ISA-specific code can leak
// into other translation units through the linker.
#include <cstddef>

#include "latentbridge/detail/gemm.hpp"

#ifndef LATENTBRIDGE_ISA
#error "compile gemm_kernels.cpp with -DLATENTBRIDGE_ISA=<name>"
#endif
#define LB_STR2(x) #x
#define LB_STR(x) LB_STR2(x)

namespace latentbridge {
namespace LATENTBRIDGE_ISA {
namespace {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
constexpr int kRowsF = 12, kRowsD = 12;  // 24 accumulators + 2 panel vectors + 1 broadcast of 32
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
constexpr int kRowsF = 6, kRowsD = 6;  // 12 accumulators of 16 registers
#else
constexpr int kVecBytes = 16;
constexpr int kRowsF = 4, kRowsD = 4;  // no FMA: leave room for the product temporaries
#endif

typedef float vf __attribute__((vector_size(kVecBytes)));
typedef double vd __attribute__((vector_size(kVecBytes)));

template <typename T>
struct Simd;
template <>
struct Simd<float> {
    using V = vf;
    static constexpr int MR = kRowsF;
};
template <>
struct Simd<double> {
    using V = vd;
    static constexpr int MR = kRowsD;
};

template <typename T>
struct Blocking {
    using V = typename Simd<T>::V;
    static constexpr int W = kVecBytes / static_cast<int>(sizeof(T));  // lanes per vector
    static constexpr int MR = Simd<T>::MR;
    static constexpr int NR = 2 * W;
    static constexpr index_t KC = 256;
    static constexpr index_t MC = MR * (sizeof(T) == 4 ? 12 : 8);
    static constexpr index_t NC = NR * (kVecBytes == 64 ? 16 : 32);
    static constexpr std::size_t work =
        static_cast<std::size_t>(MC * KC + KC * NC + 2 * MR * NR) + 64 / sizeof(T);
};

template <typename T>
inline T* align64(T* p) {
    const auto a = reinterpret_cast<std::size_t>(p);
    return reinterpret_cast<T*>((a + 63) & ~static_cast<std::size_t>(63));
}

// Pack rows [0, rows) x depth [k0, k0 + kc) of X, minus s, into panels of R rows: panel p holds
// element (p * R + i, k) at p * R * kc + k * R + i. Rows past `rows` are zero.
template <typename T, int R>
void pack(const T* X, index_t ldx, index_t rows, index_t k0, index_t kc, const T* s, T* dst) {
    for (index_t p0 = 0; p0 < rows; p0 += R) {
        const index_t r = rows - p0 < R ? rows - p0 : R;
        for (index_t i = 0; i < r; ++i) {
            const T* src = X + (p0 + i) * ldx + k0;
            T* out = dst + i;
            if (s) {
                const T* sk = s + k0;
                for (index_t k = 0; k < kc; ++k) out[k * R] = src[k] - sk[k];
            } else {
                for (index_t k = 0; k < kc; ++k) out[k * R] = src[k];
            }
        }
        for (index_t i = r; i < R; ++i)
            for (index_t k = 0; k < kc; ++k) dst[k * R + i] = T(0);
        dst += R * kc;
    }
}

// acc[MR x NR] = A_panel (kc x MR) ^T * B_panel (kc x NR); then C (+)= acc for the valid mr x nr
// part.
template <typename T>
inline void micro_kernel(index_t kc, const T* __restrict A, const T* __restrict B, T* C,
                         index_t ldc, int mr, int nr, bool accumulate, T* spill) {
    using Bk = Blocking<T>;
    using V = typename Bk::V;
    constexpr int MR = Bk::MR, W = Bk::W, NR = Bk::NR;
    V acc0[MR], acc1[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
        acc0[i] = V{};
        acc1[i] = V{};
    }
    for (index_t k = 0; k < kc; ++k) {
        V b0, b1;
        __builtin_memcpy(&b0, B, sizeof(V));
        __builtin_memcpy(&b1, B + W, sizeof(V));
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const T a = A[i];
            acc0[i] += b0 * a;
            acc1[i] += b1 * a;
        }
        A += MR;
        B += NR;
    }
    if (mr == MR && nr == NR) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            T* c = C + i * ldc;
            V c0 = acc0[i], c1 = acc1[i];
            if (accumulate) {
                V o0, o1;
                __builtin_memcpy(&o0, c, sizeof(V));
                __builtin_memcpy(&o1, c + W, sizeof(V));
                c0 += o0;
                c1 += o1;
            }
            __builtin_memcpy(c, &c0, sizeof(V));
            __builtin_memcpy(c + W, &c1, sizeof(V));
        }
        return;
    }
    for (int i = 0; i < MR; ++i) {
        __builtin_memcpy(spill + i * NR, &acc0[i], sizeof(V));
        __builtin_memcpy(spill + i * NR + W, &acc1[i], sizeof(V));
    }
    for (int i = 0; i < mr; ++i)
        for (int j = 0; j < nr; ++j)
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + spill[i * NR + j] : spill[i * NR + j];
}

template <typename T>
void dot_tile(const T* X, index_t ldx, index_t rows, const T* Y, index_t ldy, index_t cols,
              index_t d, const T* s, T* C, index_t ldc, T* work) {
    using Bk = Blocking<T>;
    constexpr int MR = Bk::MR, NR = Bk::NR;
    T* Ap = align64(work);
    T* Bp = Ap + Bk::MC * Bk::KC;
    T* spill = Bp + Bk::KC * Bk::NC;
    if (d == 0) {
        for (index_t i = 0; i < rows; ++i)
            for (index_t j = 0; j < cols; ++j) C[i * ldc + j] = T(0);
        return;
    }
    for (index_t k0 = 0; k0 < d; k0 += Bk::KC) {
        const index_t kc = d - k0 < Bk::KC ? d - k0 : Bk::KC;
        pack<T, MR>(X, ldx, rows, k0, kc, s, Ap);
        pack<T, NR>(Y, ldy, cols, k0, kc, s, Bp);
        const bool accumulate = k0 > 0;
        for (index_t j0 = 0; j0 < cols; j0 += NR) {
            const int nr = static_cast<int>(cols - j0 < NR ? cols - j0 : NR);
            const T* Bpanel = Bp + (j0 / NR) * NR * kc;
            for (index_t i0 = 0; i0 < rows; i0 += MR) {
                const int mr = static_cast<int>(rows - i0 < MR ? rows - i0 : MR);
                micro_kernel<T>(kc, Ap + (i0 / MR) * MR * kc, Bpanel, C + i0 * ldc + j0, ldc, mr,
                                nr, accumulate, spill);
            }
        }
    }
}

template <typename T>
bool sq_epilogue(const T* __restrict c, const double* __restrict ny, double nxi, index_t count,
                 double ratio, bool root, T* __restrict o) {
    int flagged = 0;
    if (root) {
        for (index_t j = 0; j < count; ++j) {
            const double s = nxi + ny[j];
            double d2 = s - 2.0 * static_cast<double>(c[j]);
            flagged |= static_cast<int>(d2 < ratio * s);
            d2 = d2 > 0.0 ? d2 : 0.0;
            o[j] = static_cast<T>(__builtin_sqrt(d2));
        }
    } else {
        for (index_t j = 0; j < count; ++j) {
            const double s = nxi + ny[j];
            double d2 = s - 2.0 * static_cast<double>(c[j]);
            flagged |= static_cast<int>(d2 < ratio * s);
            o[j] = static_cast<T>(d2 > 0.0 ? d2 : 0.0);
        }
    }
    return flagged != 0;
}

template <typename T>
void cos_epilogue(const T* __restrict c, const double* __restrict iny, double inxi, index_t count,
                  T* __restrict o) {
    for (index_t j = 0; j < count; ++j) {
        double v = 1.0 - static_cast<double>(c[j]) * inxi * iny[j];
        v = v < 0.0 ? 0.0 : v;
        v = v > 2.0 ? 2.0 : v;
        o[j] = static_cast<T>(v);
    }
}

}  // namespace

const DotTileKernel<float>& dot_tile_f32() {
    using Bk = Blocking<float>;
    static const DotTileKernel<float> k{LB_STR(LATENTBRIDGE_ISA),
                                        Bk::MC,
                                        Bk::NC,
                                        Bk::KC,
                                        Bk::work,
                                        &dot_tile<float>,
                                        &sq_epilogue<float>,
                                        &cos_epilogue<float>};
    return k;
}

const DotTileKernel<double>& dot_tile_f64() {
    using Bk = Blocking<double>;
    static const DotTileKernel<double> k{LB_STR(LATENTBRIDGE_ISA),
                                         Bk::MC,
                                         Bk::NC,
                                         Bk::KC,
                                         Bk::work,
                                         &dot_tile<double>,
                                         &sq_epilogue<double>,
                                         &cos_epilogue<double>};
    return k;
}

}  // namespace LATENTBRIDGE_ISA
}  // namespace latentbridge
