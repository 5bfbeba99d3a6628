#pragma once
// Internal to the ops' .cpp files (not installed): elementwise loops over contiguous arrays.
//
// xtensor 0.24's expression assignment costs about three times a plain loop for the same work
// (measured on the benchmark's shapes, bench/mlp_step), and GCC leaves loops with a selection
// (relu, leaky_relu) scalar and branchy under the default -ftrapping-math. So the hot paths run
// these loops with explicit xsimd batches: `f` is a generic lambda, called with batches for the
// body and with scalars for the tail, and written with the operators and kernels::select below.
// Anything else (broadcasting, strides) still goes through xtensor.
#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "graph/array.hpp"

namespace xg::kernels {

// cond ? a : b, for scalars and for xsimd batches alike.
template <class T>
T select(bool cond, T a, T b) {
    return cond ? a : b;
}
template <class T, class A>
xsimd::batch<T, A> select(const xsimd::batch_bool<T, A>& cond, const xsimd::batch<T, A>& a,
                          const xsimd::batch<T, A>& b) {
    return xsimd::select(cond, a, b);
}

// y[i] = f(a[i]) for every element.
template <class T, class F>
Array<T> map(const Array<T>& a, F f) {
    using B = xsimd::batch<T>;
    Array<T> y = Array<T>::from_shape(a.shape());
    const T* pa = a.data();
    T* py = y.data();
    const std::size_t n = a.size();
    std::size_t i = 0;
    for (; i + B::size <= n; i += B::size) B(f(B::load_unaligned(pa + i))).store_unaligned(py + i);
    for (; i < n; ++i) py[i] = f(pa[i]);
    return y;
}

// a[i] = f(a[i]) in place (an op's own fresh result: no second array).
template <class T, class F>
void map_in_place(Array<T>& a, F f) {
    using B = xsimd::batch<T>;
    T* pa = a.data();
    const std::size_t n = a.size();
    std::size_t i = 0;
    for (; i + B::size <= n; i += B::size) B(f(B::load_unaligned(pa + i))).store_unaligned(pa + i);
    for (; i < n; ++i) pa[i] = f(pa[i]);
}

// y[i] = f(a[i], b[i]) for arrays of the same shape.
template <class T, class F>
Array<T> zip(const Array<T>& a, const Array<T>& b, F f) {
    using B = xsimd::batch<T>;
    Array<T> y = Array<T>::from_shape(a.shape());
    const T* pa = a.data();
    const T* pb = b.data();
    T* py = y.data();
    const std::size_t n = a.size();
    std::size_t i = 0;
    for (; i + B::size <= n; i += B::size)
        B(f(B::load_unaligned(pa + i), B::load_unaligned(pb + i))).store_unaligned(py + i);
    for (; i < n; ++i) py[i] = f(pa[i], pb[i]);
    return y;
}

// f(a, b) with numpy broadcasting, for an `f` that also takes xtensor expressions (a generic
// lambda such as [](const auto& x, const auto& y) { return x * y; }). Equal shapes and a
// one-element operand that does not add dimensions (x * a scalar variable) take the loops; other
// broadcasts are evaluated by xtensor. Shapes must already be known to broadcast.
template <class T, class F>
Array<T> broadcast_zip(const Array<T>& a, const Array<T>& b, F f) {
    if (a.shape() == b.shape()) return zip(a, b, f);
    if (b.size() == 1 && b.dimension() <= a.dimension()) {
        const T c = b.data()[0];
        return map(a, [&](const auto& x) { return f(x, std::decay_t<decltype(x)>(c)); });
    }
    if (a.size() == 1 && a.dimension() <= b.dimension()) {
        const T c = a.data()[0];
        return map(b, [&](const auto& x) { return f(std::decay_t<decltype(x)>(c), x); });
    }
    return f(a, b);
}

}  // namespace xg::kernels
