// Reductions. Their gradients broadcast the output gradient back over the reduced axes.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "ops/ops.hpp"

namespace xg {
namespace {

// Shape of a reduction over `axis` with the reduced dimension kept as 1.
Shape kept_shape(const Shape& shape, std::size_t axis) {
    Shape s = shape;
    s[axis] = 1;
    return s;
}

std::vector<long> as_long(const Shape& s) { return std::vector<long>(s.begin(), s.end()); }

// Sum over one axis of a row-major array seen as (outer, dim, inner): contiguous runs of `inner`
// elements are added into the output row, a loop the compiler vectorises. (xtensor's reducer
// walks the array with steppers and costs several times more, e.g. for a bias gradient.)
template <class T>
Array<T> sum_axis(const Array<T>& x, std::size_t axis, bool keepdims) {
    const AxisSplit s = split_at_axis(x.shape(), axis);
    Shape out_shape = kept_shape(x.shape(), axis);
    if (!keepdims) out_shape.erase(out_shape.begin() + static_cast<std::ptrdiff_t>(axis));
    Array<T> y = full(out_shape, T(0));
    const T* src = x.data();
    for (std::size_t o = 0; o < s.outer; ++o) {
        T* dst = y.data() + o * s.inner;
        for (std::size_t d = 0; d < s.dim; ++d, src += s.inner)
            for (std::size_t i = 0; i < s.inner; ++i) dst[i] += src[i];
    }
    return y;
}

// The larger of m and v where a NaN wins: max() propagates NaN from any position, as PyTorch's.
template <class T>
T nan_max(T m, T v) {
    return (v > m || std::isnan(v)) && !std::isnan(m) ? v : m;
}

// x == y, counting NaN as equal to NaN: the elements a max picked.
template <class T>
bool picked(T x, T y) {
    return x == y || (std::isnan(x) && std::isnan(y));
}

template <class T>
struct SumAll final : Function<T> {
    std::string_view name() const override { return "sum"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        // A plain loop, in order: xtensor's reducer costs more than the additions for small arrays.
        const T* x = xs[0].data();
        T total = 0;
        for (std::size_t i = 0, n = xs[0].size(); i < n; ++i) total += x[i];
        return Array<T>(total);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {broadcast_to(gy, this->input(0).shape())};
    }
};

template <class T>
struct SumAxis final : Function<T> {
    SumAxis(std::size_t axis, bool keepdims) : axis(axis), keepdims(keepdims) {}
    std::string_view name() const override { return "sum"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return sum_axis(xs[0], axis, keepdims); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Shape& xshape = this->input(0).shape();
        return {broadcast_to(reshape(gy, as_long(kept_shape(xshape, axis))), xshape)};
    }
    std::size_t axis;
    bool keepdims;
};

// Max over one axis, or over all (axis = all): the lanes of an (outer, dim, inner) split. A NaN
// anywhere in a lane makes its maximum NaN. Ties (and NaNs) share the gradient equally.
template <class T>
struct Max final : Function<T> {
    static constexpr std::size_t all = static_cast<std::size_t>(-1);
    Max(std::size_t axis, bool keepdims) : axis(axis), keepdims(keepdims) {}
    std::string_view name() const override { return "max"; }

    AxisSplit lanes(const Shape& shape) const {
        return axis == all ? AxisSplit{1, shape_size(shape, name()), 1} : split_at_axis(shape, axis);
    }
    Shape kept(const Shape& shape) const { return axis == all ? Shape(shape.size(), 1) : kept_shape(shape, axis); }

    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        if (x.size() == 0 || (axis != all && x.shape()[axis] == 0))
            throw ShapeError(fmt::format("max: reduction of an empty array of shape {}{}", shape_str(x.shape()),
                                         axis == all ? "" : fmt::format(" over axis {}", axis)));
        const AxisSplit s = lanes(x.shape());
        Shape out_shape = axis == all ? Shape{} : kept(x.shape());
        if (axis != all && !keepdims) out_shape.erase(out_shape.begin() + static_cast<std::ptrdiff_t>(axis));
        Array<T> y = Array<T>::from_shape(out_shape);
        for (std::size_t o = 0; o < s.outer; ++o) {
            const T* src = x.data() + o * s.dim * s.inner;
            T* dst = y.data() + o * s.inner;
            std::copy_n(src, s.inner, dst);
            for (std::size_t d = 1; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i) dst[i] = nan_max(dst[i], src[d * s.inner + i]);
        }
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Array<T>& x = this->input(0).data();
        const Array<T>& y = this->output().data();
        const AxisSplit s = lanes(x.shape());
        // mask = picked / (number picked in the lane): a constant of the backward graph.
        Array<T> mask = Array<T>::from_shape(x.shape());
        std::vector<std::size_t> count(s.inner);
        for (std::size_t o = 0; o < s.outer; ++o) {
            const T* src = x.data() + o * s.dim * s.inner;
            const T* top = y.data() + o * s.inner;
            T* m = mask.data() + o * s.dim * s.inner;
            std::fill(count.begin(), count.end(), 0);
            for (std::size_t d = 0; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i) {
                    const bool p = picked(src[d * s.inner + i], top[i]);
                    m[d * s.inner + i] = p ? T(1) : T(0);
                    count[i] += p;
                }
            for (std::size_t d = 0; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i) m[d * s.inner + i] /= static_cast<T>(count[i]);
        }
        return {broadcast_to(reshape(gy, as_long(kept(x.shape()))), x.shape()) * Variable<T>(std::move(mask))};
    }
    std::size_t axis;
    bool keepdims;
};

}  // namespace

template <class T> Variable<T> sum(const Variable<T>& x) { return apply<SumAll<T>>({x}); }

template <class T>
Variable<T> sum(const Variable<T>& x, long axis, bool keepdims) {
    return apply<SumAxis<T>>({x}, normalize_axis(axis, x.ndim(), "sum"), keepdims);
}

template <class T>
Variable<T> mean(const Variable<T>& x) {
    if (x.size() == 0) throw ShapeError(fmt::format("mean: empty array of shape {}", shape_str(x.shape())));
    return sum(x) * (T(1) / static_cast<T>(x.size()));
}

template <class T>
Variable<T> mean(const Variable<T>& x, long axis, bool keepdims) {
    const std::size_t a = normalize_axis(axis, x.ndim(), "mean");
    if (x.shape()[a] == 0)
        throw ShapeError(fmt::format("mean: axis {} of shape {} is empty", axis, shape_str(x.shape())));
    return sum(x, axis, keepdims) * (T(1) / static_cast<T>(x.shape()[a]));
}

template <class T> Variable<T> max(const Variable<T>& x) { return apply<Max<T>>({x}, Max<T>::all, false); }

template <class T>
Variable<T> max(const Variable<T>& x, long axis, bool keepdims) {
    return apply<Max<T>>({x}, normalize_axis(axis, x.ndim(), "max"), keepdims);
}

// Overloaded names (see ops/instantiate.hpp): the signature is needed to say which one.
#define XG_INSTANTIATE(T)                                       \
    template Variable<T> sum(const Variable<T>&);               \
    template Variable<T> sum(const Variable<T>&, long, bool);   \
    template Variable<T> mean(const Variable<T>&);              \
    template Variable<T> mean(const Variable<T>&, long, bool);  \
    template Variable<T> max(const Variable<T>&);               \
    template Variable<T> max(const Variable<T>&, long, bool);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
