// Error checking for CUDA runtime calls and kernel launches: std::runtime_error with the call and
// cudaGetErrorString (mapped to Python's RuntimeError by pybind11).
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define LATENTBRIDGE_CUDA_CHECK(expr)                                                         \
    do {                                                                                      \
        const cudaError_t latentbridge_err_ = (expr);                                         \
        if (latentbridge_err_ != cudaSuccess)                                                 \
            throw std::runtime_error(std::string(#expr) + " failed: " +                       \
                                     cudaGetErrorString(latentbridge_err_));                  \
    } while (0)

namespace latentbridge {
namespace cuda {

/// Device buffer owned by RAII (freed even when a later call throws).
template <typename T>
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t count) : count_(count) {
        if (count) LATENTBRIDGE_CUDA_CHECK(cudaMalloc(&ptr_, count * sizeof(T)));
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) {
        o.ptr_ = nullptr;
        o.count_ = 0;
    }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            if (ptr_) cudaFree(ptr_);
            ptr_ = o.ptr_;
            count_ = o.count_;
            o.ptr_ = nullptr;
            o.count_ = 0;
        }
        return *this;
    }
    ~DeviceBuffer() {
        if (ptr_) cudaFree(ptr_);
    }
    T* get() const { return ptr_; }
    std::size_t size() const { return count_; }

  private:
    T* ptr_ = nullptr;
    std::size_t count_ = 0;
};

/// Makes `device` current for the lifetime of the guard, restoring the previous one.
class DeviceGuard {
  public:
    explicit DeviceGuard(int device) {
        LATENTBRIDGE_CUDA_CHECK(cudaGetDevice(&previous_));
        if (device != previous_) LATENTBRIDGE_CUDA_CHECK(cudaSetDevice(device));
    }
    ~DeviceGuard() { cudaSetDevice(previous_); }

  private:
    int previous_ = 0;
};

}  // namespace cuda
}  // namespace latentbridge
