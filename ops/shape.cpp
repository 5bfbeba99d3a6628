// Shape ops. Each one's gradient is another shape op, so all of them are twice differentiable.
#include <algorithm>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xtensor/xbroadcast.hpp>
#include <xtensor/xmanipulation.hpp>

#include "ops/instantiate.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

std::vector<long> as_long(const Shape& s) { return std::vector<long>(s.begin(), s.end()); }

Shape resolve_shape(const Shape& from, const std::vector<long>& to) {
    auto fail = [&](std::string_view why) {
        return ShapeError(fmt::format("reshape: cannot reshape {} ({} elements) into ({}): {}", shape_str(from),
                                      shape_size(from, "reshape"), fmt::join(to, ", "), why));
    };
    Shape out(to.size());
    long infer = -1;
    for (std::size_t i = 0; i < to.size(); ++i) {
        if (to[i] == -1 && infer < 0) {
            infer = static_cast<long>(i);
            out[i] = 1;
        } else if (to[i] < 0) {
            throw fail(to[i] == -1 ? "more than one -1" : "a negative dimension");
        } else {
            out[i] = static_cast<std::size_t>(to[i]);
        }
    }
    const std::size_t n = shape_size(from, "reshape");
    const std::size_t known = shape_size(out, "reshape");  // throws before a product could wrap
    if (infer >= 0) {
        if (known == 0 || n % known != 0) throw fail("the sizes do not divide");
        out[static_cast<std::size_t>(infer)] = n / known;
    } else if (known != n) {
        throw fail("the element counts differ");
    }
    return out;
}

template <class T>
struct Reshape final : Function<T> {
    explicit Reshape(Shape shape) : shape(std::move(shape)) {}
    std::string_view name() const override { return "reshape"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = xs[0];
        y.reshape(shape);
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {reshape(gy, as_long(this->input(0).shape()))};
    }
    Shape shape;
};

template <class T>
struct Transpose final : Function<T> {
    explicit Transpose(std::vector<std::size_t> axes) : axes(std::move(axes)) {}
    std::string_view name() const override { return "transpose"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return xt::transpose(xs[0], axes); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        std::vector<std::size_t> inverse(axes.size());
        for (std::size_t i = 0; i < axes.size(); ++i) inverse[axes[i]] = i;
        return {transpose(gy, inverse)};
    }
    std::vector<std::size_t> axes;
};

template <class T>
struct BroadcastTo final : Function<T> {
    explicit BroadcastTo(Shape shape) : shape(std::move(shape)) {}
    std::string_view name() const override { return "broadcast_to"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        if (xs[0].dimension() > shape.size() || broadcast_shapes(xs[0].shape(), shape, name()) != shape)
            throw ShapeError(fmt::format("broadcast_to: cannot broadcast {} to {}", shape_str(xs[0].shape()),
                                         shape_str(shape)));
        if (xs[0].size() == 1) {  // the gradient of a sum or a mean: a fill, not xtensor's broadcast
            Array<T> y = Array<T>::from_shape(shape);
            std::fill_n(y.data(), y.size(), xs[0].data()[0]);
            return y;
        }
        return xt::broadcast(xs[0], shape);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {sum_to(gy, this->input(0).shape())};
    }
    Shape shape;
};

// Sums x over the axes where `shape` has 1 (or no dimension) and x does not. A plain loop: for
// each run of x's last axis, the matching output run is found from the kept axes' index (an
// odometer over the other axes), then added elementwise or summed into one element.
template <class T>
Array<T> sum_to_shape(const Array<T>& x, const Shape& shape) {
    const Shape& in = x.shape();
    Shape kept(in.size(), 1);  // the output's dimensions, aligned with x's
    for (std::size_t i = 0; i < shape.size(); ++i) kept[in.size() - shape.size() + i] = shape[i];
    Array<T> y = full(shape, T(0));
    if (x.size() == 0 || in.empty()) {
        if (x.size() == 1) y.data()[0] = x.data()[0];
        return y;
    }
    // Row-major strides of the output in x's alignment, 0 along summed axes.
    std::vector<std::size_t> out_stride(in.size(), 0);
    for (std::size_t i = in.size(), step = 1; i-- > 0; step *= kept[i]) out_stride[i] = kept[i] == 1 ? 0 : step;
    const std::size_t last = in.size() - 1, run = in[last];
    const bool keep_last = kept[last] != 1;
    std::vector<std::size_t> index(in.size(), 0);
    const T* src = x.data();
    T* dst = y.data();
    for (std::size_t done = 0, total = x.size(); done < total; done += run, src += run) {
        std::size_t at = 0;
        for (std::size_t i = 0; i < last; ++i) at += index[i] * out_stride[i];
        if (keep_last) {
            for (std::size_t j = 0; j < run; ++j) dst[at + j] += src[j];
        } else {
            T s = 0;
            for (std::size_t j = 0; j < run; ++j) s += src[j];
            dst[at] += s;
        }
        for (std::size_t i = last; i-- > 0;) {  // next position of the odometer
            if (++index[i] < in[i]) break;
            index[i] = 0;
        }
    }
    return y;
}

template <class T>
struct SumTo final : Function<T> {
    explicit SumTo(Shape shape) : shape(std::move(shape)) {}
    std::string_view name() const override { return "sum_to"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Shape& in = xs[0].shape();
        if (in.size() < shape.size() || broadcast_shapes(shape, in, name()) != in)
            throw ShapeError(fmt::format("sum_to: cannot sum {} to {}", shape_str(in), shape_str(shape)));
        return sum_to_shape(xs[0], shape);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {broadcast_to(gy, this->input(0).shape())};
    }
    Shape shape;
};

std::size_t slice_length(std::size_t start, std::size_t stop, std::size_t step) {
    return stop > start ? (stop - start - 1) / step + 1 : 0;  // no stop + step that could wrap
}

// Calls run(full_offset, part_offset, n) for each contiguous run of the slice
// [..., start:start+count*step:step, ...] of an array of shape `full`.
template <class F>
void for_each_slice_run(const Shape& full, std::size_t axis, std::size_t start, std::size_t step,
                        std::size_t count, F&& run) {
    const AxisSplit b = split_at_axis(full, axis);
    for (std::size_t o = 0; o < b.outer; ++o)
        for (std::size_t j = 0; j < count; ++j)
            run((o * b.dim + start + j * step) * b.inner, (o * count + j) * b.inner, b.inner);
}

template <class T>
struct SliceGrad;

template <class T>
struct Slice final : Function<T> {
    Slice(std::size_t axis, std::size_t start, std::size_t stop, std::size_t step)
        : axis(axis), start(start), stop(stop), step(step) {}
    std::string_view name() const override { return "slice"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const std::size_t dim = xs[0].shape()[axis];
        if (start > stop || stop > dim || step == 0)
            throw IndexError(fmt::format("slice: [{}:{}:{}] is out of range for axis {} of shape {}", start, stop,
                                         step, axis, shape_str(xs[0].shape())));
        Shape shape = xs[0].shape();
        shape[axis] = slice_length(start, stop, step);
        Array<T> y = Array<T>::from_shape(shape);
        const T* x = xs[0].data();
        for_each_slice_run(xs[0].shape(), axis, start, step, shape[axis],
                           [&](std::size_t f, std::size_t p, std::size_t n) { std::copy_n(x + f, n, y.data() + p); });
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {apply<SliceGrad<T>>({gy}, this->input(0).shape(), axis, start, stop, step)};
    }
    std::size_t axis, start, stop, step;
};

// Places a slice's gradient into zeros of the source shape; its own gradient is `slice`.
template <class T>
struct SliceGrad final : Function<T> {
    SliceGrad(Shape shape, std::size_t axis, std::size_t start, std::size_t stop, std::size_t step)
        : shape(std::move(shape)), axis(axis), start(start), stop(stop), step(step) {}
    std::string_view name() const override { return "slice_grad"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> gx = full(shape, T(0));
        const T* g = xs[0].data();
        for_each_slice_run(shape, axis, start, step, slice_length(start, stop, step),
                           [&](std::size_t f, std::size_t p, std::size_t n) { std::copy_n(g + p, n, gx.data() + f); });
        return gx;
    }
    std::vector<Variable<T>> backward(const Variable<T>& ggx) override {
        return {slice(ggx, static_cast<long>(axis), start, stop, step)};
    }
    Shape shape;
    std::size_t axis, start, stop, step;
};

template <class T>
struct Concatenate final : Function<T> {
    explicit Concatenate(std::size_t axis) : axis(axis) {}
    std::string_view name() const override { return "concatenate"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Shape shape = xs[0].shape();
        shape[axis] = 0;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            Shape s = xs[i].shape();
            if (s.size() != shape.size())
                throw ShapeError(fmt::format("concatenate: input {} has shape {}, input 0 has {}", i,
                                             shape_str(s), shape_str(xs[0].shape())));
            if (s[axis] > max_array_elements - shape[axis])
                throw ResourceError(fmt::format("concatenate: axis {} grows past {} at input {} of shape {}", axis,
                                                max_array_elements, i, shape_str(s)));
            shape[axis] += s[axis];
            s[axis] = xs[0].shape()[axis];
            if (s != xs[0].shape())
                throw ShapeError(fmt::format("concatenate: input {} has shape {}, input 0 has {} (axis {})", i,
                                             shape_str(xs[i].shape()), shape_str(xs[0].shape()), axis));
        }
        shape_size(shape, name());
        Array<T> y = Array<T>::from_shape(shape);
        const AxisSplit b = split_at_axis(shape, axis);
        std::size_t offset = 0;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const std::size_t run = xs[i].shape()[axis] * b.inner;
            for (std::size_t o = 0; o < b.outer; ++o)
                std::copy_n(xs[i].data() + o * run, run, y.data() + (o * b.dim + offset) * b.inner);
            offset += xs[i].shape()[axis];
        }
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        std::vector<Variable<T>> gxs;
        std::size_t offset = 0;
        for (const auto& x : this->inputs()) {
            const std::size_t len = x.shape()[axis];
            gxs.push_back(slice(gy, static_cast<long>(axis), offset, offset + len));
            offset += len;
        }
        return gxs;
    }
    std::size_t axis;
};

}  // namespace

template <class T>
Variable<T> reshape(const Variable<T>& x, const std::vector<long>& shape) {
    Shape target = resolve_shape(x.shape(), shape);
    if (target == x.shape()) return x;
    return apply<Reshape<T>>({x}, std::move(target));
}

template <class T>
Variable<T> transpose(const Variable<T>& x) {
    std::vector<std::size_t> axes(x.ndim());
    std::iota(axes.rbegin(), axes.rend(), 0);
    return transpose(x, axes);
}

template <class T>
Variable<T> transpose(const Variable<T>& x, const std::vector<std::size_t>& axes) {
    std::vector<std::size_t> sorted = axes;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i)
        if (sorted.size() != x.ndim() || sorted[i] != i)
            throw ShapeError(fmt::format("transpose: axes ({}) are not a permutation of the {} axes of shape {}",
                                         fmt::join(axes, ", "), x.ndim(), shape_str(x.shape())));
    if (axes.size() != x.ndim())
        throw ShapeError(fmt::format("transpose: {} axes given for shape {}", axes.size(), shape_str(x.shape())));
    return apply<Transpose<T>>({x}, axes);
}

template <class T>
Variable<T> broadcast_to(const Variable<T>& x, const Shape& shape) {
    if (x.shape() == shape) return x;
    return apply<BroadcastTo<T>>({x}, shape);
}

template <class T>
Variable<T> sum_to(const Variable<T>& x, const Shape& shape) {
    if (x.shape() == shape) return x;
    return apply<SumTo<T>>({x}, shape);
}

template <class T>
Variable<T> slice(const Variable<T>& x, long axis, std::size_t start, std::size_t stop, std::size_t step) {
    return apply<Slice<T>>({x}, normalize_axis(axis, x.ndim(), "slice"), start, stop, step);
}

template <class T>
Variable<T> concatenate(const std::vector<Variable<T>>& xs, long axis) {
    if (xs.empty()) throw ShapeError("concatenate: no inputs");
    if (!xs[0].defined()) throw GraphError("concatenate: input 0 is an undefined Variable");
    return apply<Concatenate<T>>(xs, normalize_axis(axis, xs[0].ndim(), "concatenate"));
}

XG_INSTANTIATE_OP(reshape)
XG_INSTANTIATE_OP(broadcast_to)
XG_INSTANTIATE_OP(sum_to)
XG_INSTANTIATE_OP(slice)
XG_INSTANTIATE_OP(concatenate)

// Overloaded names: the signature is needed to say which one.
#define XG_INSTANTIATE(T)                                 \
    template Variable<T> transpose(const Variable<T>&); \
    template Variable<T> transpose(const Variable<T>&, const std::vector<std::size_t>&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
