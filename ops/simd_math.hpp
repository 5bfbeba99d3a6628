#pragma once
// Internal to the ops' .cpp files (not installed): the formulas of the activations that the
// elementwise loops evaluate, each written once for a scalar or an xsimd batch alike (V). Only
// xsimd and <cmath>: ops/vector_math_avx2.cpp, compiled for AVX2, includes it too.
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
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

// erfc(s) and exp(-s^2). Generic: the two calls.
template <class V>
std::pair<V, V> erfc_and_gauss(V s) {
    using std::erfc, std::exp;
    return {erfc(s), exp(-s * s)};
}

// For float batches: xsimd 8's erfc for float (boost.simd's kernels: the same polynomials and,
// lane by lane, the same operations in the same order, so the same bits), which evaluates
// exp(-s^2) on its way and here hands it back. gelu's derivative needs x exp(-x^2 / 2) for
// s = -x / sqrt(2), and a second exp cost a quarter of gelu_with_grad's time.
template <class A>
std::pair<xsimd::batch<float, A>, xsimd::batch<float, A>> erfc_and_gauss(xsimd::batch<float, A> s) {
    using V = xsimd::batch<float, A>;
    // erfc(a) / (1 - z) for a < 2/3 and erfc(a) exp(a^2) beyond, in z = a / (1 + a) (the second
    // less 0.4).
    static constexpr std::array<std::uint32_t, 9> near_zero = {0x3f7ffffe, 0xbe036d7e, 0xbfa11698,
                                                               0xbffc9284, 0xc016c985, 0x3f2cff3b,
                                                               0xc010d956, 0x401b5680, 0x41aa8e55};
    static constexpr std::array<std::uint32_t, 11> tail = {0x3f0a0e8b, 0xbf918a62, 0x3e243828, 0x3ec4ca6e,
                                                           0x3e1175c7, 0x3e2006f0, 0xbfaea865, 0x4050b063,
                                                           0xc0cd1a85, 0x40d67e3b, 0xc0283611};
    const V a = xsimd::abs(s);
    const V z = a / (V(1.f) + a);
    const V gauss = xsimd::exp(-a * a);
    // The two polynomials, c[0] + t (c[1] + t (c[2] + ...)) from the coefficients' bits, multiplied
    // and added in xsimd's horner order (its fma without FMA is a product, then a sum), in one
    // loop: each lane takes its own polynomial's coefficients and argument, instead of every lane
    // running both (gelu's inputs fall nearly half on each side). near_zero's two missing top
    // coefficients are 0, and t * 0 + 0 = +0 for its t = z in [0, 0.4), so its lanes get the bits
    // of its own 9-term loop.
    const auto near = a < V(2.f / 3.f);
    const V t = xsimd::select(near, z, z - V(0.4f));
    V p = xsimd::select(near, V(0.f), V(std::bit_cast<float>(tail.back())));
    for (std::size_t k = tail.size() - 1; k-- > 0;)
        p = t * p + xsimd::select(near, V(k < near_zero.size() ? std::bit_cast<float>(near_zero[k]) : 0.f),
                                  V(std::bit_cast<float>(tail[k])));
    V r = xsimd::select(near, V(1.f) - z, gauss) * p;
    r = xsimd::select(a == V(std::numeric_limits<float>::infinity()), V(0.f), r);
    return {xsimd::select(s < V(0.f), V(2.f) - r, r), gauss};
}

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
    using std::tanh;
    using C = GeluConstants<T>;
    // x * exp(-x^2 / 2) is 0, not NaN, once x^2 overflows.
    if (!tanh_form) {
        const auto [e, gauss] = kernels::erfc_and_gauss(-x * V(C::sqrt1_2));
        return g * (V(T(0.5)) * e + x * gauss * V(C::inv_sqrt_2pi));
    }
    const V x2 = x * x;
    const V t = tanh(V(C::k) * (x + V(C::c) * x2 * x));
    const V s = V(T(1)) - t * t;
    // s is 0 long before x^2 overflows (then 0 * inf would be NaN).
    const V rest = V(T(0.5)) * x * s * V(C::k) * (V(T(1)) + V(T(3) * C::c) * x2);
    return g * (V(T(0.5)) * (V(T(1)) + t) + kernels::select(s == V(T(0)), V(T(0)), rest));
}

// gelu(x) and its derivative together, with the bits of gelu(x) and gelu_grad(1, x): the exact
// form evaluates erfc and exp(-x^2 / 2) once for both (same expressions, same order). The tanh
// form's u is rounded differently in the two, so it calls both.
template <class T, class V>
std::pair<V, V> gelu_with_grad(V x, bool tanh_form) {
    using C = GeluConstants<T>;
    if (tanh_form) return {gelu<T>(x, true), gelu_grad<T>(V(T(1)), x, true)};
    const auto [e, gauss] = kernels::erfc_and_gauss(-x * V(C::sqrt1_2));
    return {V(T(0.5)) * x * e, V(T(0.5)) * e + x * gauss * V(C::inv_sqrt_2pi)};
}

}  // namespace xg::kernels
