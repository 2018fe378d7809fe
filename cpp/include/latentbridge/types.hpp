// Basic types shared by the latentbridge C++ core: the index type and the distance metric. Kept
// free of Eigen so the per-ISA kernel translation units include no library templates (see
// eigen.hpp).
#pragma once

#include <cstdint>

namespace latentbridge {

/// Signed index for sizes and offsets (numpy's intp on 64-bit platforms).
using index_t = std::int64_t;

/// Metric of pairwise_distances.
enum class Metric { sqeuclidean, euclidean, cosine };

}  // namespace latentbridge
