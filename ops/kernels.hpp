#pragma once
// Internal to the ops' .cpp files (not installed): elementwise loops over contiguous arrays.
//
// xtensor 0.24's expression assignment costs about three times a plain loop for the same work
// (measured on the benchmark's shapes, bench/mlp_step), and GCC leaves loops with a selection
// (relu, leaky_relu) scalar and branchy under the default -ftrapping-math. So the hot paths run
// these loops with explicit xsimd batches: `f` is a generic lambda, called with batches for the
// body and with scalars for the tail, and written with the operators and kernels::select
// (ops/simd_math.hpp).
// Other broadcasts take a plain loop over the result's elements (broadcast_each) rather than an
// xtensor expression, whose instantiations made the ops' files slow to compile.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "graph/array.hpp"
#include "ops/simd_math.hpp"

namespace xg::kernels {

// Calls body(j, V()) for j = 0, B::size, 2 B::size, ... with V the xsimd batch B, then for the
// tail j < n with V = T: body loads and stores through load_lane<V> and store_lane, which serve
// both (named so that xsimd's own load and store, found by argument lookup, are not called).
template <class T, class Body>
void lanes(std::size_t n, Body body) {
    using B = xsimd::batch<T>;
    std::size_t j = 0;
    for (; j + B::size <= n; j += B::size) body(j, B());
    for (; j < n; ++j) body(j, T());
}
template <class V, class T>
V load_lane(const T* p) {
    if constexpr (std::is_same_v<V, T>)
        return *p;
    else
        return V::load_unaligned(p);
}
template <class V, class T>
void store_lane(T* p, const V& v) {
    if constexpr (std::is_same_v<V, T>)
        *p = v;
    else
        v.store_unaligned(p);
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

// f(a[i], b[j]) for every element of the broadcast shape (numpy's rules), one element at a time.
// Shapes must already be known to broadcast.
template <class T, class F>
Array<T> broadcast_each(const Array<T>& a, const Array<T>& b, F f) {
    const std::size_t nd = std::max(a.dimension(), b.dimension());
    Shape shape(nd, 1);
    // Element strides of a and b along each dimension of the result: 0 where one is broadcast.
    std::vector<std::size_t> sa(nd, 0), sb(nd, 0);
    std::size_t stride_a = 1, stride_b = 1;
    for (std::size_t i = nd; i-- > 0;) {
        const std::size_t da = i + a.dimension() < nd ? 1 : a.shape()[i + a.dimension() - nd];
        const std::size_t db = i + b.dimension() < nd ? 1 : b.shape()[i + b.dimension() - nd];
        shape[i] = da == 1 ? db : da;
        if (da != 1) sa[i] = stride_a;
        if (db != 1) sb[i] = stride_b;
        stride_a *= da;
        stride_b *= db;
    }
    Array<T> y = Array<T>::from_shape(shape);
    const std::size_t n = y.size();
    if (n == 0) return y;
    const T* pa = a.data();
    const T* pb = b.data();
    T* py = y.data();
    if (nd == 0) {
        py[0] = f(pa[0], pb[0]);
        return y;
    }
    // The last dimension in an inner loop; the outer ones advance like an odometer.
    const std::size_t inner = shape[nd - 1], ia_step = sa[nd - 1], ib_step = sb[nd - 1];
    std::vector<std::size_t> index(nd, 0);
    std::size_t ia = 0, ib = 0;
    for (std::size_t k = 0; k < n; k += inner) {
        for (std::size_t j = 0; j < inner; ++j) py[k + j] = f(pa[ia + j * ia_step], pb[ib + j * ib_step]);
        for (std::size_t d = nd - 1; d-- > 0;) {
            if (++index[d] < shape[d]) {
                ia += sa[d];
                ib += sb[d];
                break;
            }
            ia -= (shape[d] - 1) * sa[d];
            ib -= (shape[d] - 1) * sb[d];
            index[d] = 0;
        }
    }
    return y;
}

// True if `row`'s shape, leading 1s aside, is the last axes of `full`'s, with no more axes than
// full: the broadcast result is full's shape, rows of row.size() elements each meeting `row`
// (a bias added to every row of a linear layer's output).
template <class T>
bool is_row_of(const Array<T>& row, const Array<T>& full) {
    const auto& r = row.shape();
    const auto& f = full.shape();
    if (r.size() > f.size() || row.size() == 0) return false;
    std::size_t lead = 0;
    while (lead < r.size() && r[lead] == 1) ++lead;
    return std::equal(r.begin() + static_cast<std::ptrdiff_t>(lead), r.end(),
                      f.end() - static_cast<std::ptrdiff_t>(r.size() - lead));
}

// f(x, row) (or f(row, x) when row_first) for every row x of `full`, in SIMD lanes.
template <class T, class F>
Array<T> zip_rows(const Array<T>& full, const Array<T>& row, bool row_first, F f) {
    Array<T> y = Array<T>::from_shape(full.shape());
    const std::size_t w = row.size(), n = full.size();
    const T* pr = row.data();
    for (std::size_t k = 0; k < n; k += w) {
        const T* px = full.data() + k;
        T* py = y.data() + k;
        lanes<T>(w, [&](std::size_t j, auto lane) {
            using V = decltype(lane);
            const V x = load_lane<V>(px + j), r = load_lane<V>(pr + j);
            store_lane(py + j, V(row_first ? f(r, x) : f(x, r)));
        });
    }
    return y;
}

// f(a, b) with numpy broadcasting, for a generic lambda `f` (e.g. [](const auto& x, const auto& y)
// { return x * y; }). Equal shapes, a one-element operand that does not add dimensions (x * a
// scalar variable) and an operand that is a row of the other (a bias) take the SIMD loops; other
// broadcasts take broadcast_each.
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
    if (is_row_of(b, a)) return zip_rows(a, b, false, f);
    if (is_row_of(a, b)) return zip_rows(b, a, true, f);
    return broadcast_each(a, b, f);
}

}  // namespace xg::kernels
