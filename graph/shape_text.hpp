#pragma once
// Shapes in messages, as numpy prints them: "(128, 784)", "(5,)", "()" for a scalar.
// Free of xtensor (data/ and the fuzzers use it); shape_str in graph/array.hpp forwards here.
#include <cstddef>
#include <span>
#include <string>

namespace xg {

std::string shape_text(std::span<const std::size_t> dims);

}  // namespace xg
