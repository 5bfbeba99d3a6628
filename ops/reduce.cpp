// Reductions. Their gradients broadcast the output gradient back over the reduced axes.
#include <xtensor/xbroadcast.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xreducer.hpp>
#include <xtensor/xsort.hpp>

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
    const Shape& shape = x.shape();
    std::size_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < axis; ++i) outer *= shape[i];
    for (std::size_t i = axis + 1; i < shape.size(); ++i) inner *= shape[i];
    const std::size_t dim = shape[axis];
    Shape out_shape = kept_shape(shape, axis);
    if (!keepdims) out_shape.erase(out_shape.begin() + static_cast<std::ptrdiff_t>(axis));
    Array<T> y = xt::zeros<T>(out_shape);
    const T* src = x.data();
    for (std::size_t o = 0; o < outer; ++o) {
        T* dst = y.data() + o * inner;
        for (std::size_t d = 0; d < dim; ++d, src += inner)
            for (std::size_t i = 0; i < inner; ++i) dst[i] += src[i];
    }
    return y;
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

// Max over one axis, or over all (axis = npos). Ties share the gradient equally (a subgradient).
template <class T>
struct Max final : Function<T> {
    static constexpr std::size_t all = static_cast<std::size_t>(-1);
    Max(std::size_t axis, bool keepdims) : axis(axis), keepdims(keepdims) {}
    std::string_view name() const override { return "max"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        if (xs[0].size() == 0) throw ShapeError("max: reduction of an empty array");
        if (axis == all) return Array<T>(xt::amax(xs[0])());
        if (xs[0].shape()[axis] == 0)
            throw ShapeError(fmt::format("max: axis {} of shape {} is empty", axis, shape_str(xs[0].shape())));
        Array<T> y = xt::amax(xs[0], {axis});
        if (keepdims) y.reshape(kept_shape(xs[0].shape(), axis));
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Array<T>& x = this->input(0).data();
        const Shape kshape = axis == all ? Shape(x.dimension(), 1) : kept_shape(x.shape(), axis);
        Array<T> y = this->output().data();
        y.reshape(kshape);
        Array<T> mask = xt::cast<T>(xt::equal(x, y));
        Array<T> count = axis == all ? Array<T>(xt::sum(mask)()) : Array<T>(xt::sum(mask, {axis}));
        count.reshape(kshape);
        mask /= count;
        return {broadcast_to(reshape(gy, as_long(kshape)), x.shape()) * Variable<T>(std::move(mask))};
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
