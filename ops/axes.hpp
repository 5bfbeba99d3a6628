#pragma once
// Internal to the ops' .cpp files (not installed): shapes and lists of axes, for the ops that take several.
#include <algorithm>
#include <cstddef>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "graph/array.hpp"

namespace xg {

// A shape as the signed sizes reshape() takes.
inline std::vector<long> as_long(const Shape& s) { return std::vector<long>(s.begin(), s.end()); }

// Each axis normalised (negative allowed; IndexError when out of range), sorted; an axis given
// twice throws ValueError naming `op` and the list. An empty list stays empty.
inline std::vector<std::size_t> normalize_axes(const std::vector<long>& axes, std::size_t ndim, std::string_view op) {
    std::vector<std::size_t> out;
    out.reserve(axes.size());
    for (long a : axes) out.push_back(normalize_axis(a, ndim, op));
    std::sort(out.begin(), out.end());
    for (std::size_t i = 1; i < out.size(); ++i)
        if (out[i] == out[i - 1])
            throw ValueError(fmt::format("{}: axis {} appears more than once in ({})", op, out[i], fmt::join(axes, ", ")));
    return out;
}

}  // namespace xg
