#pragma once
// Internal to the ops' .cpp files (not installed): the formulas of the activations that the
// elementwise loops evaluate, each written once for a scalar or an xsimd batch alike (V). Only
// xsimd and <cmath>: ops/vector_math_avx2.cpp, compiled for AVX2, includes it too.
#include <cmath>
#include <utility>

#include <xsimd/xsimd.hpp>

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

// The logistic function. With e = exp(-|x|) <= 1 nothing overflows: 1 / (1 + e) for x >= 0,
// e / (1 + e) below, which keeps full relative precision in the tail (sigmoid(-40) = 4.2e-18,
// where the tanh form 0.5 * tanh(x / 2) + 0.5 cancels to 0 below about -20, and
// log(sigmoid(x)) to -inf).
template <class V>
V sigmoid(V x) {
    using std::abs, std::exp;
    using S = decltype(abs(x));
    const S e = exp(-abs(x));
    const S one(1), r = one / (one + e);
    return kernels::select(x >= S(0), r, e * r);
}

template <class V>
V tanh_of(V x) {
    using std::tanh;
    return tanh(x);
}

// gelu's constants, for element type T.
template <class T>
struct GeluConstants {
    static constexpr T sqrt1_2 = T(0.70710678118654752440);      // 1 / sqrt(2)
    static constexpr T inv_sqrt_2pi = T(0.39894228040143267794);  // 1 / sqrt(2 pi)
    static constexpr T k = T(0.79788456080286535588);             // sqrt(2 / pi)
    static constexpr T c = T(0.044715);
};

// x Phi(x) with Phi(x) = erfc(-x / sqrt(2)) / 2: PyTorch's (1 + erf(x / sqrt(2))) / 2 cancels to 0
// below x = -8 where this keeps the tail (gelu(-10) = -7.7e-23, PyTorch's -0). The tanh form:
// 0.5 x (1 + tanh(u)), u = k (x + c x^3).
template <class T, class V>
V gelu(V x, bool tanh_form) {
    using std::erfc, std::tanh;
    using C = GeluConstants<T>;
    if (!tanh_form) return V(T(0.5)) * x * erfc(-x * V(C::sqrt1_2));
    const V u = V(C::k) * (x + V(C::c) * x * x * x);
    return V(T(0.5)) * x * (V(T(1)) + tanh(u));
}

// gelu's derivative times g: g (Phi(x) + x phi(x)) for the exact form, the derivative of
// 0.5 x (1 + tanh(u)) for the tanh form.
template <class T, class V>
V gelu_grad(V g, V x, bool tanh_form) {
    using std::erfc, std::exp, std::tanh;
    using C = GeluConstants<T>;
    // x * exp(-x^2 / 2) is 0, not NaN, once x^2 overflows.
    if (!tanh_form)
        return g * (V(T(0.5)) * erfc(-x * V(C::sqrt1_2)) + x * exp(x * x * V(T(-0.5))) * V(C::inv_sqrt_2pi));
    const V x2 = x * x;
    const V t = tanh(V(C::k) * (x + V(C::c) * x2 * x));
    const V s = V(T(1)) - t * t;
    // s is 0 long before x^2 overflows (then 0 * inf would be NaN).
    const V rest = V(T(0.5)) * x * s * V(C::k) * (V(T(1)) + V(T(3) * C::c) * x2);
    return g * (V(T(0.5)) * (V(T(1)) + t) + kernels::select(s == V(T(0)), V(T(0)), rest));
}

// gelu(x) and its derivative together, with the bits of gelu(x) and gelu_grad(1, x): the exact
// form evaluates erfc once for both (same expressions, same order). The tanh form's u is rounded
// differently in the two, so it calls both.
template <class T, class V>
std::pair<V, V> gelu_with_grad(V x, bool tanh_form) {
    using std::erfc, std::exp;
    using C = GeluConstants<T>;
    if (tanh_form) return {gelu<T>(x, true), gelu_grad<T>(V(T(1)), x, true)};
    const V e = erfc(-x * V(C::sqrt1_2));
    return {V(T(0.5)) * x * e, V(T(0.5)) * e + x * exp(x * x * V(T(-0.5))) * V(C::inv_sqrt_2pi)};
}

}  // namespace xg::kernels
