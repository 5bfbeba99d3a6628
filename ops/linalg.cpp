// Matrix products through BLAS (xtensor-blas's gemm). Transposed operands are passed to BLAS as
// flags, so neither the forward nor the backward pass copies a matrix to transpose it.
#include <algorithm>

#include <fmt/format.h>
#include <xtensor-blas/xblas.hpp>

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
    if (k != kb)
        throw ShapeError(fmt::format("{}: shapes {}{} and {}{} are not aligned ({} != {})", op,
                                     shape_str(a.shape()), ta ? "^T" : "", shape_str(b.shape()), tb ? "^T" : "",
                                     k, kb));
    return {m, k, n};
}

// c = op(a)·op(b) + beta·c, with c already of shape (m, n).
template <class T>
void gemm_into(const Array<T>& a, const Array<T>& b, bool ta, bool tb, Array<T>& c, T beta) {
    if (c.size() == 0) return;
    if ((ta ? a.shape()[0] : a.shape()[1]) == 0) {  // empty inner dimension: the product is zero
        c *= beta;
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

// x·W + b in one BLAS call: b is copied into each row of the output, then gemm adds x·W (beta = 1).
// (A row copy: xtensor's broadcast assignment took 14% of a batch-128 training step.)
template <class T>
struct Linear final : Function<T> {
    std::string_view name() const override { return "linear"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        const Array<T>& W = xs[1];
        const GemmShape s = gemm_shape(name(), x, W, false, false);
        if (xs.size() == 2) {
            Array<T> y = Array<T>::from_shape({s.m, s.n});
            gemm_into(x, W, false, false, y, T(0));
            return y;
        }
        const Array<T>& b = xs[2];
        if (b.dimension() != 1 || b.shape()[0] != s.n)
            throw ShapeError(fmt::format("linear: bias of shape {} does not match output of shape ({}, {})",
                                         shape_str(b.shape()), s.m, s.n));
        Array<T> y = Array<T>::from_shape({s.m, s.n});
        for (std::size_t i = 0; i < s.m; ++i) std::copy_n(b.data(), s.n, y.data() + i * s.n);
        gemm_into(x, W, false, false, y, T(1));
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        Variable<T> gx, gW, gb;
        if (this->needs_input_grad(0)) gx = matmul(gy, this->input(1), false, true);
        if (this->needs_input_grad(1)) gW = matmul(this->input(0), gy, true, false);
        if (this->inputs().size() == 3 && this->needs_input_grad(2)) gb = sum(gy, 0);
        if (this->inputs().size() == 2) return {gx, gW};
        return {gx, gW, gb};
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

#define XG_INSTANTIATE(T)                                                                 \
    template Variable<T> matmul(const Variable<T>&, const Variable<T>&);                  \
    template Variable<T> matmul(const Variable<T>&, const Variable<T>&, bool, bool);      \
    template Variable<T> linear(const Variable<T>&, const Variable<T>&, const Variable<T>&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
