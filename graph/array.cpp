#include "graph/array.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "graph/shape_text.hpp"

namespace xg {

std::string shape_str(const Shape& shape) { return shape_text({shape.data(), shape.size()}); }

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out(n, 1);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const std::size_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (da != db && da != 1 && db != 1)
            throw ShapeError(fmt::format("{}: cannot broadcast shapes {} and {}", op, shape_str(a),
                                         shape_str(b)));
        out[i] = da == 1 ? db : da;
    }
    try {
        shape_size(out, op);  // (2^40, 1) and (1, 2^40) broadcast to more elements than exist
    } catch (const ResourceError&) {
        throw ResourceError(fmt::format("{}: broadcasting shapes {} and {} gives {}, more elements than an array can "
                                        "hold (at most {})",
                                        op, shape_str(a), shape_str(b), shape_str(out), max_array_elements));
    }
    return out;
}

std::size_t normalize_axis(long axis, std::size_t ndim, std::string_view op) {
    const long n = static_cast<long>(ndim);
    if (axis < -n || axis >= n)
        throw IndexError(fmt::format("{}: axis {} is out of range for an array of {} dimensions", op,
                                     axis, ndim));
    return static_cast<std::size_t>(axis < 0 ? axis + n : axis);
}

std::size_t shape_size(const Shape& shape, std::string_view op) {
    std::size_t product = 1;  // of the non-zero dimensions
    bool empty = false;
    for (const std::size_t d : shape) {
        if (d == 0) {
            empty = true;
        } else if (product > max_array_elements / d) {
            throw ResourceError(fmt::format("{}: shape {} has more elements than an array can hold (at most {})",
                                            op, shape_str(shape), max_array_elements));
        } else {
            product *= d;
        }
    }
    return empty ? 0 : product;
}

AxisSplit split_at_axis(const Shape& shape, std::size_t axis) {
    AxisSplit s;
    for (std::size_t i = 0; i < axis; ++i) s.outer *= shape[i];
    s.dim = shape[axis];
    for (std::size_t i = axis + 1; i < shape.size(); ++i) s.inner *= shape[i];
    return s;
}

}  // namespace xg
