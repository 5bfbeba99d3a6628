// Reductions. Their gradients broadcast the output gradient back over the reduced axes.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ops/axes.hpp"
#include "ops/instantiate.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

// Shape of a reduction over `axis` with the reduced dimension kept as 1.
Shape kept_shape(const Shape& shape, std::size_t axis) {
    Shape s = shape;
    s[axis] = 1;
    return s;
}


// A reduction over one axis, or over every element (axis == all_axes): the lanes of an
// (outer, dim, inner) split, and the shape of the result with the reduced dimensions kept as 1.
constexpr std::size_t all_axes = static_cast<std::size_t>(-1);

AxisSplit lanes_of(const Shape& shape, std::size_t axis, std::string_view op) {
    return axis == all_axes ? AxisSplit{1, shape_size(shape, op), 1} : split_at_axis(shape, axis);
}

Shape kept_of(const Shape& shape, std::size_t axis) {
    return axis == all_axes ? Shape(shape.size(), 1) : kept_shape(shape, axis);
}

// The axes of a reduction: an empty list means every axis (torch's dim=[]).
std::vector<std::size_t> reduction_axes(const std::vector<long>& axes, std::size_t ndim, std::string_view op) {
    std::vector<std::size_t> out = normalize_axes(axes, ndim, op);
    if (axes.empty())
        for (std::size_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
}

// The shape after reducing `axes` (sorted), kept as 1 or removed.
Shape reduced_shape(const Shape& shape, const std::vector<std::size_t>& axes, bool keepdims) {
    Shape out;
    for (std::size_t i = 0, k = 0; i < shape.size(); ++i) {
        const bool reduced = k < axes.size() && axes[k] == i;
        if (reduced) ++k;
        if (!reduced) out.push_back(shape[i]);
        else if (keepdims) out.push_back(1);
    }
    return out;
}

// The same for one axis or all of them (axis == all_axes).
Shape reduced_of(const Shape& shape, std::size_t axis, bool keepdims) {
    if (axis == all_axes) return keepdims ? Shape(shape.size(), 1) : Shape{};
    return reduced_shape(shape, {axis}, keepdims);
}

std::size_t reduced_count(const Shape& shape, const std::vector<std::size_t>& axes) {
    std::size_t n = 1;
    for (std::size_t a : axes) n *= shape[a];
    return n;
}

// Sum over one axis of a row-major array seen as (outer, dim, inner): contiguous runs of `inner`
// elements are added into the output row, a loop the compiler vectorises. (xtensor's reducer
// walks the array with steppers and costs several times more, e.g. for a bias gradient.)
template <class T>
Array<T> sum_axis(const Array<T>& x, std::size_t axis, bool keepdims) {
    const AxisSplit s = split_at_axis(x.shape(), axis);
    Array<T> y = full(reduced_of(x.shape(), axis, keepdims), T(0));
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

template <class T>
T nan_min(T m, T v) {
    return (v < m || std::isnan(v)) && !std::isnan(m) ? v : m;
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

// Max (or min, `lowest`) over one axis, or over all (axis = all_axes). A NaN anywhere in a lane
// makes its result NaN. Ties (and NaNs) share the gradient equally (torch.amax/amin's rule).
template <class T>
struct Max final : Function<T> {
    Max(std::size_t axis, bool keepdims, bool lowest) : axis(axis), keepdims(keepdims), lowest(lowest) {}
    std::string_view name() const override { return lowest ? "min" : "max"; }

    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        if (axis == all_axes ? x.size() == 0 : x.shape()[axis] == 0)  // a non-empty axis of an empty array is fine
            throw ShapeError(fmt::format("{}: reduction of an empty array of shape {}{}", name(), shape_str(x.shape()),
                                         axis == all_axes ? "" : fmt::format(" over axis {}", axis)));
        const AxisSplit s = lanes_of(x.shape(), axis, name());
        Array<T> y = Array<T>::from_shape(reduced_of(x.shape(), axis, keepdims));
        for (std::size_t o = 0; o < s.outer; ++o) {
            const T* src = x.data() + o * s.dim * s.inner;
            T* dst = y.data() + o * s.inner;
            std::copy_n(src, s.inner, dst);
            for (std::size_t d = 1; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i)
                    dst[i] = lowest ? nan_min(dst[i], src[d * s.inner + i]) : nan_max(dst[i], src[d * s.inner + i]);
        }
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Array<T>& x = this->input(0).data();
        const Array<T>& y = this->output().data();
        const AxisSplit s = lanes_of(x.shape(), axis, name());
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
        return {broadcast_to(reshape(gy, as_long(kept_of(x.shape(), axis))), x.shape()) * Variable<T>(std::move(mask))};
    }
    std::size_t axis;
    bool keepdims, lowest;
};

// log(sum(exp(x))) along an axis, shifted by the lane's maximum (0 when that is infinite, so a
// lane of -inf gives log(0) = -inf and one holding +inf gives +inf). An empty lane gives -inf.
template <class T>
struct LogSumExp final : Function<T> {
    LogSumExp(std::size_t axis, bool keepdims) : axis(axis), keepdims(keepdims) {}
    std::string_view name() const override { return "logsumexp"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        const AxisSplit s = split_at_axis(x.shape(), axis);
        Array<T> y = Array<T>::from_shape(reduced_of(x.shape(), axis, keepdims));
        std::vector<T> shift(s.inner), total(s.inner);
        for (std::size_t o = 0; o < s.outer; ++o) {
            const T* src = x.data() + o * s.dim * s.inner;
            std::fill(shift.begin(), shift.end(), -std::numeric_limits<T>::infinity());
            for (std::size_t d = 0; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i) shift[i] = nan_max(shift[i], src[d * s.inner + i]);
            for (std::size_t i = 0; i < s.inner; ++i)
                if (!std::isfinite(shift[i])) shift[i] = T(0);
            std::fill(total.begin(), total.end(), T(0));
            for (std::size_t d = 0; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i) total[i] += std::exp(src[d * s.inner + i] - shift[i]);
            T* dst = y.data() + o * s.inner;
            for (std::size_t i = 0; i < s.inner; ++i) dst[i] = std::log(total[i]) + shift[i];
        }
        return y;
    }
    // gx = gy * exp(x - y): softmax times the output gradient, written with ops (the output is
    // recorded, so this is differentiable again).
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Shape& xshape = this->input(0).shape();
        const std::vector<long> kept = as_long(kept_shape(xshape, axis));
        const Variable<T> y = broadcast_to(reshape(this->output(), kept), xshape);
        return {broadcast_to(reshape(gy, kept), xshape) * exp(this->input(0) - y)};
    }
    std::size_t axis;
    bool keepdims;
};

// The square root of a variance, with gradient 0 where it is 0 (PyTorch's std_backward), not
// 0 * inf = NaN: gv = gy * m / (2 * (y + 1 - m)) with m = (y != 0), a constant of the graph.
template <class T>
struct StdOfVar final : Function<T> {
    std::string_view name() const override { return "std"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        for (std::size_t i = 0; i < y.size(); ++i) y.data()[i] = std::sqrt(xs[0].data()[i]);
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        Array<T> m = Array<T>::from_shape(y.shape()), one_minus_m = Array<T>::from_shape(y.shape());
        for (std::size_t i = 0; i < m.size(); ++i) {
            m.data()[i] = y.data().data()[i] == T(0) ? T(0) : T(1);
            one_minus_m.data()[i] = T(1) - m.data()[i];
        }
        return {gy * Variable<T>(std::move(m)) * rdiv(T(0.5), y + Variable<T>(std::move(one_minus_m)))};
    }
};

template <class T>
Array<T> prod_lanes(const Array<T>& x, std::size_t axis, bool keepdims) {
    const AxisSplit s = lanes_of(x.shape(), axis, "prod");
    Array<T> y = full(reduced_of(x.shape(), axis, keepdims), T(1));
    for (std::size_t o = 0; o < s.outer; ++o) {
        const T* src = x.data() + o * s.dim * s.inner;
        T* dst = y.data() + o * s.inner;
        for (std::size_t d = 0; d < s.dim; ++d)
            for (std::size_t i = 0; i < s.inner; ++i) dst[i] *= src[d * s.inner + i];
    }
    return y;
}

template <class T>
Variable<T> prod_others(const Variable<T>& x, std::size_t axis);

template <class T>
struct Prod final : Function<T> {
    Prod(std::size_t axis, bool keepdims) : axis(axis), keepdims(keepdims) {}
    std::string_view name() const override { return "prod"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return prod_lanes(xs[0], axis, keepdims); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Shape& xshape = this->input(0).shape();
        return {broadcast_to(reshape(gy, as_long(kept_of(xshape, axis))), xshape) * prod_others(this->input(0), axis)};
    }
    std::size_t axis;
    bool keepdims;
};

// For each element, the product of the other elements of its lane: prefix * suffix products, so
// no division, and right with any number of zeros.
template <class T>
struct ProdOthers final : Function<T> {
    explicit ProdOthers(std::size_t axis) : axis(axis) {}
    std::string_view name() const override { return "prod_others"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        const AxisSplit s = lanes_of(x.shape(), axis, name());
        Array<T> y = Array<T>::from_shape(x.shape());
        std::vector<T> acc(s.inner);
        for (std::size_t o = 0; o < s.outer; ++o) {
            const T* src = x.data() + o * s.dim * s.inner;
            T* dst = y.data() + o * s.dim * s.inner;
            std::fill(acc.begin(), acc.end(), T(1));
            for (std::size_t d = 0; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i) {
                    dst[d * s.inner + i] = acc[i];
                    acc[i] *= src[d * s.inner + i];
                }
            std::fill(acc.begin(), acc.end(), T(1));
            for (std::size_t d = s.dim; d-- > 0;)
                for (std::size_t i = 0; i < s.inner; ++i) {
                    dst[d * s.inner + i] *= acc[i];
                    acc[i] *= src[d * s.inner + i];
                }
        }
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override;
    std::size_t axis;
};

// The gradient of prod_others: gx_k = sum over i != k of g_i * (product of the lane without i and
// k), in one pass each way (A and B below) and without division. It is linear in g with a
// symmetric kernel, so its gradient for g is itself; the one for x (a third derivative of prod)
// is not implemented and throws.
template <class T>
struct ProdOthersGrad final : Function<T> {
    explicit ProdOthersGrad(std::size_t axis) : axis(axis) {}
    std::string_view name() const override { return "prod_others_grad"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& g = xs[0];
        const Array<T>& x = xs[1];
        const AxisSplit s = lanes_of(x.shape(), axis, name());
        Array<T> y = Array<T>::from_shape(x.shape());
        std::vector<T> pre(s.dim * s.inner), suf(s.dim * s.inner), acc(s.inner);
        for (std::size_t o = 0; o < s.outer; ++o) {
            const std::size_t base = o * s.dim * s.inner;
            const T* px = x.data() + base;
            const T* pg = g.data() + base;
            T* dst = y.data() + base;
            std::fill(acc.begin(), acc.end(), T(1));  // pre[k] = x_0 ... x_{k-1}
            for (std::size_t d = 0; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i) {
                    pre[d * s.inner + i] = acc[i];
                    acc[i] *= px[d * s.inner + i];
                }
            std::fill(acc.begin(), acc.end(), T(1));  // suf[k] = x_{k+1} ... x_{n-1}
            for (std::size_t d = s.dim; d-- > 0;)
                for (std::size_t i = 0; i < s.inner; ++i) {
                    suf[d * s.inner + i] = acc[i];
                    acc[i] *= px[d * s.inner + i];
                }
            // A_k = sum_{i<k} g_i pre_i x_{i+1} ... x_{k-1};  A_{k+1} = A_k x_k + g_k pre_k
            std::fill(acc.begin(), acc.end(), T(0));
            for (std::size_t d = 0; d < s.dim; ++d)
                for (std::size_t i = 0; i < s.inner; ++i) {
                    const std::size_t k = d * s.inner + i;
                    dst[k] = suf[k] * acc[i];
                    acc[i] = acc[i] * px[k] + pg[k] * pre[k];
                }
            // B_k = sum_{i>k} g_i x_{k+1} ... x_{i-1} suf_i;  B_{k-1} = B_k x_k + g_k suf_k
            std::fill(acc.begin(), acc.end(), T(0));
            for (std::size_t d = s.dim; d-- > 0;)
                for (std::size_t i = 0; i < s.inner; ++i) {
                    const std::size_t k = d * s.inner + i;
                    dst[k] += pre[k] * acc[i];
                    acc[i] = acc[i] * px[k] + pg[k] * suf[k];
                }
        }
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& ggx) override {
        if (this->needs_input_grad(1))
            throw GraphError("prod: derivatives of third order and above are not implemented");
        return {apply<ProdOthersGrad<T>>({ggx, this->input(1)}, axis), Variable<T>()};
    }
    std::size_t axis;
};

template <class T>
std::vector<Variable<T>> ProdOthers<T>::backward(const Variable<T>& gy) {
    return {apply<ProdOthersGrad<T>>({gy, this->input(0)}, axis)};
}

template <class T>
Variable<T> prod_others(const Variable<T>& x, std::size_t axis) {
    return apply<ProdOthers<T>>({x}, axis);
}

// Index of the first largest (smallest) element of each lane, the first NaN if there is one.
template <class T>
xt::xarray<std::int64_t> arg_extreme(const Array<T>& x, std::size_t axis, bool keepdims, bool lowest) {
    const std::string_view op = lowest ? "argmin" : "argmax";
    if (x.size() == 0 && (axis == all_axes || x.shape()[axis] == 0))
        throw ShapeError(fmt::format("{}: reduction of an empty array of shape {}{}", op, shape_str(x.shape()),
                                     axis == all_axes ? "" : fmt::format(" over axis {}", axis)));
    const AxisSplit s = lanes_of(x.shape(), axis, op);
    const Shape out_shape = reduced_of(x.shape(), axis, keepdims);
    xt::xarray<std::int64_t> idx = xt::xarray<std::int64_t>::from_shape(out_shape);
    std::vector<T> best(s.inner);
    for (std::size_t o = 0; o < s.outer; ++o) {
        const T* src = x.data() + o * s.dim * s.inner;
        std::int64_t* dst = idx.data() + o * s.inner;
        std::copy_n(src, s.inner, best.begin());
        std::fill_n(dst, s.inner, 0);
        for (std::size_t d = 1; d < s.dim; ++d)
            for (std::size_t i = 0; i < s.inner; ++i) {
                const T v = src[d * s.inner + i], b = best[i];
                const bool better = !std::isnan(b) && (std::isnan(v) || (lowest ? v < b : v > b));
                if (better) {
                    best[i] = v;
                    dst[i] = static_cast<std::int64_t>(d);
                }
            }
    }
    return idx;
}

// max or min over several axes: the reduced axes are moved last (a transpose unless they are
// already) and merged into one, so ties share the gradient over the whole reduced set.
template <class T>
Variable<T> extreme_over(const Variable<T>& x, const std::vector<long>& axes, bool keepdims, bool lowest) {
    const std::string_view op = lowest ? "min" : "max";
    const std::vector<std::size_t> ax = reduction_axes(axes, x.ndim(), op);
    const Shape out_shape = reduced_shape(x.shape(), ax, keepdims);
    Variable<T> y;
    if (ax.size() == 1) {
        y = apply<Max<T>>({x}, ax[0], keepdims, lowest);
    } else if (ax.size() == x.ndim()) {
        y = apply<Max<T>>({x}, all_axes, false, lowest);
    } else {
        const std::size_t n = reduced_count(x.shape(), ax);
        if (n == 0)
            throw ShapeError(fmt::format("{}: reduction of an empty array of shape {} over axes ({})", op,
                                         shape_str(x.shape()), fmt::join(ax, ", ")));
        std::vector<std::size_t> perm;
        std::vector<long> merged;
        for (std::size_t i = 0; i < x.ndim(); ++i)
            if (!std::binary_search(ax.begin(), ax.end(), i)) {
                perm.push_back(i);
                merged.push_back(static_cast<long>(x.shape()[i]));
            }
        perm.insert(perm.end(), ax.begin(), ax.end());
        merged.push_back(static_cast<long>(n));
        const bool identity = std::is_sorted(perm.begin(), perm.end());
        const Variable<T> moved = identity ? x : transpose(x, perm);
        y = apply<Max<T>>({reshape(moved, merged)}, merged.size() - 1, false, lowest);
    }
    return reshape(y, as_long(out_shape));
}

template <class T>
Variable<T> var_over(const Variable<T>& x, const std::vector<std::size_t>& ax, long correction, bool keepdims,
                     std::string_view op) {
    if (correction < 0) throw ValueError(fmt::format("{}: correction must be >= 0, got {}", op, correction));
    const std::size_t n = reduced_count(x.shape(), ax);
    if (n == 0)
        throw ShapeError(fmt::format("{}: reduction of an empty array of shape {} over axes ({})", op,
                                     shape_str(x.shape()), fmt::join(ax, ", ")));
    const std::vector<long> axes(ax.begin(), ax.end());
    const Variable<T> d = x - mean(x, axes, true);
    const long divisor = std::max(0L, static_cast<long>(n) - correction);
    return sum(d * d, axes, keepdims) * (T(1) / static_cast<T>(divisor));  // 1 / 0 = inf: torch's inf or NaN
}

std::vector<std::size_t> one_axis(long axis, std::size_t ndim, std::string_view op) {
    return {normalize_axis(axis, ndim, op)};
}

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

template <class T> Variable<T> max(const Variable<T>& x) { return apply<Max<T>>({x}, all_axes, false, false); }

template <class T>
Variable<T> max(const Variable<T>& x, long axis, bool keepdims) {
    return apply<Max<T>>({x}, normalize_axis(axis, x.ndim(), "max"), keepdims, false);
}

template <class T> Variable<T> min(const Variable<T>& x) { return apply<Max<T>>({x}, all_axes, false, true); }

template <class T>
Variable<T> min(const Variable<T>& x, long axis, bool keepdims) {
    return apply<Max<T>>({x}, normalize_axis(axis, x.ndim(), "min"), keepdims, true);
}

// Several axes: the whole array by the all-elements op, one axis by the one-axis op, more by
// sum_to (which sums over the axes where the kept shape has 1) and a reshape.
template <class T>
Variable<T> sum(const Variable<T>& x, const std::vector<long>& axes, bool keepdims) {
    const std::vector<std::size_t> ax = reduction_axes(axes, x.ndim(), "sum");
    if (ax.size() == 1) return sum(x, static_cast<long>(ax[0]), keepdims);
    if (ax.size() == x.ndim() && !keepdims) return sum(x);
    return reshape(sum_to(x, reduced_shape(x.shape(), ax, true)), as_long(reduced_shape(x.shape(), ax, keepdims)));
}

template <class T>
Variable<T> mean(const Variable<T>& x, const std::vector<long>& axes, bool keepdims) {
    const std::vector<std::size_t> ax = reduction_axes(axes, x.ndim(), "mean");
    const std::size_t n = reduced_count(x.shape(), ax);
    if (n == 0)
        throw ShapeError(fmt::format("mean: reduction of an empty array of shape {} over axes ({})",
                                     shape_str(x.shape()), fmt::join(ax, ", ")));
    return sum(x, axes, keepdims) * (T(1) / static_cast<T>(n));
}

template <class T>
Variable<T> max(const Variable<T>& x, const std::vector<long>& axes, bool keepdims) {
    return extreme_over(x, axes, keepdims, false);
}

template <class T>
Variable<T> min(const Variable<T>& x, const std::vector<long>& axes, bool keepdims) {
    return extreme_over(x, axes, keepdims, true);
}

template <class T>
Variable<T> logsumexp(const Variable<T>& x, long axis, bool keepdims) {
    return apply<LogSumExp<T>>({x}, normalize_axis(axis, x.ndim(), "logsumexp"), keepdims);
}

template <class T>
Variable<T> var(const Variable<T>& x) {
    return var_over(x, reduction_axes({}, x.ndim(), "var"), 1, false, "var");
}

template <class T>
Variable<T> var(const Variable<T>& x, long axis, long correction, bool keepdims) {
    return var_over(x, one_axis(axis, x.ndim(), "var"), correction, keepdims, "var");
}

template <class T>
Variable<T> var(const Variable<T>& x, const std::vector<long>& axes, long correction, bool keepdims) {
    return var_over(x, reduction_axes(axes, x.ndim(), "var"), correction, keepdims, "var");
}

template <class T>
Variable<T> std(const Variable<T>& x) {
    return apply<StdOfVar<T>>({var_over(x, reduction_axes({}, x.ndim(), "std"), 1, false, "std")});
}

template <class T>
Variable<T> std(const Variable<T>& x, long axis, long correction, bool keepdims) {
    return apply<StdOfVar<T>>({var_over(x, one_axis(axis, x.ndim(), "std"), correction, keepdims, "std")});
}

template <class T>
Variable<T> std(const Variable<T>& x, const std::vector<long>& axes, long correction, bool keepdims) {
    return apply<StdOfVar<T>>({var_over(x, reduction_axes(axes, x.ndim(), "std"), correction, keepdims, "std")});
}

template <class T> Variable<T> prod(const Variable<T>& x) { return apply<Prod<T>>({x}, all_axes, false); }

template <class T>
Variable<T> prod(const Variable<T>& x, long axis, bool keepdims) {
    return apply<Prod<T>>({x}, normalize_axis(axis, x.ndim(), "prod"), keepdims);
}

template <class T>
xt::xarray<std::int64_t> argmax(const Variable<T>& x) {
    return arg_extreme(x.data(), all_axes, false, false);
}

template <class T>
xt::xarray<std::int64_t> argmax(const Variable<T>& x, long axis, bool keepdims) {
    return arg_extreme(x.data(), normalize_axis(axis, x.ndim(), "argmax"), keepdims, false);
}

template <class T>
xt::xarray<std::int64_t> argmin(const Variable<T>& x) {
    return arg_extreme(x.data(), all_axes, false, true);
}

template <class T>
xt::xarray<std::int64_t> argmin(const Variable<T>& x, long axis, bool keepdims) {
    return arg_extreme(x.data(), normalize_axis(axis, x.ndim(), "argmin"), keepdims, true);
}

// Overloaded names (see ops/instantiate.hpp): the signature is needed to say which one.
#define XG_INSTANTIATE(T)                                       \
    template Variable<T> sum(const Variable<T>&);               \
    template Variable<T> sum(const Variable<T>&, long, bool);   \
    template Variable<T> mean(const Variable<T>&);              \
    template Variable<T> mean(const Variable<T>&, long, bool);  \
    template Variable<T> max(const Variable<T>&);               \
    template Variable<T> max(const Variable<T>&, long, bool);                                \
    template Variable<T> min(const Variable<T>&);                                            \
    template Variable<T> min(const Variable<T>&, long, bool);                                \
    template Variable<T> sum(const Variable<T>&, const std::vector<long>&, bool);            \
    template Variable<T> mean(const Variable<T>&, const std::vector<long>&, bool);           \
    template Variable<T> max(const Variable<T>&, const std::vector<long>&, bool);            \
    template Variable<T> min(const Variable<T>&, const std::vector<long>&, bool);            \
    template Variable<T> var(const Variable<T>&);                                            \
    template Variable<T> var(const Variable<T>&, long, long, bool);                          \
    template Variable<T> var(const Variable<T>&, const std::vector<long>&, long, bool);      \
    template Variable<T> std(const Variable<T>&);                                            \
    template Variable<T> std(const Variable<T>&, long, long, bool);                          \
    template Variable<T> std(const Variable<T>&, const std::vector<long>&, long, bool);      \
    template Variable<T> prod(const Variable<T>&);                                           \
    template Variable<T> prod(const Variable<T>&, long, bool);                               \
    template xt::xarray<std::int64_t> argmax(const Variable<T>&);                            \
    template xt::xarray<std::int64_t> argmax(const Variable<T>&, long, bool);                \
    template xt::xarray<std::int64_t> argmin(const Variable<T>&);                            \
    template xt::xarray<std::int64_t> argmin(const Variable<T>&, long, bool);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
XG_INSTANTIATE_OP(logsumexp)

}  // namespace xg
