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
    return out;
}

std::size_t normalize_axis(long axis, std::size_t ndim, std::string_view op) {
    const long n = static_cast<long>(ndim);
    if (axis < -n || axis >= n)
        throw ShapeError(fmt::format("{}: axis {} is out of range for an array of {} dimensions", op,
                                     axis, ndim));
    return static_cast<std::size_t>(axis < 0 ? axis + n : axis);
}

std::size_t shape_size(const Shape& shape) {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

}  // namespace xg
