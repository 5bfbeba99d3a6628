#pragma once
// A state dict: named arrays in a fixed order (a model's parameters and buffers, an optimizer's
// state). Modules and optimizers produce and consume them; checkpoints store them as .npz.
#include <string>
#include <utility>
#include <vector>

#include "graph/array.hpp"

namespace xg {

template <class T>
using StateDict = std::vector<std::pair<std::string, Array<T>>>;

}  // namespace xg
