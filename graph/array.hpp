#pragma once
// The array type every Variable holds, and shape helpers shared by all ops.
#include <cstddef>
#include <string>
#include <string_view>

#ifndef XTENSOR_USE_XSIMD
#error "xgrad is built with XTENSOR_USE_XSIMD (it changes xtensor's allocator); compile with $(pkg-config --cflags xgrad)"
#endif
#include <xtensor/xarray.hpp>

#include "graph/error.hpp"

namespace xg {

template <class T>
using Array = xt::xarray<T>;

using Shape = xt::dynamic_shape<std::size_t>;

// "(128, 784)"; "()" for a scalar.
std::string shape_str(const Shape& shape);

template <class S>
std::string shape_str(const S& shape) {
    return shape_str(Shape(shape.begin(), shape.end()));
}

// Numpy broadcasting of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);

// Maps a possibly negative axis into [0, ndim); throws ShapeError naming `op`.
std::size_t normalize_axis(long axis, std::size_t ndim, std::string_view op);

std::size_t shape_size(const Shape& shape);

}  // namespace xg
