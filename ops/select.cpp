// Selection and masks: comparisons and isfinite (masks out, no graph), where, masked_fill, and
// dropout. Masks broadcast with numpy's rules like every other operand.
#include <array>
#include <cmath>
#include <cstddef>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ops/instantiate.hpp"
#include "ops/kernels.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

// Element strides of an array of shape `in` read as if broadcast to `out` (0 along broadcast
// dimensions and the missing leading ones).
std::vector<std::size_t> broadcast_strides(const Shape& in, const Shape& out) {
    std::vector<std::size_t> strides(out.size(), 0);
    std::size_t stride = 1;
    for (std::size_t i = in.size(); i-- > 0;) {
        if (in[i] != 1) strides[out.size() - in.size() + i] = stride;
        stride *= in[i];
    }
    return strides;
}

// f(k, offsets) for every element k of `out` in row-major order, with offsets[j] the element of
// input j (of shape *ins[j], which broadcasts to `out`) that it reads.
template <std::size_t N, class F>
void for_each_broadcast(const Shape& out, const std::array<const Shape*, N>& ins, F f) {
    std::size_t n = 1;
    for (const std::size_t d : out) n *= d;
    if (n == 0) return;
    std::array<std::size_t, N> offsets{};
    const std::size_t nd = out.size();
    if (nd == 0) {
        f(std::size_t{0}, offsets);
        return;
    }
    std::array<std::vector<std::size_t>, N> strides;
    for (std::size_t j = 0; j < N; ++j) strides[j] = broadcast_strides(*ins[j], out);
    // The last dimension in an inner loop; the outer ones advance like an odometer.
    const std::size_t inner = out[nd - 1];
    std::vector<std::size_t> index(nd, 0);
    for (std::size_t k = 0; k < n; k += inner) {
        std::array<std::size_t, N> at = offsets;
        for (std::size_t i = 0; i < inner; ++i) {
            f(k + i, at);
            for (std::size_t j = 0; j < N; ++j) at[j] += strides[j][nd - 1];
        }
        for (std::size_t d = nd - 1; d-- > 0;) {
            if (++index[d] < out[d]) {
                for (std::size_t j = 0; j < N; ++j) offsets[j] += strides[j][d];
                break;
            }
            for (std::size_t j = 0; j < N; ++j) offsets[j] -= (out[d] - 1) * strides[j][d];
            index[d] = 0;
        }
    }
}

template <class T>
const Array<T>& checked_data(const Variable<T>& x, std::string_view op) {
    return detail::input_arrays(op, &x, 1)[0];
}

// cmp(a, b) element by element, with broadcasting.
template <class T, class Cmp>
Mask compare(const Variable<T>& va, const Variable<T>& vb, std::string_view op, Cmp cmp) {
    const Array<T>& a = checked_data(va, op);
    const Array<T>& b = checked_data(vb, op);
    if (a.shape() == b.shape()) {
        Mask m = Mask::from_shape(a.shape());
        for (std::size_t i = 0, n = a.size(); i < n; ++i) m.data()[i] = cmp(a.data()[i], b.data()[i]);
        return m;
    }
    Mask m = Mask::from_shape(broadcast_shapes(a.shape(), b.shape(), op));
    for_each_broadcast<2>(m.shape(), {&a.shape(), &b.shape()}, [&](std::size_t k, const auto& at) {
        m.data()[k] = cmp(a.data()[at[0]], b.data()[at[1]]);
    });
    return m;
}

template <class T, class Cmp>
Mask compare(const Variable<T>& vx, T c, std::string_view op, Cmp cmp) {
    const Array<T>& x = checked_data(vx, op);
    Mask m = Mask::from_shape(x.shape());
    for (std::size_t i = 0, n = x.size(); i < n; ++i) m.data()[i] = cmp(x.data()[i], c);
    return m;
}

Mask logical_not(const Mask& m) {
    Mask r = Mask::from_shape(m.shape());
    for (std::size_t i = 0, n = m.size(); i < n; ++i) r.data()[i] = !m.data()[i];
    return r;
}

template <class T>
struct Where final : Function<T> {
    explicit Where(Mask mask) : mask(std::move(mask)) {}
    std::string_view name() const override { return "where"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& a = xs[0];
        const Array<T>& b = xs[1];
        Shape shape;
        try {
            shape = broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), name()), b.shape(), name());
        } catch (const ShapeError&) {
            throw ShapeError(fmt::format("where: cannot broadcast mask {}, a {} and b {} together",
                                         shape_str(mask.shape()), shape_str(a.shape()), shape_str(b.shape())));
        }
        Array<T> y = Array<T>::from_shape(shape);
        if (mask.shape() == shape && a.shape() == shape && b.shape() == shape) {
            for (std::size_t i = 0, n = y.size(); i < n; ++i)
                y.data()[i] = mask.data()[i] ? a.data()[i] : b.data()[i];
            return y;
        }
        for_each_broadcast<3>(shape, {&mask.shape(), &a.shape(), &b.shape()}, [&](std::size_t k, const auto& at) {
            y.data()[k] = mask.data()[at[0]] ? a.data()[at[1]] : b.data()[at[2]];
        });
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        Variable<T> ga, gb;
        if (this->needs_input_grad(0))
            ga = sum_to(masked_fill(gy, logical_not(mask), T(0)), this->input(0).shape());
        if (this->needs_input_grad(1)) gb = sum_to(masked_fill(gy, mask, T(0)), this->input(1).shape());
        return {ga, gb};
    }
    void release_saved() override { mask = Mask(); }
    Mask mask;
};

template <class T>
struct MaskedFill final : Function<T> {
    MaskedFill(Mask mask, T value) : mask(std::move(mask)), value(value) {}
    std::string_view name() const override { return "masked_fill"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        if (x.shape() == mask.shape()) {
            Array<T> y = Array<T>::from_shape(x.shape());
            for (std::size_t i = 0, n = y.size(); i < n; ++i) y.data()[i] = mask.data()[i] ? value : x.data()[i];
            return y;
        }
        Shape shape;
        try {
            shape = broadcast_shapes(x.shape(), mask.shape(), name());
        } catch (const ShapeError&) {
            throw ShapeError(fmt::format("masked_fill: mask of shape {} does not broadcast with x of shape {}",
                                         shape_str(mask.shape()), shape_str(x.shape())));
        }
        Array<T> y = Array<T>::from_shape(shape);
        for_each_broadcast<2>(shape, {&mask.shape(), &x.shape()}, [&](std::size_t k, const auto& at) {
            y.data()[k] = mask.data()[at[0]] ? value : x.data()[at[1]];
        });
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {sum_to(masked_fill(gy, mask, T(0)), this->input(0).shape())};
    }
    void release_saved() override { mask = Mask(); }
    Mask mask;
    T value;
};

// y = x * mask, the mask already scaled (1 / (1 - p) or 0): the same products as x * mask.
template <class T>
struct Dropout final : Function<T> {
    explicit Dropout(Array<T> mask) : mask(Variable<T>(std::move(mask))) {}
    std::string_view name() const override { return "dropout"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        return kernels::zip(xs[0], mask.data(), [](const auto& x, const auto& m) { return x * m; });
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy * mask}; }
    void release_saved() override { mask = Variable<T>(); }
    Variable<T> mask;
};

}  // namespace

#define XG_COMPARISON(op, expr)                                                                 \
    template <class T>                                                                          \
    Mask op(const Variable<T>& a, const Variable<T>& b) {                                       \
        return compare(a, b, #op, [](T x, T y) { return expr; });                               \
    }                                                                                           \
    template <class T>                                                                          \
    Mask op(const Variable<T>& a, Scalar<T> c) {                                                \
        return compare(a, T(c), #op, [](T x, T y) { return expr; });                            \
    }                                                                                           \
    template Mask op<float>(const Variable<float>&, const Variable<float>&);                    \
    template Mask op<double>(const Variable<double>&, const Variable<double>&);                 \
    template Mask op<float>(const Variable<float>&, Scalar<float>);                             \
    template Mask op<double>(const Variable<double>&, Scalar<double>);
XG_COMPARISON(eq, x == y)
XG_COMPARISON(ne, x != y)
XG_COMPARISON(lt, x < y)
XG_COMPARISON(le, x <= y)
XG_COMPARISON(gt, x > y)
XG_COMPARISON(ge, x >= y)
#undef XG_COMPARISON

template <class T>
Mask isfinite(const Variable<T>& x) {
    const Array<T>& a = checked_data(x, "isfinite");
    Mask m = Mask::from_shape(a.shape());
    for (std::size_t i = 0, n = a.size(); i < n; ++i) m.data()[i] = std::isfinite(a.data()[i]);
    return m;
}

template <class T>
Variable<T> where(const Mask& mask, const Variable<T>& a, const Variable<T>& b) {
    return apply<Where<T>>({a, b}, mask);
}
// A number operand is a 0-d constant: it broadcasts like any other and gets no gradient.
template <class T>
Variable<T> where(const Mask& mask, const Variable<T>& a, Scalar<T> b) {
    return xg::where(mask, a, scalar<T>(b));
}
template <class T>
Variable<T> where(const Mask& mask, Scalar<T> a, const Variable<T>& b) {
    return xg::where(mask, scalar<T>(a), b);
}

template <class T>
Variable<T> masked_fill(const Variable<T>& x, const Mask& mask, Scalar<T> value) {
    return apply<MaskedFill<T>>({x}, mask, value);
}

template <class T>
Variable<T> dropout(const Variable<T>& x, double p, bool training, std::mt19937_64& generator) {
    if (!(p >= 0 && p <= 1)) throw ValueError(fmt::format("dropout: p must be in [0, 1], got {}", p));
    const Array<T>& a = checked_data(x, "dropout");
    if (!training || p == 0) return x;
    Array<T> mask = full(a.shape(), T(0));
    if (p < 1) {
        // Drawn exactly as nn::Dropout always has: one Bernoulli(1 - p) per element, row-major.
        const T scale = static_cast<T>(1.0 / (1.0 - p));
        std::bernoulli_distribution keep(1.0 - p);
        for (T& m : mask) m = keep(generator) ? scale : T(0);
    }
    return apply<Dropout<T>>({x}, std::move(mask));
}

XG_INSTANTIATE_OP(isfinite)
XG_INSTANTIATE_OP(masked_fill)
XG_INSTANTIATE_OP(dropout)

#define XG_INSTANTIATE(T)                                                                \
    template Variable<T> where(const Mask&, const Variable<T>&, const Variable<T>&);     \
    template Variable<T> where(const Mask&, const Variable<T>&, Scalar<T>);              \
    template Variable<T> where(const Mask&, Scalar<T>, const Variable<T>&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg
