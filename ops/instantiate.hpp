#pragma once
// Internal to the library's ops/*.cpp files (not installed).
//
// XG_INSTANTIATE_OP(f) explicitly instantiates the op template f for float and double by its
// name alone: `decltype(f<float>)` is the type of the one specialization that `f<float>` names,
// so the signature is the one declared in ops/ops.hpp and is written nowhere else. C++ allows
// this only for a name declared once: an overloaded name (add, sum, matmul, ...) names several
// specializations, and each overload is instantiated with its signature written out.
#define XG_INSTANTIATE_OP(f)                \
    template decltype(f<float>) f<float>;   \
    template decltype(f<double>) f<double>;
