#include "graph/shape_text.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace xg {

std::string shape_text(std::span<const std::size_t> dims) {
    if (dims.size() == 1) return fmt::format("({},)", dims[0]);
    return fmt::format("({})", fmt::join(dims, ", "));
}

}  // namespace xg
