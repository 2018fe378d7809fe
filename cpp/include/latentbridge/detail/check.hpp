// Error helpers of the C++ core. Exception types are chosen for their pybind11 mapping:
// std::invalid_argument -> ValueError, std::overflow_error -> OverflowError,
// std::bad_alloc -> MemoryError, std::runtime_error -> RuntimeError.
#pragma once

#include <stdexcept>
#include <string>

namespace latentbridge {

[[noreturn]] inline void fail(const char* op, const std::string& what) {
    throw std::invalid_argument(std::string(op) + ": " + what);
}

}  // namespace latentbridge

/// Defence-in-depth check of a cheap invariant; the Python layer validates first.
#define LATENTBRIDGE_CHECK(cond, op, what)               \
    do {                                                 \
        if (!(cond)) ::latentbridge::fail((op), (what)); \
    } while (0)
