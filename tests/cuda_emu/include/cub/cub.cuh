// Stand-in for CUB (CPU emulation test, see cuda_runtime.h): the two device-wide algorithms the
// kernels use, with CUB's contracts. DeviceRadixSort::SortPairs is a stable sort on the bits
// [begin_bit, end_bit) of the keys (the emulation aborts if a key has bits outside that range, as
// CUB would silently ignore them); DeviceReduce::ReduceByKey merges runs of equal consecutive keys.
// The two-phase temp-storage protocol is honoured (null temp: report the size; the size is checked).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include <cuda_runtime.h>

namespace cub {

template <class T>
struct DoubleBuffer {
    T* d_buffers[2];
    int selector = 0;
    DoubleBuffer() : d_buffers{nullptr, nullptr} {}
    DoubleBuffer(T* current, T* alternate) : d_buffers{current, alternate} {}
    T* Current() { return d_buffers[selector]; }
    T* Alternate() { return d_buffers[selector ^ 1]; }
};

namespace emu_detail {
constexpr std::size_t kSortTemp = 64, kReduceTemp = 32;
}

struct DeviceRadixSort {
    template <class K, class V, class N>
    static cudaError_t SortPairs(void* temp, std::size_t& bytes, DoubleBuffer<K>& keys,
                                 DoubleBuffer<V>& vals, N num_items, int begin_bit = 0,
                                 int end_bit = int(sizeof(K) * 8), cudaStream_t = nullptr) {
        if (!temp) {
            bytes = emu_detail::kSortTemp;
            return cudaSuccess;
        }
        if (bytes < emu_detail::kSortTemp) ::emu::fatal("cub::DeviceRadixSort::SortPairs: temp storage too small");
        if (begin_bit < 0 || end_bit <= begin_bit || end_bit > int(sizeof(K) * 8))
            ::emu::fatal("cub::DeviceRadixSort::SortPairs: bad bit range [%d, %d)", begin_bit, end_bit);
        const long long n = static_cast<long long>(num_items);
        K* kc = keys.Current();
        V* vc = vals.Current();
        K* ka = keys.Alternate();
        V* va = vals.Alternate();
        if (n > 0 && (!::emu::is_device_range(kc, sizeof(K) * n) || !::emu::is_device_range(ka, sizeof(K) * n) ||
                      !::emu::is_device_range(vc, sizeof(V) * n) || !::emu::is_device_range(va, sizeof(V) * n)))
            ::emu::fatal("cub::DeviceRadixSort::SortPairs: buffers are not device allocations of %lld items", n);
        const int width = end_bit - begin_bit;
        const K field = width >= int(sizeof(K) * 8) ? ~K(0) : ((K(1) << width) - 1);
        for (long long i = 0; i < n; ++i)
            if ((kc[i] >> begin_bit) & ~field)
                ::emu::fatal("cub::DeviceRadixSort::SortPairs: key %lld has bits above end_bit %d", i, end_bit);
        std::vector<long long> order(static_cast<std::size_t>(n));
        std::iota(order.begin(), order.end(), 0LL);
        std::stable_sort(order.begin(), order.end(), [&](long long a, long long b) {
            return ((kc[a] >> begin_bit) & field) < ((kc[b] >> begin_bit) & field);
        });
        for (long long i = 0; i < n; ++i) {
            ka[i] = kc[order[i]];
            va[i] = vc[order[i]];
        }
        keys.selector ^= 1;
        vals.selector ^= 1;
        return cudaSuccess;
    }
};

struct DeviceReduce {
    template <class KI, class KO, class VI, class VO, class NR, class Op, class N>
    static cudaError_t ReduceByKey(void* temp, std::size_t& bytes, KI keys_in, KO unique_out,
                                   VI vals_in, VO aggregates_out, NR num_runs_out, Op op, N num_items,
                                   cudaStream_t = nullptr) {
        if (!temp) {
            bytes = emu_detail::kReduceTemp;
            return cudaSuccess;
        }
        if (bytes < emu_detail::kReduceTemp) ::emu::fatal("cub::DeviceReduce::ReduceByKey: temp storage too small");
        const long long n = static_cast<long long>(num_items);
        long long r = -1;
        for (long long i = 0; i < n; ++i) {
            if (i == 0 || !(keys_in[i] == keys_in[i - 1])) {
                ++r;
                unique_out[r] = keys_in[i];
                aggregates_out[r] = vals_in[i];
            } else {
                aggregates_out[r] = op(aggregates_out[r], vals_in[i]);
            }
        }
        *num_runs_out = r + 1;
        return cudaSuccess;
    }
};

}  // namespace cub
