#pragma once
// Exceptions thrown by xgrad. Every message names the op (or file) and the shapes involved.
// One rule everywhere: the same mistake raises the same type, whichever layer finds it.
#include <stdexcept>
#include <string>

namespace xg {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Incompatible shapes: broadcasting, matmul inner dimensions, reshape sizes, a state dict entry
// whose shape differs from its parameter's, ...
struct ShapeError : Error {
    using Error::Error;
};

// An index outside its range: a row, a class label, a data set sample, a parameter number.
// The message names the op, the index and the size.
struct IndexError : Error {
    using Error::Error;
};

// Misuse of the graph: backward of a non-scalar without a gradient, a freed graph, an array
// changed in place after an op saved it, ...
struct GraphError : Error {
    using Error::Error;
};

// A NaN or Inf where it must not be (anomaly mode), or an invalid value such as a bad flag or a
// learning rate out of range.
struct ValueError : Error {
    using Error::Error;
};

// A missing, unreadable, truncated, oversized or foreign file; the message names the file (and
// the entry) and what is wrong.
struct IoError : Error {
    using Error::Error;
};

// A shape whose element count overflows, or an allocation the machine refused (std::bad_alloc
// never escapes an op): the message names the op and the shapes.
struct ResourceError : Error {
    using Error::Error;
};

}  // namespace xg
