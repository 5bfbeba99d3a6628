#pragma once
// Graphviz export of the graph that produced a variable: variables as ellipses (name, shape),
// ops as boxes. Render with `dot -Tpng graph.dot -o graph.png`.
#include <string>

#include "graph/variable.hpp"

namespace xg {

template <class T>
std::string to_dot(const Variable<T>& output, bool verbose = true);

// Writes to_dot(output) to `path` atomically (graph/atomic_file.hpp); IoError naming the path.
template <class T>
void write_dot(const Variable<T>& output, const std::string& path, bool verbose = true);

}  // namespace xg
