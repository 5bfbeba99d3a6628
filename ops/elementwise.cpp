// Elementwise arithmetic and functions, with numpy broadcasting. Gradients of broadcast inputs
// are summed back to the input's shape with sum_to.
#include <cmath>
#include <limits>
#include <type_traits>

#include <fmt/format.h>

#include "ops/instantiate.hpp"
#include "ops/kernels.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

template <class T>
void check_broadcast(const ArrayRefs<T>& xs, std::string_view op) {
    if (xs[0].shape() != xs[1].shape()) broadcast_shapes(xs[0].shape(), xs[1].shape(), op);
}

// A binary op's gradient for input i: `g` reduced to that input's shape, or undefined if unused.
template <class T>
Variable<T> reduce_grad(const Function<T>& fn, std::size_t i, const Variable<T>& g) {
    return sum_to(g, fn.input(i).shape());
}

template <class T>
struct Add final : Function<T> {
    std::string_view name() const override { return "add"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        check_broadcast(xs, name());
        return kernels::broadcast_zip(xs[0], xs[1], [](const auto& a, const auto& b) { return a + b; });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {reduce_grad(*this, 0, gy), reduce_grad(*this, 1, gy)};
    }
};

template <class T>
struct Sub final : Function<T> {
    std::string_view name() const override { return "sub"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        check_broadcast(xs, name());
        return kernels::broadcast_zip(xs[0], xs[1], [](const auto& a, const auto& b) { return a - b; });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        Variable<T> g1;
        if (this->needs_input_grad(1)) g1 = reduce_grad(*this, 1, neg(gy));
        return {reduce_grad(*this, 0, gy), g1};
    }
};

template <class T>
struct Mul final : Function<T> {
    std::string_view name() const override { return "mul"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        check_broadcast(xs, name());
        return kernels::broadcast_zip(xs[0], xs[1], [](const auto& a, const auto& b) { return a * b; });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        Variable<T> g0, g1;
        if (this->needs_input_grad(0)) g0 = reduce_grad(*this, 0, gy * this->input(1));
        if (this->needs_input_grad(1)) g1 = reduce_grad(*this, 1, gy * this->input(0));
        return {g0, g1};
    }
};

template <class T>
struct Div final : Function<T> {
    std::string_view name() const override { return "div"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        check_broadcast(xs, name());
        return kernels::broadcast_zip(xs[0], xs[1], [](const auto& a, const auto& b) { return a / b; });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& a = this->input(0);
        const Variable<T>& b = this->input(1);
        Variable<T> g0, g1;
        if (this->needs_input_grad(0)) g0 = reduce_grad(*this, 0, gy / b);
        if (this->needs_input_grad(1)) g1 = reduce_grad(*this, 1, neg(gy * a / (b * b)));
        return {g0, g1};
    }
};

template <class T>
struct Neg final : Function<T> {
    std::string_view name() const override { return "neg"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return kernels::map(xs[0], [](auto x) { return -x; }); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {neg(gy)}; }
};

template <class T>
struct AddScalar final : Function<T> {
    explicit AddScalar(T c) : c(c) {}
    std::string_view name() const override { return "add_scalar"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return kernels::map(xs[0], [c = c](auto x) { return x + c; }); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy}; }
    T c;
};

template <class T>
struct MulScalar final : Function<T> {
    explicit MulScalar(T c) : c(c) {}
    std::string_view name() const override { return "mul_scalar"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return kernels::map(xs[0], [c = c](auto x) { return x * c; }); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy * c}; }
    T c;
};

template <class T>
struct RSubScalar final : Function<T> {
    explicit RSubScalar(T c) : c(c) {}
    std::string_view name() const override { return "rsub_scalar"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return kernels::map(xs[0], [c = c](auto x) { return c - x; }); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {neg(gy)}; }
    T c;
};

template <class T>
struct RDivScalar final : Function<T> {
    explicit RDivScalar(T c) : c(c) {}
    std::string_view name() const override { return "rdiv_scalar"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return kernels::map(xs[0], [c = c](auto x) { return c / x; }); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& x = this->input(0);
        return {gy * (-c) / (x * x)};
    }
    T c;
};

template <class T>
struct Pow final : Function<T> {
    explicit Pow(T c) : c(c) {}
    std::string_view name() const override { return "pow"; }
    // std::pow element by element: xsimd's pow gives 0 for pow(0, c <= 0) in its SIMD lanes while
    // the scalar tail gives 1 or inf, so one array would hold both answers. std::pow follows C
    // (and PyTorch): pow(0, 0) = 1, pow(0, -1) = inf.
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        const T* x = xs[0].data();
        for (std::size_t i = 0, n = y.size(); i < n; ++i) y.data()[i] = std::pow(x[i], c);
        return y;
    }
    // c * x^(c-1); for c = 0 the derivative is 0 everywhere, x = 0 included (not 0 * inf).
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (c == T(0)) return {Variable<T>()};
        return {gy * c * pow(this->input(0), c - T(1))};
    }
    T c;
};

template <class T>
struct Exp final : Function<T> {
    std::string_view name() const override { return "exp"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::exp;
            return exp(x);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy * this->output()}; }
};

template <class T>
struct Log final : Function<T> {
    std::string_view name() const override { return "log"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::log;
            return log(x);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy / this->input(0)}; }
};

template <class T>
struct Sqrt final : Function<T> {
    std::string_view name() const override { return "sqrt"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::sqrt;
            return sqrt(x);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {gy * T(0.5) / this->output()};
    }
};

template <class T>
struct Abs final : Function<T> {
    std::string_view name() const override { return "abs"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::abs;
            return abs(x);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        // sign(x) is piecewise constant: a constant of the backward graph. As numpy's and
        // xt::sign: NaN for NaN, a zero keeps its sign.
        Array<T> sign = Array<T>::from_shape(this->input(0).shape());
        const T* x = this->input(0).data().data();
        for (std::size_t i = 0, n = sign.size(); i < n; ++i)
            sign.data()[i] = std::isnan(x[i])  ? std::numeric_limits<T>::quiet_NaN()
                             : x[i] == T(0) ? std::copysign(T(0), x[i])
                                            : std::copysign(T(1), x[i]);
        return {gy * Variable<T>(std::move(sign))};
    }
};


// maximum (is_max) or minimum of a and b. NaN in either input gives NaN; ties give a.
template <class T>
struct MaxMin final : Function<T> {
    explicit MaxMin(bool is_max) : is_max(is_max) {}
    std::string_view name() const override { return is_max ? "maximum" : "minimum"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        check_broadcast(xs, name());
        if (is_max)
            return kernels::broadcast_zip(xs[0], xs[1], [](const auto& a, const auto& b) {
                return kernels::select((a < b) | (b != b), b, a);
            });
        return kernels::broadcast_zip(xs[0], xs[1], [](const auto& a, const auto& b) {
            return kernels::select((b < a) | (b != b), b, a);
        });
    }
    // As PyTorch: the gradient goes to the input that was chosen, half to each where a == b, and
    // all of it to both where either is NaN. The weights are piecewise constant: constants of the
    // backward graph.
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Array<T>& a = this->input(0).data();
        const Array<T>& b = this->input(1).data();
        Variable<T> g0, g1;
        // The weight of `first` against `second`: 1/2 on ties, 0 where `second` wins, 1 elsewhere.
        auto weight = [greatest = is_max](const auto& first, const auto& second) {
            using V = std::decay_t<decltype(first)>;
            const auto loses = greatest ? (first < second) : (second < first);
            return kernels::select(first == second, V(T(0.5)), kernels::select(loses, V(T(0)), V(T(1))));
        };
        if (this->needs_input_grad(0))
            g0 = reduce_grad(*this, 0, gy * Variable<T>(kernels::broadcast_zip(a, b, weight)));
        if (this->needs_input_grad(1))
            g1 = reduce_grad(*this, 1, gy * Variable<T>(kernels::broadcast_zip(b, a, weight)));
        return {g0, g1};
    }
    bool is_max;
};

// clamp (bounds included in the gradient) and hardtanh (excluded), as PyTorch's.
template <class T>
struct Clamp final : Function<T> {
    Clamp(T lo, T hi, bool hardtanh) : lo(lo), hi(hi), hardtanh(hardtanh) {
        if (std::isnan(lo) || std::isnan(hi))
            throw ValueError(fmt::format("{}: bounds must not be NaN, got [{}, {}]", name(), lo, hi));
    }
    std::string_view name() const override { return hardtanh ? "hardtanh" : "clamp"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        // NaN stays NaN: it is neither below lo nor above hi.
        return kernels::map(xs[0], [lo = lo, hi = hi](auto x) {
            using V = decltype(x);
            const V r = kernels::select(x < lo, V(lo), x);
            return kernels::select(r > hi, V(hi), r);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Array<T>& x = this->input(0).data();
        Mask outside = Mask::from_shape(x.shape());
        const T* px = x.data();
        bool* po = outside.data();
        if (hardtanh)
            for (std::size_t i = 0, n = x.size(); i < n; ++i) po[i] = px[i] <= lo || px[i] >= hi;
        else
            for (std::size_t i = 0, n = x.size(); i < n; ++i) po[i] = !(px[i] >= lo && px[i] <= hi);
        return {masked_fill(gy, outside, T(0))};
    }
    T lo, hi;
    bool hardtanh;
};

template <class T>
struct Sin final : Function<T> {
    std::string_view name() const override { return "sin"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::sin;
            return sin(x);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy * cos(this->input(0))}; }
};

template <class T>
struct Cos final : Function<T> {
    std::string_view name() const override { return "cos"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::cos;
            return cos(x);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {neg(gy * sin(this->input(0)))}; }
};

template <class T>
struct Log1p final : Function<T> {
    std::string_view name() const override { return "log1p"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::log1p;
            return log1p(x);
        });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy / (this->input(0) + T(1))}; }
};

template <class T>
struct Expm1 final : Function<T> {
    std::string_view name() const override { return "expm1"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::expm1;
            return expm1(x);
        });
    }
    // e^x itself rather than PyTorch's result + 1, which is 0 instead of e^x below x = -37.5.
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy * exp(this->input(0))}; }
};

template <class T>
struct Square final : Function<T> {
    std::string_view name() const override { return "square"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return kernels::map(xs[0], [](auto x) { return x * x; }); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy * (this->input(0) * T(2))}; }
};

template <class T>
struct Reciprocal final : Function<T> {
    std::string_view name() const override { return "reciprocal"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) { return decltype(x)(T(1)) / x; });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        return {neg(gy * square(y))};
    }
};

template <class T>
struct Rsqrt final : Function<T> {
    std::string_view name() const override { return "rsqrt"; }
    // 1 / sqrt(x), correctly rounded twice (no approximate reciprocal square root instruction).
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::map(xs[0], [](auto x) {
            using std::sqrt;
            return decltype(x)(T(1)) / sqrt(x);
        });
    }
    // d/dx x^(-1/2) = -y^3 / 2.
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        return {gy * (square(y) * y) * T(-0.5)};
    }
};
}  // namespace

template <class T> Variable<T> add(const Variable<T>& a, const Variable<T>& b) { return apply<Add<T>>({a, b}); }
template <class T> Variable<T> sub(const Variable<T>& a, const Variable<T>& b) { return apply<Sub<T>>({a, b}); }
template <class T> Variable<T> mul(const Variable<T>& a, const Variable<T>& b) { return apply<Mul<T>>({a, b}); }
template <class T> Variable<T> div(const Variable<T>& a, const Variable<T>& b) { return apply<Div<T>>({a, b}); }
template <class T> Variable<T> neg(const Variable<T>& x) { return apply<Neg<T>>({x}); }
template <class T> Variable<T> add(const Variable<T>& x, Scalar<T> c) { return apply<AddScalar<T>>({x}, c); }
template <class T> Variable<T> mul(const Variable<T>& x, Scalar<T> c) { return apply<MulScalar<T>>({x}, c); }
template <class T> Variable<T> rsub(Scalar<T> c, const Variable<T>& x) { return apply<RSubScalar<T>>({x}, c); }
template <class T> Variable<T> rdiv(Scalar<T> c, const Variable<T>& x) { return apply<RDivScalar<T>>({x}, c); }
template <class T> Variable<T> pow(const Variable<T>& x, Scalar<T> c) { return apply<Pow<T>>({x}, c); }
template <class T> Variable<T> exp(const Variable<T>& x) { return apply<Exp<T>>({x}); }
template <class T> Variable<T> log(const Variable<T>& x) { return apply<Log<T>>({x}); }
template <class T> Variable<T> sqrt(const Variable<T>& x) { return apply<Sqrt<T>>({x}); }
template <class T> Variable<T> abs(const Variable<T>& x) { return apply<Abs<T>>({x}); }
template <class T> Variable<T> maximum(const Variable<T>& a, const Variable<T>& b) {
    return apply<MaxMin<T>>({a, b}, true);
}
template <class T> Variable<T> minimum(const Variable<T>& a, const Variable<T>& b) {
    return apply<MaxMin<T>>({a, b}, false);
}
template <class T> Variable<T> clamp(const Variable<T>& x, Scalar<T> lo, Scalar<T> hi) {
    return apply<Clamp<T>>({x}, lo, hi, false);
}
template <class T> Variable<T> hardtanh(const Variable<T>& x, Scalar<T> min_val, Scalar<T> max_val) {
    return apply<Clamp<T>>({x}, min_val, max_val, true);
}
template <class T> Variable<T> sin(const Variable<T>& x) { return apply<Sin<T>>({x}); }
template <class T> Variable<T> cos(const Variable<T>& x) { return apply<Cos<T>>({x}); }
template <class T> Variable<T> log1p(const Variable<T>& x) { return apply<Log1p<T>>({x}); }
template <class T> Variable<T> expm1(const Variable<T>& x) { return apply<Expm1<T>>({x}); }
template <class T> Variable<T> square(const Variable<T>& x) { return apply<Square<T>>({x}); }
template <class T> Variable<T> reciprocal(const Variable<T>& x) { return apply<Reciprocal<T>>({x}); }
template <class T> Variable<T> rsqrt(const Variable<T>& x) { return apply<Rsqrt<T>>({x}); }

XG_INSTANTIATE_OP(sub)
XG_INSTANTIATE_OP(div)
XG_INSTANTIATE_OP(neg)
XG_INSTANTIATE_OP(rsub)
XG_INSTANTIATE_OP(rdiv)
XG_INSTANTIATE_OP(pow)
XG_INSTANTIATE_OP(exp)
XG_INSTANTIATE_OP(log)
XG_INSTANTIATE_OP(sqrt)
XG_INSTANTIATE_OP(abs)
XG_INSTANTIATE_OP(maximum)
XG_INSTANTIATE_OP(minimum)
XG_INSTANTIATE_OP(clamp)
XG_INSTANTIATE_OP(hardtanh)
XG_INSTANTIATE_OP(sin)
XG_INSTANTIATE_OP(cos)
XG_INSTANTIATE_OP(log1p)
XG_INSTANTIATE_OP(expm1)
XG_INSTANTIATE_OP(square)
XG_INSTANTIATE_OP(reciprocal)
XG_INSTANTIATE_OP(rsqrt)

// Overloaded names: the signature is needed to say which one.
#define XG_INSTANTIATE(T)                                             \
    template Variable<T> add(const Variable<T>&, const Variable<T>&); \
    template Variable<T> add(const Variable<T>&, Scalar<T>);          \
    template Variable<T> mul(const Variable<T>&, const Variable<T>&); \
    template Variable<T> mul(const Variable<T>&, Scalar<T>);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
