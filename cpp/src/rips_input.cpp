// vr_barcode's checks of a distance matrix in one threaded pass (plus its enclosing radius and,
// for float64 input, the float32 copy the engine reads): what the Python layer otherwise did in
// several numpy passes and a loop over tiles. Only a yes/no comes back; on "no" the Python checks
// run again to say what is wrong (their messages stay in one place).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "latentbridge/detail/parallel.hpp"
#include "latentbridge/rips.hpp"

namespace latentbridge {
namespace {

constexpr index_t kTile = 32;  // the symmetry test compares mirrored kTile x kTile tiles
constexpr index_t kRows = 16;  // rows per task of the row pass

/// The bits of a float or double as an unsigned integer of its size.
template <typename T>
using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
template <typename T>
inline Bits<T> bits_of(T x) {
    Bits<T> b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

/// The row pass over row[0..n): whether it holds NaN, a negative entry (-0.0 is not one) or, for
/// double, a finite entry beyond float32's largest (`bad`), and its largest entry. On the bits:
/// an entry is >= 0 or +inf, not NaN, iff its bits are at most those of +inf or it is -0.0, and
/// the integer order of the magnitudes' bits is that of the values (so the loop vectorises).
template <typename T>
struct RowScan {
    bool bad;
    T largest;
};
template <typename T>
RowScan<T> scan_row(const T* row, index_t n) {
    using B = Bits<T>;
    constexpr B sign = B{1} << (8 * sizeof(T) - 1);
    const B inf = bits_of(std::numeric_limits<T>::infinity());
    // doubles beyond float32 (float32 holds nothing beyond itself): magnitudes in (f32 max, inf)
    const B f32_max =
        sizeof(T) == 4 ? inf : bits_of(static_cast<T>(std::numeric_limits<float>::max()));
    B bad = 0, largest = 0;
    for (index_t j = 0; j < n; ++j) {
        const B b = bits_of(row[j]);
        const B magnitude = b & ~sign;
        bad |= static_cast<B>((b > inf) & (b != sign)) |
               static_cast<B>((magnitude > f32_max) & (magnitude < inf));
        largest = magnitude > largest ? magnitude : largest;
    }
    T value;
    std::memcpy(&value, &largest, sizeof value);
    return {bad != 0, value};
}

/// numpy's isclose(a, b, rtol, atol) or equality (both +inf), in T's precision as numpy computes
/// it for T arrays and Python float tolerances: |a - b| <= atol + rtol min(a, b) for entries >= 0
/// (allclose(D, D.T) tests |a - b| <= atol + rtol |b| at (i, j) and at (j, i)).
template <typename T>
inline bool close(T a, T b, T rtol, T atol) {
    if (a == b) return true;
    const T diff = std::abs(a - b);
    const T scaled = rtol * std::min(a, b);
    return diff <= atol + scaled;
}

template <typename T>
DistanceCheck check(const T* D, index_t n, double rtol_d, double atol_d, int n_threads,
                    float* out32) {
    DistanceCheck result{true, std::numeric_limits<float>::infinity()};
    if (n <= 0) return result;
    // the row pass: NaN, negative entries, the diagonal, finite entries beyond float32 (float64
    // only) and each row's largest entry (rounded to float32: rounding is monotone)
    std::vector<float> row_max(static_cast<std::size_t>(n));
    std::atomic<bool> bad{false};
    const index_t row_tasks = (n + kRows - 1) / kRows;
    parallel_for(row_tasks, n_threads, [&](index_t task, int) {
        bool flag = false;
        for (index_t i = task * kRows; i < std::min(n, (task + 1) * kRows); ++i) {
            const T* row = D + i * n;
            const RowScan<T> r = scan_row(row, n);
            if (out32 != nullptr)
                for (index_t c = 0; c < n; ++c) out32[i * n + c] = static_cast<float>(row[c]);
            flag |= r.bad || row[i] != 0;
            row_max[i] = static_cast<float>(r.largest);  // (<= float32's largest, or +inf)
        }
        if (flag) bad.store(true, std::memory_order_relaxed);
    });
    if (bad.load()) return {false, 0.0f};
    // the symmetry test over pairs of mirrored tiles (r <= c), each visited once: the lower tile
    // is copied transposed into a small buffer, so that both sides are read along rows
    const T rtol = static_cast<T>(rtol_d), atol = static_cast<T>(atol_d);
    const index_t tiles = (n + kTile - 1) / kTile;
    parallel_for(tiles, n_threads, [&](index_t r, int) {
        T mirror[kTile * kTile];
        const index_t r0 = r * kTile, r1 = std::min(n, r0 + kTile);
        for (index_t c = r; c < tiles && !bad.load(std::memory_order_relaxed); ++c) {
            const index_t c0 = c * kTile, c1 = std::min(n, c0 + kTile);
            // mirror[(i - r0) kTile + (j - c0)] = D[j, i]
            for (index_t j = c0; j < c1; ++j)
                for (index_t i = r0; i < r1; ++i)
                    mirror[(i - r0) * kTile + (j - c0)] = D[j * n + i];
            bool equal = true;
            for (index_t i = r0; i < r1; ++i) {
                const T* upper = D + i * n;
                const T* lower = mirror + (i - r0) * kTile - c0;
                int differ = 0;
                for (index_t j = c0; j < c1; ++j) differ |= upper[j] != lower[j];
                if (differ == 0) continue;
                for (index_t j = c0; j < c1; ++j) equal &= close(upper[j], lower[j], rtol, atol);
            }
            if (!equal) bad.store(true, std::memory_order_relaxed);
        }
    });
    if (bad.load()) return {false, 0.0f};
    result.enclosing = *std::min_element(row_max.begin(), row_max.end());
    return result;
}

}  // namespace

DistanceCheck check_distance_matrix(const float* D, index_t n, double rtol, double atol,
                                    int n_threads) {
    return check(D, n, rtol, atol, n_threads, nullptr);
}

DistanceCheck check_distance_matrix(const double* D, index_t n, double rtol, double atol,
                                    int n_threads, float* out32) {
    return check(D, n, rtol, atol, n_threads, out32);
}

}  // namespace latentbridge
