// Matrix products through BLAS (xtensor-blas's gemm). Transposed operands are passed to BLAS as
// flags, so neither the forward nor the backward pass copies a matrix to transpose it.
#include <algorithm>
#include <optional>

#include <fmt/format.h>
#include <xtensor-blas/xblas.hpp>

#include "ops/instantiate.hpp"
#include "ops/kernels.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

struct GemmShape {
    std::size_t m, k, n;
};

// Rows/cols of op(a) and op(b); throws naming both shapes if they do not chain.
template <class T>
GemmShape gemm_shape(std::string_view op, const Array<T>& a, const Array<T>& b, bool ta, bool tb) {
    if (a.dimension() != 2 || b.dimension() != 2)
        throw ShapeError(fmt::format("{}: expects 2-D operands, got shapes {} and {}", op, shape_str(a.shape()),
                                     shape_str(b.shape())));
    const std::size_t m = ta ? a.shape()[1] : a.shape()[0];
    const std::size_t k = ta ? a.shape()[0] : a.shape()[1];
    const std::size_t kb = tb ? b.shape()[1] : b.shape()[0];
    const std::size_t n = tb ? b.shape()[0] : b.shape()[1];
    if (k == kb) shape_size(Shape{m, n}, op);  // (2^40, 0)·(0, 2^40) has more elements than exist
    if (k != kb)
        throw ShapeError(fmt::format("{}: shapes {}{} and {}{} are not aligned ({} != {})", op,
                                     shape_str(a.shape()), ta ? "^T" : "", shape_str(b.shape()), tb ? "^T" : "",
                                     k, kb));
    return {m, k, n};
}

// c = op(a)·op(b) + beta·c, with c already of shape (m, n). For beta = 0 c is cleared here and
// BLAS adds the product: OpenBLAS clears C for beta = 0 with a loop that took 20 of the 88 us of
// the first layer's weight gradient at batch 32 (784 x 100 from 32 rows); memset takes 3.5.
template <class T>
void gemm_into(const Array<T>& a, const Array<T>& b, bool ta, bool tb, Array<T>& c, T beta) {
    if (c.size() == 0) return;
    if (beta == T(0)) {  // c may be fresh, uninitialised memory: clear it, never scale it
        std::fill_n(c.data(), c.size(), T(0));
        beta = T(1);
    }
    if ((ta ? a.shape()[0] : a.shape()[1]) == 0) {  // empty inner dimension: op(a)·op(b) = 0
        if (beta != T(1)) std::for_each(c.data(), c.data() + c.size(), [beta](T& v) { v *= beta; });
        return;
    }
    xt::blas::gemm(a, b, c, ta, tb, T(1), beta);
}

template <class T>
struct MatMul final : Function<T> {
    MatMul(bool ta, bool tb) : ta(ta), tb(tb) {}
    std::string_view name() const override { return "matmul"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const GemmShape s = gemm_shape(name(), xs[0], xs[1], ta, tb);
        Array<T> c = Array<T>::from_shape({s.m, s.n});
        gemm_into(xs[0], xs[1], ta, tb, c, T(0));
        return c;
    }
    // C = op(A)·op(B): dA = dC·op(B)^T (transposed back if A was), dB = op(A)^T·dC likewise.
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& a = this->input(0);
        const Variable<T>& b = this->input(1);
        Variable<T> ga, gb;
        if (this->needs_input_grad(0)) ga = ta ? matmul(b, gy, tb, true) : matmul(gy, b, false, !tb);
        if (this->needs_input_grad(1)) gb = tb ? matmul(gy, a, true, ta) : matmul(a, gy, !ta, false);
        return {ga, gb};
    }
    bool ta, tb;
};

// x·W + b (xs = {x, W} or {x, W, b}) in one BLAS call: b is copied into each row of the output,
// then gemm adds x·W (beta = 1). (A row copy: xtensor's broadcast assignment took 14% of a
// batch-128 training step.)
template <class T>
Array<T> affine(std::string_view op, const ArrayRefs<T>& xs) {
    const Array<T>& x = xs[0];
    const Array<T>& W = xs[1];
    const GemmShape s = gemm_shape(op, x, W, false, false);
    Array<T> y = Array<T>::from_shape({s.m, s.n});
    if (xs.size() == 2) {
        gemm_into(x, W, false, false, y, T(0));
        return y;
    }
    const Array<T>& b = xs[2];
    if (b.dimension() != 1 || b.shape()[0] != s.n)
        throw ShapeError(fmt::format("{}: bias of shape {} does not match output of shape ({}, {})", op,
                                     shape_str(b.shape()), s.m, s.n));
    for (std::size_t i = 0; i < s.m; ++i) std::copy_n(b.data(), s.n, y.data() + i * s.n);
    gemm_into(x, W, false, false, y, T(1));
    return y;
}

// The gradients of x·W + b for the gradient gh of its result: {gx, gW} or {gx, gW, gb}.
template <class T>
std::vector<Variable<T>> affine_grads(const Function<T>& fn, const Variable<T>& gh, const Variable<T>& gb) {
    Variable<T> gx, gW;
    if (fn.needs_input_grad(0)) gx = matmul(gh, fn.input(1), false, true);
    if (fn.needs_input_grad(1)) gW = matmul(fn.input(0), gh, true, false);
    if (fn.inputs().size() == 2) return {gx, gW};
    return {gx, gW, gb};
}

template <class T>
bool needs_bias_grad(const Function<T>& fn) {
    return fn.inputs().size() == 3 && fn.needs_input_grad(2);
}

template <class T>
struct Linear final : Function<T> {
    std::string_view name() const override { return "linear"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return affine(name(), xs); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return affine_grads(*this, gy, needs_bias_grad(*this) ? sum(gy, 0) : Variable<T>());
    }
};

// relu's backward for a relu output y of shape (m, n), the bias gradient's column sums in the same
// pass: gh = gy where y > 0, 0 * gy elsewhere (leaky_relu_grad's values, NaN and Inf alike), and,
// when `sums` holds n zeros, sums[j] += gh[0][j] + gh[1][j] + ... in row order, as sum(gh, 0)
// adds them: the same bits.
template <class T>
Array<T> relu_grad_and_column_sums(const Array<T>& gy, const Array<T>& y, std::optional<Array<T>>& sums) {
    using B = xsimd::batch<T>;
    const std::size_t m = y.shape()[0], n = y.shape()[1];
    auto grad = [](auto g, auto out) { return kernels::select(out > T(0), g, T(0) * g); };
    Array<T> gh = Array<T>::from_shape({m, n});
    T* ps = sums ? sums->data() : nullptr;
    for (std::size_t i = 0; i < m; ++i) {
        const T* pg = gy.data() + i * n;
        const T* py = y.data() + i * n;
        T* ph = gh.data() + i * n;
        std::size_t j = 0;
        for (; j + B::size <= n; j += B::size) {
            const B h = grad(B::load_unaligned(pg + j), B::load_unaligned(py + j));
            h.store_unaligned(ph + j);
            if (ps) (B::load_unaligned(ps + j) + h).store_unaligned(ps + j);
        }
        for (; j < n; ++j) {
            ph[j] = grad(pg[j], py[j]);
            if (ps) ps[j] += ph[j];
        }
    }
    return gh;
}

// relu(x·W + b) as one op: what nn::Sequential runs for a Linear followed by a ReLU. Same values
// and gradients as linear then relu, with relu applied in place to the product and, backward,
// relu's mask and the bias gradient's sums taken in one pass over the gradient; the mask comes
// from the output (y > 0 exactly where x·W + b > 0), so no pre-activation is kept.
template <class T>
struct LinearRelu final : Function<T> {
    std::string_view name() const override { return "linear_relu"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = affine(name(), xs);
        kernels::map_in_place(y, [](auto v) { return kernels::select(v < T(0), decltype(v)(0), v); });
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        if (recording_backward()) {  // create_graph: the backward is recorded, so it is made of ops
            const Variable<T> gh = leaky_relu_grad(gy, y, T(0));
            return affine_grads(*this, gh, needs_bias_grad(*this) ? sum(gh, 0) : Variable<T>());
        }
        std::optional<Array<T>> sums;  // no array at all when the bias needs no gradient
        if (needs_bias_grad(*this)) sums.emplace(full<T>({y.shape()[1]}, T(0)));
        Array<T> gh = relu_grad_and_column_sums(gy.data(), y.data(), sums);
        return affine_grads(*this, Variable<T>(std::move(gh)), sums ? Variable<T>(std::move(*sums)) : Variable<T>());
    }
};

}  // namespace

template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b, bool transpose_a, bool transpose_b) {
    return apply<MatMul<T>>({a, b}, transpose_a, transpose_b);
}

template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b) {
    return matmul(a, b, false, false);
}

template <class T>
Variable<T> linear(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b) {
    if (!b.defined()) return apply<Linear<T>>({x, W});
    return apply<Linear<T>>({x, W, b});
}

template <class T>
Variable<T> linear_relu(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b) {
    if (!b.defined()) return apply<LinearRelu<T>>({x, W});
    return apply<LinearRelu<T>>({x, W, b});
}

XG_INSTANTIATE_OP(linear)
XG_INSTANTIATE_OP(linear_relu)

// Overloaded names: the signature is needed to say which one.
#define XG_INSTANTIATE(T)                                                \
    template Variable<T> matmul(const Variable<T>&, const Variable<T>&); \
    template Variable<T> matmul(const Variable<T>&, const Variable<T>&, bool, bool);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
