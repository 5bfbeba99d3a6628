#pragma once
// Exceptions thrown by xgrad. Every message names the op (or file) and the shapes involved.
#include <stdexcept>
#include <string>

namespace xg {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Incompatible shapes: broadcasting, matmul inner dimensions, reshape sizes, ...
struct ShapeError : Error {
    using Error::Error;
};

// Misuse of the graph: backward of a non-scalar without a gradient, a freed graph, ...
struct GraphError : Error {
    using Error::Error;
};

// A NaN or Inf where it must not be (anomaly mode), or an invalid value such as a bad label.
struct ValueError : Error {
    using Error::Error;
};

// A missing, unreadable, truncated or foreign file; the message names the file and what is wrong.
struct IoError : Error {
    using Error::Error;
};

}  // namespace xg
