// Activation functions. Forwards are written to stay finite for any finite input.
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "ops/instantiate.hpp"
#include "ops/kernels.hpp"
#include "ops/ops.hpp"
#include "ops/vector_math.hpp"

namespace xg {
namespace {

template <class T>
struct Sigmoid final : Function<T> {
    std::string_view name() const override { return "sigmoid"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {  // kernels::sigmoid, in ops/simd_math.hpp
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        vmath::sigmoid(xs[0].data(), nullptr, y.data(), y.size());
        return y;
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
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        vmath::tanh(xs[0].data(), nullptr, y.data(), y.size());
        return y;
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
        // NaN propagates: it is neither > 0 nor < 0. relu runs in the widest vector-math build (the
        // same loop as linear_relu's and conv2d's fused relu).
        if (slope == T(0)) {
            Array<T> y = Array<T>::from_shape(xs[0].shape());
            vmath::relu(xs[0].data(), y.data(), y.size());
            return y;
        }
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
        if (slope == T(0)) {  // relu's backward, as linear_relu's and conv2d's fused relu's
            Array<T> y = Array<T>::from_shape(xs[0].shape());
            vmath::relu_grad_rows(xs[0].data(), xs[1].data(), y.data(), 1, y.size(), nullptr);
            return y;
        }
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


// gelu's derivative times gy, as one op: gy * (Phi(x) + x phi(x)) for the exact form, the
// derivative of 0.5 x (1 + tanh(u)), u = k (x + c x^3), for the tanh form. Its own gradient is
// written with ops, so gelu is differentiable any number of times.
template <class T>
struct GeluGrad final : Function<T> {
    using C = kernels::GeluConstants<T>;
    explicit GeluGrad(GeluApproximate approximate) : approximate(approximate) {}
    std::string_view name() const override { return "gelu_grad"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {  // kernels::gelu_grad, in ops/simd_math.hpp
        if (xs[0].shape() != xs[1].shape())
            throw ShapeError(fmt::format("gelu_grad: gradient of shape {} for an input of shape {}",
                                         shape_str(xs[0].shape()), shape_str(xs[1].shape())));
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        vmath::gelu_grad(xs[0].data(), xs[1].data(), y.data(), y.size(), approximate == GeluApproximate::tanh);
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& ggx) override {
        const Variable<T>& gy = this->input(0);
        const Variable<T>& x = this->input(1);
        Variable<T> g_gy, g_x;
        if (this->needs_input_grad(0)) g_gy = apply<GeluGrad<T>>({ggx, x}, approximate);
        if (this->needs_input_grad(1)) {
            // The second derivative of gelu.
            const Variable<T> x2 = square(x);
            Variable<T> second;
            if (approximate == GeluApproximate::none) {
                second = exp(x2 * T(-0.5)) * (2 - x2) * C::inv_sqrt_2pi;
            } else {
                // (1 - t^2) (u' (1 - x t u') + 3 k c x^2), u' = k (1 + 3 c x^2).
                const Variable<T> t = tanh((x + x2 * x * C::c) * C::k);
                const Variable<T> du = (x2 * (T(3) * C::c) + T(1)) * C::k;
                second = (1 - square(t)) * (du * (1 - x * t * du) + x2 * (T(3) * C::k * C::c));
            }
            g_x = ggx * gy * second;
        }
        return {g_gy, g_x};
    }
    GeluApproximate approximate;
};

// When recorded, the forward pass also keeps the derivative gelu'(x): an unrecorded backward is
// then gy * gelu'(x), a product, where gelu_grad would evaluate erfc and exp again (in the
// transformer bench that saved 5% of a training step). The bits are gelu_grad's: its result is
// gy times the same factor.
template <class T>
struct Gelu final : Function<T> {
    Gelu(GeluApproximate approximate, bool keep_derivative)
        : approximate(approximate), keep_derivative(keep_derivative) {}
    std::string_view name() const override { return "gelu"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {  // kernels::gelu, in ops/simd_math.hpp
        const bool tanh_form = approximate == GeluApproximate::tanh;
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        if (!keep_derivative) {
            vmath::gelu(xs[0].data(), y.data(), y.size(), tanh_form);
            return y;
        }
        derivative = Array<T>::from_shape(xs[0].shape());
        vmath::gelu_with_grad(xs[0].data(), y.data(), derivative.data(), y.size(), tanh_form);
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& x = this->input(0);  // also checks that x was not changed in place
        if (recording_backward() || !keep_derivative || gy.shape() != derivative.shape())
            return {apply<GeluGrad<T>>({gy, x}, approximate)};
        // The product is written over gelu'(x), saving an array and a pass (the language model's
        // MLP: 4 MB each): the kept derivative serves one backward pass, and another through a
        // retained graph takes gelu_grad's route above, with the same bits.
        Array<T> gx = std::move(derivative);
        keep_derivative = false;
        const T* g = gy.data().data();
        T* d = gx.data();
        vmath::mul(d, g, d, gx.size(), false);
        return {Variable<T>(std::move(gx))};
    }
    void release_saved() override { derivative = {}; }
    GeluApproximate approximate;
    bool keep_derivative;  // derivative holds gelu'(x)
    Array<T> derivative;
};

template <class T>
struct Silu final : Function<T> {
    std::string_view name() const override { return "silu"; }
    // x * sigmoid(x), with sigmoid's overflow-free form.
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::abs, std::exp;
            using V = decltype(x);
            const V e = exp(-abs(x));
            const V r = V(T(1)) / (V(T(1)) + e);
            return x * kernels::select(x >= V(T(0)), r, e * r);
        });
    }
    // s (1 + x (1 - s)) with s = sigmoid(x), as PyTorch.
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& x = this->input(0);
        const Variable<T> s = sigmoid(x);
        return {gy * (s * (x * (1 - s) + T(1)))};
    }
};

template <class T>
struct Elu final : Function<T> {
    explicit Elu(T alpha) : alpha(alpha) {}
    std::string_view name() const override { return "elu"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [a = alpha](auto x) {
            using std::expm1;
            using V = decltype(x);
            return kernels::select(x > V(T(0)), x, V(a) * expm1(x));
        });
    }
    // gy for x > 0, gy * alpha * e^x for x <= 0 (PyTorch's split). e^x is taken of min(x, 0):
    // e^x of a large x would be inf in the unselected branch, and its zero gradient times inf NaN.
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& x = this->input(0);
        const Variable<T> negative = gy * exp(clamp(x, -std::numeric_limits<T>::infinity(), T(0))) * alpha;
        return {xg::where(le(x, T(0)), negative, gy)};  // qualified: a Mask argument brings in xt::where
    }
    T alpha;
};

template <class T>
struct Softsign final : Function<T> {
    std::string_view name() const override { return "softsign"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::abs;
            using V = decltype(x);
            return x / (V(T(1)) + abs(x));
        });
    }
    // 1 / (1 + |x|)^2.
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {gy / square(abs(this->input(0)) + T(1))};
    }
};
}  // namespace

template <class T> Variable<T> sigmoid(const Variable<T>& x) { return apply<Sigmoid<T>>({x}); }
template <class T> Variable<T> tanh(const Variable<T>& x) { return apply<Tanh<T>>({x}); }
template <class T> Variable<T> relu(const Variable<T>& x) { return apply<LeakyRelu<T>>({x}, T(0)); }
template <class T> Variable<T> leaky_relu(const Variable<T>& x, Scalar<T> slope) { return apply<LeakyRelu<T>>({x}, slope); }
template <class T> Variable<T> softplus(const Variable<T>& x) { return apply<Softplus<T>>({x}); }
template <class T> Variable<T> gelu(const Variable<T>& x, GeluApproximate approximate) {
    return apply<Gelu<T>>({x}, approximate, detail::should_record(&x, 1));
}
template <class T> Variable<T> silu(const Variable<T>& x) { return apply<Silu<T>>({x}); }
template <class T> Variable<T> elu(const Variable<T>& x, Scalar<T> alpha) { return apply<Elu<T>>({x}, alpha); }
template <class T> Variable<T> softsign(const Variable<T>& x) { return apply<Softsign<T>>({x}); }
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
XG_INSTANTIATE_OP(gelu)
XG_INSTANTIATE_OP(silu)
XG_INSTANTIATE_OP(elu)
XG_INSTANTIATE_OP(softsign)

}  // namespace xg
