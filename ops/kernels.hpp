#pragma once
// Internal to the ops' .cpp files (not installed): elementwise loops over contiguous arrays.
// Plain loops over raw pointers, which GCC vectorises, cost a third of xtensor 0.24's expression
// assignment for the same work (measured on the benchmark's shapes, bench/mlp_step), so the hot
// paths use them; anything else (broadcasting, strides) still goes through xtensor.
#include <cstddef>

#include "graph/array.hpp"

namespace xg::kernels {

// y[i] = f(a[i]) for every element.
template <class T, class F>
Array<T> map(const Array<T>& a, F f) {
    Array<T> y = Array<T>::from_shape(a.shape());
    const T* pa = a.data();
    T* py = y.data();
    const std::size_t n = a.size();
    for (std::size_t i = 0; i < n; ++i) py[i] = f(pa[i]);
    return y;
}

// y[i] = f(a[i], b[i]) for arrays of the same shape.
template <class T, class F>
Array<T> zip(const Array<T>& a, const Array<T>& b, F f) {
    Array<T> y = Array<T>::from_shape(a.shape());
    const T* pa = a.data();
    const T* pb = b.data();
    T* py = y.data();
    const std::size_t n = a.size();
    for (std::size_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
    return y;
}

// f(a, b) with numpy broadcasting, for an `f` written once for scalars and xtensor expressions
// (a generic lambda such as [](const auto& x, const auto& y) { return x * y; }). Equal shapes and
// a one-element operand that does not add dimensions (x * scalar variable) take the loops; other
// broadcasts are evaluated by xtensor. Shapes must already be known to broadcast.
template <class T, class F>
Array<T> broadcast_zip(const Array<T>& a, const Array<T>& b, F f) {
    if (a.shape() == b.shape()) return zip(a, b, f);
    if (b.size() == 1 && b.dimension() <= a.dimension()) {
        const T c = b.data()[0];
        return map(a, [&](T x) { return f(x, c); });
    }
    if (a.size() == 1 && a.dimension() <= b.dimension()) {
        const T c = a.data()[0];
        return map(b, [&](T x) { return f(c, x); });
    }
    return f(a, b);
}

}  // namespace xg::kernels
