// Stand-in for CUDA's math_constants.h (CPU emulation test, see cuda_runtime.h): the constants the
// kernels use.
#pragma once
#include <limits>
#define CUDART_INF (std::numeric_limits<double>::infinity())
#define CUDART_INF_F (std::numeric_limits<float>::infinity())
#define CUDART_NAN (std::numeric_limits<double>::quiet_NaN())
