// Activation functions. Forwards are written to stay finite for any finite input.
#include <cmath>

#include <fmt/format.h>
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "ops/instantiate.hpp"
#include "ops/kernels.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

template <class T>
struct Sigmoid final : Function<T> {
    std::string_view name() const override { return "sigmoid"; }
    // With e = exp(-|x|) <= 1, nothing overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below, which
    // keeps full relative precision in the tail (sigmoid(-40) = 4.2e-18, where the tanh form
    // 0.5 * tanh(x / 2) + 0.5 cancels to 0 below about -20, and log(sigmoid(x)) to -inf).
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::abs, std::exp;
            using V = decltype(x);
            const V e = exp(-abs(x));
            const V r = V(T(1)) / (V(T(1)) + e);
            return kernels::select(x >= V(T(0)), r, e * r);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        return {gy * y * (T(1) - y)};
    }
};

template <class T>
struct Tanh final : Function<T> {
    std::string_view name() const override { return "tanh"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::tanh;
            return tanh(x);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        return {gy * (T(1) - y * y)};
    }
};

template <class T>
struct LeakyRelu final : Function<T> {
    explicit LeakyRelu(T slope) : slope(slope) {}
    std::string_view name() const override { return slope == T(0) ? "relu" : "leaky_relu"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        // NaN propagates: it is neither > 0 nor < 0.
        if (slope == T(0))
            return kernels::map(xs[0], [](auto x) { return kernels::select(x < T(0), decltype(x)(0), x); });
        return kernels::map(xs[0], [s = slope](auto x) { return kernels::select(x > T(0), x, s * x); });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {leaky_relu_grad(gy, this->input(0), slope)};
    }
    T slope;
};

// gy where x > 0, slope * gy elsewhere: leaky_relu's backward in one pass (no mask array, no
// separate product). The derivative is piecewise constant: x only selects, so its gradient is
// zero, and the gradient for gy is the same selection of the incoming gradient.
template <class T>
struct LeakyReluGrad final : Function<T> {
    explicit LeakyReluGrad(T slope) : slope(slope) {}
    std::string_view name() const override { return "leaky_relu_grad"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        if (xs[0].shape() != xs[1].shape())
            throw ShapeError(fmt::format("leaky_relu_grad: gradient of shape {} for an input of shape {}",
                                         shape_str(xs[0].shape()), shape_str(xs[1].shape())));
        return kernels::zip(xs[0], xs[1], [s = slope](auto g, auto x) { return kernels::select(x > T(0), g, s * g); });
    }
    std::vector<Variable<T>> backward(const Variable<T>& ggx) override {
        return {leaky_relu_grad(ggx, this->input(1), slope), Variable<T>()};
    }
    T slope;
};

template <class T>
struct Softplus final : Function<T> {
    std::string_view name() const override { return "softplus"; }
    // log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x, no lost digits for small.
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return xt::maximum(xs[0], T(0)) + xt::log1p(xt::exp(-xt::abs(xs[0])));
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy * sigmoid(this->input(0))}; }
};

}  // namespace

template <class T> Variable<T> sigmoid(const Variable<T>& x) { return apply<Sigmoid<T>>({x}); }
template <class T> Variable<T> tanh(const Variable<T>& x) { return apply<Tanh<T>>({x}); }
template <class T> Variable<T> relu(const Variable<T>& x) { return apply<LeakyRelu<T>>({x}, T(0)); }
template <class T> Variable<T> leaky_relu(const Variable<T>& x, Scalar<T> slope) { return apply<LeakyRelu<T>>({x}, slope); }
template <class T> Variable<T> softplus(const Variable<T>& x) { return apply<Softplus<T>>({x}); }
template <class T>
Variable<T> leaky_relu_grad(const Variable<T>& gy, const Variable<T>& x, Scalar<T> slope) {
    return apply<LeakyReluGrad<T>>({gy, x}, slope);
}

XG_INSTANTIATE_OP(sigmoid)
XG_INSTANTIATE_OP(tanh)
XG_INSTANTIATE_OP(relu)
XG_INSTANTIATE_OP(leaky_relu)
XG_INSTANTIATE_OP(softplus)
XG_INSTANTIATE_OP(leaky_relu_grad)

}  // namespace xg
