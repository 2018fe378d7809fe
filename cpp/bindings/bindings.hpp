// The binding groups of the extension modules, one function per bindings/*.cpp file. module.cpp
// (_core) and cuda/bindings/module_cuda.cpp (_cuda) call them explicitly, in this order, so the
// layout of each module is written down in one place rather than left to static initialisers.
#pragma once

#include <pybind11/pybind11.h>

namespace latentbridge {
namespace bind {

// _core (cpp/bindings)
void bind_distance(pybind11::module_& m);   ///< bind_distance.cpp: pairwise_distances
void bind_stats(pybind11::module_& m);      ///< bind_stats.cpp: cross_accumulate
void bind_diffusion(pybind11::module_& m);  ///< bind_diffusion.cpp: k-NN, graph, eigensolver
void bind_rips(pybind11::module_& m);       ///< bind_rips.cpp: persistence and R-Cross

// _cuda (cuda/bindings)
void bind_distance_cuda(pybind11::module_& m);   ///< module_cuda.cpp: pairwise_distances(_device)
void bind_stats_cuda(pybind11::module_& m);      ///< bind_stats_cuda.cpp: cross_accumulate
void bind_diffusion_cuda(pybind11::module_& m);  ///< bind_diffusion_cuda.cpp: k-NN, graph, eigsh

}  // namespace bind
}  // namespace latentbridge
