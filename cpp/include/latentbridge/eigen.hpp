// Row-major Eigen aliases: the layout of a C-contiguous numpy array (rows are samples).
#pragma once

#include <Eigen/Core>

#include "latentbridge/types.hpp"

namespace latentbridge {

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

}  // namespace latentbridge
