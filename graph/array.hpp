#pragma once
// The array type every Variable holds, and shape helpers shared by all ops.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#ifndef XTENSOR_USE_XSIMD
#error "xgrad is built with XTENSOR_USE_XSIMD (it changes xtensor's allocator); compile with $(pkg-config --cflags xgrad)"
#endif
#include <xsimd/memory/xsimd_aligned_allocator.hpp>
#include <xtensor/xarray.hpp>

#include "graph/error.hpp"

namespace xg {

// Row-major, its elements 64-byte aligned (xsimd's allocator): a cache line, and the width of an
// AVX-512 register. xtensor's default allocator aligns to the build's baseline SIMD width (16
// bytes for x86-64), so a large array started 16 bytes into a line, where every 64-byte load of
// the AVX-512 loops (layer_norm, batch_norm, Adam, the activations) spans two lines: aligned,
// layer_norm's forward and backward on (4096, 512) took 0.5 of the time, Adam over the main job's
// MLP 0.6 (docs/benchmarks.md). The type no longer depends on the build's flags either.
inline constexpr std::size_t array_alignment = 64;
template <class T>
using Array = xt::xarray<T, xt::layout_type::row_major, xsimd::aligned_allocator<T, array_alignment>>;
// Scratch buffers of the same alignment (the direct convolution's, the benchmarks' GEMM operands).
template <class T>
using AlignedVector = std::vector<T, xsimd::aligned_allocator<T, array_alignment>>;

using Shape = xt::dynamic_shape<std::size_t>;

// A new array of `shape` with every element `value`: xt::zeros and xt::ones without their
// expression templates, whose instantiations cost compile time in every file that uses them.
template <class T>
Array<T> full(const Shape& shape, T value) {
    Array<T> a = Array<T>::from_shape(shape);
    std::fill_n(a.data(), a.size(), value);
    return a;
}

// "(128, 784)"; "()" for a scalar.
std::string shape_str(const Shape& shape);

template <class S>
std::string shape_str(const S& shape) {
    return shape_str(Shape(shape.begin(), shape.end()));
}

// Numpy broadcasting of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);

// Maps a possibly negative axis into [0, ndim); throws IndexError naming `op`.
std::size_t normalize_axis(long axis, std::size_t ndim, std::string_view op);

// The largest element count an array may have: its bytes (8 per double) and every stride must
// fit in a ptrdiff_t.
inline constexpr std::size_t max_array_elements = std::size_t{1} << 59;

// The number of elements of `shape`. Throws ResourceError naming `op` and the shape when it, or
// the product of its non-zero dimensions (which strides are computed from), exceeds
// max_array_elements: a shape built from user input can never wrap around.
std::size_t shape_size(const Shape& shape, std::string_view op);

// A row-major array seen around one axis as (outer, dim, inner): `outer` blocks, each of `dim`
// runs of `inner` contiguous elements. Reductions, softmax, slicing and concatenation walk it.
struct AxisSplit {
    std::size_t outer = 1, dim = 1, inner = 1;
};
AxisSplit split_at_axis(const Shape& shape, std::size_t axis);

}  // namespace xg
