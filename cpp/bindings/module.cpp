// The _core extension module: calls the binding groups of bindings.hpp, adds build information and
// installs the interrupt poll of parallel.hpp (Ctrl-C during a long kernel raises
// KeyboardInterrupt).
#include <pybind11/stl.h>

#include <Eigen/Core>
#include <atomic>
#include <thread>

#include "bindings.hpp"
#include "latentbridge/detail/gemm.hpp"
#include "latentbridge/detail/parallel.hpp"

#ifndef LATENTBRIDGE_VERSION
#define LATENTBRIDGE_VERSION "dev"
#endif

namespace py = pybind11;

namespace {

// Identifier of Python's main thread, the only thread on which Python runs signal handlers.
std::atomic<unsigned long> main_thread_ident{0};

// parallel.hpp's interrupt poll: on the main thread, take the GIL briefly and run the pending
// signal handlers; a handler that raised (KeyboardInterrupt by default) aborts the loop with that
// exception, which pybind11 restores when it reaches Python. Elsewhere it does nothing (Python
// delivers signals to the main thread only), so worker threads never touch the GIL.
void python_interrupt_poll() {
    if (PyThread_get_thread_ident() != main_thread_ident.load(std::memory_order_relaxed)) return;
    if (!Py_IsInitialized()) return;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "latentbridge C++ core (private: use the latentbridge package)";
    namespace lbb = latentbridge::bind;
    lbb::bind_diffusion(m);
    lbb::bind_distance(m);
    lbb::bind_rips(m);
    lbb::bind_stats(m);

    main_thread_ident =
        py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
    latentbridge::interrupt_poll().store(&python_interrupt_poll, std::memory_order_release);

    m.def("build_info", [] {
        py::dict info;
        info["version"] = LATENTBRIDGE_VERSION;
#if defined(__clang__)
        info["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
        info["compiler"] = std::string("gcc ") + __VERSION__;
#else
        info["compiler"] = "unknown";
#endif
        info["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." +
                        std::to_string(EIGEN_MAJOR_VERSION) + "." +
                        std::to_string(EIGEN_MINOR_VERSION);
        info["simd"] = latentbridge::simd_isa();
        info["simd_available"] = latentbridge::available_simd_isas();
        info["hardware_threads"] = latentbridge::hardware_threads();
        return info;
    });
    m.def("set_simd_isa", &latentbridge::set_simd_isa, py::arg("name"),
          "Select the instruction set of the CPU kernels (for tests and benchmarks).");
    m.def("simd_isa", &latentbridge::simd_isa);
}
