// The one place for what every CUDA source needs around its kernels: host <-> device copies on a
// stream (RAII buffers from check.cuh), launch configuration (grid sizes, the memory budget of
// batched buffers) and the warp / block reductions used inside kernels.
//
// Streams: every host API takes a `void* stream` (a cudaStream_t; nullptr = the legacy default
// stream). Copies are cudaMemcpyAsync on that stream; a download waits for the stream, so the host
// data is ready on return. Uploads from pageable host memory are staged before cudaMemcpyAsync
// returns, so the host source may be freed right after.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>

#include "check.cuh"
#include "latentbridge/types.hpp"

namespace latentbridge {
namespace cuda {

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

// ---- copies ----------------------------------------------------------------------------------------

/// Copies count elements from the host to dev (device), ordered on stream.
template <typename T>
void copy_to_device(T* dev, const T* host, std::size_t count, cudaStream_t stream) {
    if (count)
        LATENTBRIDGE_CUDA_CHECK(
            cudaMemcpyAsync(dev, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
}

/// A new device buffer holding a copy of host[0, count).
template <typename T>
DeviceBuffer<T> upload(const T* host, std::size_t count, cudaStream_t stream) {
    DeviceBuffer<T> buf(count);
    copy_to_device(buf.get(), host, count, stream);
    return buf;
}

/// Copies count elements of dev (device) to host after the work queued on stream; returns when the
/// host copy is complete.
template <typename T>
void download(T* host, const T* dev, std::size_t count, cudaStream_t stream) {
    if (!count) return;
    LATENTBRIDGE_CUDA_CHECK(
        cudaMemcpyAsync(host, dev, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
    LATENTBRIDGE_CUDA_CHECK(cudaStreamSynchronize(stream));
}

/// Throws the error of the last kernel launch, if any.
inline void check_launch() { LATENTBRIDGE_CUDA_CHECK(cudaGetLastError()); }

// ---- launch configuration --------------------------------------------------------------------------

/// Blocks of `threads` covering `count` items, one item per thread: ceil(count / threads).
inline unsigned cover_grid(index_t count, int threads) {
    return static_cast<unsigned>((count + threads - 1) / threads);
}

/// Blocks of a grid-stride loop over `items` with `threads` per block: ceil(items / threads),
/// at least 1 and at most 2^20 (the loop covers the rest).
inline unsigned stride_grid(index_t items, int threads) {
    const index_t blocks = (items + threads - 1) / threads;
    return static_cast<unsigned>(std::max<index_t>(1, std::min<index_t>(blocks, index_t(1) << 20)));
}

/// Half of the free memory of the current device: the budget of buffers sized by a batch.
inline std::size_t device_memory_budget() {
    std::size_t free_bytes = 0, total_bytes = 0;
    LATENTBRIDGE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    return free_bytes / 2;
}

// ---- reductions inside kernels ---------------------------------------------------------------------

/// Sum of v over the 32 lanes of a full warp (butterfly: every lane gets the sum; lane 0 adds in
/// the order ((v0 + v16) + (v8 + v24)) + ..., the same bits as a shfl_down tree).
__device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/// Maximum of v over the 32 lanes of a full warp (every lane gets it).
__device__ __forceinline__ double warp_max(double v) {
    for (int off = 16; off > 0; off >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/// Sum of v over a block of kThreads threads (a power of two) through `shared` (kThreads doubles),
/// by a halving tree; returned to every thread. Called by every thread of the block.
template <int kThreads>
__device__ double block_sum(double v, double* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    const double total = shared[0];
    __syncthreads();
    return total;
}

}  // namespace cuda
}  // namespace latentbridge
