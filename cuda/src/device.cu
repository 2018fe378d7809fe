// Device discovery for the lazy probe of the Python layer: never throws.
#include <cuda_runtime.h>

#include <string>

#include "latentbridge_cuda/api.hpp"

namespace latentbridge {
namespace cuda {

std::pair<int, std::string> device_count() {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error state of the runtime
        return {0, std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err)};
    }
    if (n == 0) return {0, "the CUDA runtime reports no device"};
    return {n, "ok"};
}

std::string device_name(int device) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        cudaGetLastError();
        return "unknown device";
    }
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
           std::to_string(prop.minor) + ", " +
           std::to_string(prop.totalGlobalMem / (1024 * 1024)) + " MiB)";
}

std::string version_string() {
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    auto fmt = [](int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); };
    return "runtime " + fmt(rt) + ", driver " + (drv ? fmt(drv) : std::string("none"));
}

}  // namespace cuda
}  // namespace latentbridge
