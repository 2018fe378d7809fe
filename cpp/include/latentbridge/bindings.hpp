// Registration of binding groups into the _core module. Each bindings/*.cpp file defines one
// LATENTBRIDGE_BINDINGS(name) { ... } block; module.cpp runs them all, so adding a group of
// functions never edits a shared file.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/pybind11.h>

namespace latentbridge {

using BindFn = void (*)(pybind11::module_&);

inline std::vector<std::pair<std::string, BindFn>>& binding_registry() {
    static std::vector<std::pair<std::string, BindFn>> registry;
    return registry;
}

struct BindingRegistrar {
    BindingRegistrar(const char* name, BindFn fn) { binding_registry().emplace_back(name, fn); }
};

}  // namespace latentbridge

#define LATENTBRIDGE_BINDINGS(name)                                                       \
    static void latentbridge_bind_##name(pybind11::module_& m);                           \
    static const ::latentbridge::BindingRegistrar latentbridge_registrar_##name{#name,    \
                                                                  &latentbridge_bind_##name}; \
    static void latentbridge_bind_##name(pybind11::module_& m)
