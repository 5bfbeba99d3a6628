// Activation functions. Forwards are written to stay finite for any finite input.
#include <algorithm>

#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "ops/kernels.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

template <class T>
struct Sigmoid final : Function<T> {
    std::string_view name() const override { return "sigmoid"; }
    // 1 / (1 + e^-x) overflows e^-x for x << 0; the tanh form never does.
    Array<T> forward(const ArrayRefs<T>& xs) override { return T(0.5) * xt::tanh(T(0.5) * xs[0]) + T(0.5); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        return {gy * y * (T(1) - y)};
    }
};

template <class T>
struct Tanh final : Function<T> {
    std::string_view name() const override { return "tanh"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return xt::tanh(xs[0]); }
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
        // NaN propagates (x > 0 is false, slope * NaN is NaN; for relu std::max(NaN, 0) is NaN).
        if (slope == T(0)) return kernels::map(xs[0], [](T x) { return std::max(x, T(0)); });
        return kernels::map(xs[0], [s = slope](T x) { return x > T(0) ? x : s * x; });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        // The derivative is piecewise constant, so it enters the backward graph as a constant.
        const Array<T>& x = this->input(0).data();
        return {gy * Variable<T>(kernels::map(x, [s = slope](T v) { return v > T(0) ? T(1) : s; }))};
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

#define XG_INSTANTIATE(T)                                            \
    template Variable<T> sigmoid(const Variable<T>&);                \
    template Variable<T> tanh(const Variable<T>&);                   \
    template Variable<T> relu(const Variable<T>&);                   \
    template Variable<T> leaky_relu(const Variable<T>&, Scalar<T>);  \
    template Variable<T> softplus(const Variable<T>&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
