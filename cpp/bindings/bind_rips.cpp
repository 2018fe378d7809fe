// Bindings of the Vietoris-Rips engine and the R-Cross-Barcode reduction: float32 C-contiguous
// square matrices in (the Python layer converts once), (k, 2) float64 bar arrays out, the GIL
// released around all C++ work; the batch entry point runs independent problems on threads.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "latentbridge/detail/check.hpp"
#include "latentbridge/detail/parallel.hpp"
#include "latentbridge/r_cross_inputs.hpp"
#include "latentbridge/rips.hpp"
#include "latentbridge/symmetric_quantile.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

using F32 = py::array_t<float, py::array::c_style>;

py::array_t<double> to_array(const std::vector<latentbridge::Bar>& bars) {
    py::array_t<double> out({static_cast<py::ssize_t>(bars.size()), static_cast<py::ssize_t>(2)});
    auto v = out.mutable_unchecked<2>();
    for (std::size_t t = 0; t < bars.size(); ++t) {
        v(t, 0) = static_cast<double>(bars[t][0]);
        v(t, 1) = static_cast<double>(bars[t][1]);
    }
    return out;
}

/// (k, 4) int64 rows {b1, b2, d1, d2}; (k, 3) rows {vertex, d1, d2} for degree 0 (`vertex_birth`).
py::array_t<std::int64_t> to_array(const std::vector<latentbridge::PairEdges>& pairs,
                                   bool vertex_birth) {
    const py::ssize_t cols = vertex_birth ? 3 : 4;
    py::array_t<std::int64_t> out({static_cast<py::ssize_t>(pairs.size()), cols});
    auto v = out.mutable_unchecked<2>();
    for (std::size_t t = 0; t < pairs.size(); ++t) {
        py::ssize_t c = 0;
        for (int k = 0; k < 4; ++k)
            if (!(vertex_birth && k == 1)) v(t, c++) = pairs[t][k];
    }
    return out;
}

latentbridge::index_t square_size(const F32& a, const char* op, const char* name) {
    LATENTBRIDGE_CHECK(a.ndim() == 2 && a.shape(0) == a.shape(1), op,
                       std::string(name) + " must be a square 2-D matrix");
    return a.shape(0);
}

}  // namespace

void latentbridge::bind::bind_rips(py::module_& m) {
    m.def(
        "rips_barcodes",
        [](F32 D, int maxdim, py::object threshold, bool return_pairs, const std::string& engine,
           int n_threads) -> py::object {
            const auto n = square_size(D, "vr_barcode", "D");
            LATENTBRIDGE_CHECK(engine == "auto" || engine == "cohomology" || engine == "homology",
                               "vr_barcode", "engine must be 'auto', 'cohomology' or 'homology'");
            const float* d = D.data();
            const bool automatic = threshold.is_none();
            // needs the GIL; a double beyond float's range becomes +inf (a narrowing cast of an
            // out-of-range value is undefined behaviour), NaN is rejected by the engine
            const double asked = automatic ? 0.0 : threshold.cast<double>();
            const float given = asked > std::numeric_limits<float>::max()
                                    ? std::numeric_limits<float>::infinity()
                                    : static_cast<float>(asked);
            std::vector<std::vector<latentbridge::Bar>> bars;
            std::vector<std::vector<latentbridge::PairEdges>> pairs;
            {
                py::gil_scoped_release nogil;
                const float thr = automatic ? latentbridge::enclosing_radius(d, n) : given;
                using latentbridge::RipsEngine;
                const RipsEngine which = engine == "cohomology" ? RipsEngine::cohomology
                                         : engine == "homology" ? RipsEngine::homology
                                                                : RipsEngine::automatic;
                bars = latentbridge::rips_barcodes(
                    d, n, maxdim, thr, return_pairs ? &pairs : nullptr, which, n_threads);
            }
            py::list out, edges;
            for (const auto& b : bars) out.append(to_array(b));
            if (!return_pairs) return std::move(out);
            for (std::size_t k = 0; k < pairs.size(); ++k) edges.append(to_array(pairs[k], k == 0));
            return py::make_tuple(out, edges);
        },
        "D"_a.noconvert(), "maxdim"_a = 1, "threshold"_a = py::none(), "return_pairs"_a = false,
        "engine"_a = "auto", "n_threads"_a = 1,
        "Vietoris-Rips barcodes (list of (k, 2) float64 arrays, degrees 0..maxdim) of a float32 "
        "distance matrix; threshold None = its enclosing radius. With return_pairs, (bars, pairs): "
        "per degree the int64 edges of each bar, (k, 3) rows (vertex, d1, d2) in degree 0, (k, 4) "
        "rows (b1, b2, d1, d2) above; -1 for an essential class's death edge. engine 'auto' "
        "(homology for maxdim 1..3), 'cohomology' or 'homology'.");

    m.def("rips_workspace_bytes", &latentbridge::rips_workspace_bytes, "n"_a, "maxdim"_a,
          "Bytes rips_barcodes holds for an n x n matrix in degrees up to min(maxdim, 1).");

    m.def(
        "rips_simplex_bytes",
        [](F32 D, int maxdim, py::object threshold) {
            const auto n = square_size(D, "rips_simplex_bytes", "D");
            const float thr = threshold.is_none() ? latentbridge::enclosing_radius(D.data(), n)
                                                  : threshold.cast<float>();
            py::gil_scoped_release nogil;
            return latentbridge::rips_simplex_bytes(D.data(), n, maxdim, thr);
        },
        "D"_a.noconvert(), "maxdim"_a, "threshold"_a = py::none(),
        "Upper bound on the bytes of the simplex lists of degrees 2..maxdim (threshold None = the "
        "enclosing radius of D).");

    m.def("rips_homology_applies", &latentbridge::rips_homology_applies, "n"_a, "maxdim"_a,
          "Whether rips_barcodes' automatic choice takes the homology engine (maxdim 1..3, n < "
          "65536).");

    m.def(
        "rips_homology_bytes",
        [](F32 D, int maxdim, py::object threshold, int n_threads) {
            const auto n = square_size(D, "rips_homology_bytes", "D");
            const float thr = threshold.is_none() ? latentbridge::enclosing_radius(D.data(), n)
                                                  : threshold.cast<float>();
            py::gil_scoped_release nogil;
            return latentbridge::rips_homology_bytes(D.data(), n, maxdim, thr, n_threads);
        },
        "D"_a.noconvert(), "maxdim"_a, "threshold"_a = py::none(), "n_threads"_a = 1,
        "Bytes a homology-engine run of rips_barcodes holds at its peak for D (the float32 matrix, "
        "the engine's copy and bit sets, 40 bytes per simplex of degrees 1..maxdim, 56 above "
        "degree 1 with n_threads >= 2; threshold None = the enclosing radius of D).");

    m.def("r_cross_workspace_bytes", &latentbridge::r_cross_workspace_bytes, "n"_a,
          "Bytes of the larger of r_cross_barcode_h1's two engines for n points (without the "
          "data-dependent homology classes).");

    m.def(
        "r_cross_inputs",
        [](py::array_t<double, py::array::c_style> r1, py::array_t<double, py::array::c_style> r2,
           double eps, F32 w, F32 mn, int n_threads) {
            const auto n = r1.shape(0);
            for (const auto* a : {&r1, &r2})
                LATENTBRIDGE_CHECK(a->ndim() == 2 && a->shape(0) == n && a->shape(1) == n,
                                   "r_cross_barcode", "r1 and r2 must be square and of one shape");
            for (const auto* a : {&w, &mn})
                LATENTBRIDGE_CHECK(a->ndim() == 2 && a->shape(0) == n && a->shape(1) == n,
                                   "r_cross_barcode", "w and m must have the shape of r1");
            float* wp = w.mutable_data();
            float* mp = mn.mutable_data();
            py::gil_scoped_release nogil;
            return latentbridge::r_cross_inputs(r1.data(), r2.data(), n, eps, wp, mp, n_threads);
        },
        "r1"_a.noconvert(), "r2"_a.noconvert(), "eps"_a, "w"_a.noconvert(), "m"_a.noconvert(),
        "n_threads"_a = 1,
        "Fills the float32 w = r1 and m = min(r2, w), entries below eps snapped to 0 (see "
        "r_cross_inputs.hpp); returns 1 (2) when r1 (r2) holds a finite value beyond float32.");

    m.def(
        "symmetric_quantile",
        [](py::array_t<double, py::array::c_style> D, double q) {
            const auto n = D.shape(0);
            LATENTBRIDGE_CHECK(D.ndim() == 2 && D.shape(1) == n, "symmetric_quantile",
                               "D must be a square 2-D matrix");
            py::gil_scoped_release nogil;
            return latentbridge::symmetric_quantile(D.data(), n, q);
        },
        "D"_a.noconvert(), "q"_a,
        "np.quantile(D, q) (linear, bit for bit) of a float64 symmetric matrix with a zero "
        "diagonal and no negative entry, from its strict upper triangle.");

    m.def(
        "check_distance_matrix",
        [](F32 D, double rtol, double atol, int n_threads) {
            const auto n = square_size(D, "vr_barcode", "D");
            py::gil_scoped_release nogil;
            const auto c = latentbridge::check_distance_matrix(D.data(), n, rtol, atol, n_threads);
            return std::make_pair(c.clean, c.enclosing);
        },
        "D"_a.noconvert(), "rtol"_a, "atol"_a, "n_threads"_a = 1,
        "(clean, enclosing radius): whether the float32 square matrix D has no NaN, no negative "
        "entry, a zero diagonal and is symmetric as allclose(D, D.T, rtol, atol) says (+inf equal "
        "to +inf), in one threaded pass; its enclosing radius when clean.");
    m.def(
        "check_distance_matrix",
        [](py::array_t<double, py::array::c_style> D, double rtol, double atol, int n_threads,
           py::object out32) {
            LATENTBRIDGE_CHECK(D.ndim() == 2 && D.shape(0) == D.shape(1), "vr_barcode",
                               "D must be a square 2-D matrix");
            const auto n = D.shape(0);
            float* out = nullptr;
            if (!out32.is_none()) {
                auto o = out32.cast<F32>();
                LATENTBRIDGE_CHECK(o.ndim() == 2 && o.shape(0) == n && o.shape(1) == n,
                                   "vr_barcode", "out32 must have D's shape");
                out = o.mutable_data();
            }
            py::gil_scoped_release nogil;
            const auto c =
                latentbridge::check_distance_matrix(D.data(), n, rtol, atol, n_threads, out);
            return std::make_pair(c.clean, c.enclosing);
        },
        "D"_a.noconvert(), "rtol"_a, "atol"_a, "n_threads"_a = 1, "out32"_a = py::none(),
        "The float64 check (also: no finite entry above float32's largest), writing D rounded to "
        "float32 into out32 (a C-contiguous float32 array of D's shape, or None; complete when "
        "clean).");

    m.def(
        "enclosing_radius",
        [](F32 D) {
            const auto n = square_size(D, "enclosing_radius", "D");
            return latentbridge::enclosing_radius(D.data(), n);
        },
        "D"_a.noconvert());

    m.def(
        "r_cross_barcode_h1",
        [](F32 w, F32 mn, int n_threads, const std::string& engine,
           bool return_pairs) -> py::object {
            const auto n = square_size(w, "r_cross_barcode", "w");
            LATENTBRIDGE_CHECK(mn.ndim() == 2 && mn.shape(0) == n && mn.shape(1) == n,
                               "r_cross_barcode", "w and m must have the same shape");
            using latentbridge::CrossEngine;
            LATENTBRIDGE_CHECK(engine == "auto" || engine == "cohomology" || engine == "homology",
                               "r_cross_barcode",
                               "engine must be 'auto', 'cohomology' or 'homology'");
            const CrossEngine which = engine == "cohomology" ? CrossEngine::cohomology
                                      : engine == "homology" ? CrossEngine::homology
                                                             : CrossEngine::automatic;
            std::vector<latentbridge::Bar> bars;
            std::vector<latentbridge::PairEdges> pairs;
            {
                py::gil_scoped_release nogil;
                bars = latentbridge::r_cross_barcode_h1(w.data(), mn.data(), n, n_threads, which,
                                                        return_pairs ? &pairs : nullptr);
            }
            if (!return_pairs) return to_array(bars);
            return py::make_tuple(to_array(bars), to_array(pairs, false));
        },
        "w"_a.noconvert(), "m"_a.noconvert(), "n_threads"_a = 1, "engine"_a = "auto",
        "return_pairs"_a = false,
        "R-Cross-Barcode_1 from w (first representation's distances) and m = min(w, w~); engine "
        "'auto' (cohomology under a budget, then homology), 'cohomology' or 'homology'. With "
        "return_pairs, (bars, pairs): the (k, 4) int64 birth and death edges of each bar in the "
        "doubled 2n x 2n numbering.");

    m.def(
        "r_cross_barcode_h1_batch",
        [](const std::vector<std::pair<F32, F32>>& problems, int n_threads) {
            std::vector<std::pair<const float*, latentbridge::index_t>> w_ptrs, m_ptrs;
            for (const auto& pr : problems) {
                const auto n = square_size(pr.first, "r_cross_barcode", "w");
                LATENTBRIDGE_CHECK(
                    pr.second.ndim() == 2 && pr.second.shape(0) == n && pr.second.shape(1) == n,
                    "r_cross_barcode", "w and m must have the same shape");
                w_ptrs.emplace_back(pr.first.data(), n);
                m_ptrs.emplace_back(pr.second.data(), n);
            }
            std::vector<std::vector<latentbridge::Bar>> bars(problems.size());
            {
                py::gil_scoped_release nogil;
                const auto count = static_cast<latentbridge::index_t>(problems.size());
                // Whole problems per thread; leftover threads help inside the last problems (no
                // problem at all: nothing to divide, parallel_for returns at once).
                const int inner = count == 0 || count >= n_threads
                                      ? 1
                                      : std::max(1, n_threads / static_cast<int>(count));
                latentbridge::parallel_for(count, n_threads, [&](latentbridge::index_t t, int) {
                    bars[t] = latentbridge::r_cross_barcode_h1(w_ptrs[t].first, m_ptrs[t].first,
                                                               w_ptrs[t].second, inner);
                });
            }
            py::list out;
            for (const auto& b : bars) out.append(to_array(b));
            return out;
        },
        "problems"_a, "n_threads"_a = 1,
        "R-Cross-Barcode_1 of several independent (w, m) problems, run on n_threads threads.");
}
