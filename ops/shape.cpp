// Shape ops. Each one's gradient is another shape op, so all of them are twice differentiable.
#include <algorithm>
#include <numeric>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ops/axes.hpp"
#include "ops/instantiate.hpp"
#include "ops/kernels.hpp"
#include "ops/ops.hpp"
#include "ops/vector_math.hpp"

namespace xg {
namespace {


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
        // gy's own array reshaped when the engine hands it over: no copy (a flatten's backward
        // was 2.6% of SimpleConvNet's step)
        if (std::optional<Array<T>> g = this->take_gradient(gy)) {
            g->reshape(this->input(0).shape());
            return {Variable<T>(std::move(*g))};
        }
        return {reshape(gy, as_long(this->input(0).shape()))};
    }
    Shape shape;
};

// y = x with its axes permuted: y's axis i is x's axis axes[i]. A plain loop, not xtensor's
// strided assignment (which walked every element through an index: 10% of the transformer's
// step). Axes of size 1 are dropped and axes that stay adjacent and in order are merged, so
// the head split (B, L, H, D) -> (B, H, L, D) copies runs of D elements; when x's last axis
// moves, blocks of 32 x 32 are transposed so that reads and writes both stay in cache.
template <class T>
Array<T> permute_array(const Array<T>& x, const std::vector<std::size_t>& axes) {
    const std::size_t nd = axes.size();
    Shape out_shape(nd);
    for (std::size_t i = 0; i < nd; ++i) out_shape[i] = x.shape()[axes[i]];
    Array<T> y = Array<T>::from_shape(out_shape);
    if (y.size() == 0) return y;
    std::vector<std::size_t> in_stride(nd, 1);
    for (std::size_t k = nd; k-- > 1;) in_stride[k - 1] = in_stride[k] * x.shape()[k];
    // The output's dimensions with their strides in x, merged.
    std::vector<std::size_t> dim, stride;
    for (std::size_t i = 0; i < nd; ++i) {
        const std::size_t d = out_shape[i], st = in_stride[axes[i]];
        if (d == 1) continue;
        if (!dim.empty() && stride.back() == st * d) {
            dim.back() *= d;
            stride.back() = st;
        } else {
            dim.push_back(d);
            stride.push_back(st);
        }
    }
    const T* src = x.data();
    T* dst = y.data();
    if (dim.size() <= 1) {  // the same order: a copy
        std::copy_n(src, x.size(), dst);
        return y;
    }
    const std::size_t m = dim.size(), last = dim[m - 1], last_stride = stride[m - 1];
    // p: the output axis that reads x's contiguous elements (x's last axis, unless it has size 1).
    std::size_t p = m;
    for (std::size_t i = 0; i < m; ++i)
        if (stride[i] == 1) p = i;
    std::vector<std::size_t> out_stride(m, 1);
    for (std::size_t k = m; k-- > 1;) out_stride[k - 1] = out_stride[k] * dim[k];
    // An odometer over the output axes other than the inner one(s).
    std::vector<std::size_t> index(m, 0);
    const auto advance = [&](std::size_t skip, std::size_t& from, std::size_t& to) {
        for (std::size_t k = m - 1; k-- > 0;) {
            if (k == skip) continue;
            from += stride[k];
            to += out_stride[k];
            if (++index[k] < dim[k]) return true;
            from -= stride[k] * dim[k];
            to -= out_stride[k] * dim[k];
            index[k] = 0;
        }
        return false;
    };
    std::size_t from = 0, to = 0;
    if (last_stride == 1 || p == m) {  // runs of the last axis: copies, or a gather with one stride
        do {
            const T* s = src + from;
            T* d = dst + to;
            if (last_stride == 1) std::copy_n(s, last, d);
            else for (std::size_t j = 0; j < last; ++j) d[j] = s[j * last_stride];
        } while (advance(m, from, to));
        return y;
    }
    constexpr std::size_t block = 32;
    const std::size_t rows = dim[p], row_out = out_stride[p];
    do {
        for (std::size_t r0 = 0; r0 < rows; r0 += block)
            for (std::size_t c0 = 0; c0 < last; c0 += block) {
                const std::size_t r1 = std::min(rows, r0 + block), c1 = std::min(last, c0 + block);
                for (std::size_t r = r0; r < r1; ++r)
                    for (std::size_t c = c0; c < c1; ++c) dst[to + r * row_out + c] = src[from + r + c * last_stride];
            }
    } while (advance(p, from, to));
    return y;
}

template <class T>
struct Transpose final : Function<T> {
    explicit Transpose(std::vector<std::size_t> axes) : axes(std::move(axes)) {}
    std::string_view name() const override { return "transpose"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return permute_array(xs[0], axes); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        std::vector<std::size_t> inverse(axes.size());
        for (std::size_t i = 0; i < axes.size(); ++i) inverse[axes[i]] = i;
        return {transpose(gy, inverse)};
    }
    std::vector<std::size_t> axes;
};

// x repeated to `shape` (checked by the caller) with plain loops; xtensor's broadcast assignment,
// element by element through a stepper, took a fifth of an MLP step with batch norm (the mean's
// gradient, a row repeated over the batch). The trailing axes where x and the output agree are
// copied as one run; failing those, the trailing axes where x has 1 are filled from one element;
// an odometer over the other axes moves through x (stride 0 where x has 1).
template <class T>
Array<T> broadcast_array(const Array<T>& x, const Shape& shape) {
    Array<T> y = Array<T>::from_shape(shape);
    if (y.size() == 0) return y;
    const std::size_t rank = shape.size();
    Shape in(rank, 1);
    std::copy(x.shape().begin(), x.shape().end(), in.begin() + static_cast<std::ptrdiff_t>(rank - x.dimension()));
    std::size_t outer = rank, copy = 1, fill = 1;
    while (outer > 0 && in[outer - 1] == shape[outer - 1]) copy *= shape[--outer];
    if (copy == 1)
        while (outer > 0 && in[outer - 1] == 1) fill *= shape[--outer];
    std::vector<std::size_t> stride(outer, 0), index(outer, 0);
    for (std::size_t i = rank, step = 1; i-- > 0; step *= in[i])
        if (i < outer) stride[i] = in[i] == 1 ? 0 : step;
    const T* src = x.data();
    T* dst = y.data();
    std::size_t at = 0;
    for (std::size_t done = 0, block = copy * fill; done < y.size(); done += block) {
        if (fill == 1)
            std::copy_n(src + at, copy, dst + done);
        else
            std::fill_n(dst + done, fill, src[at]);
        for (std::size_t i = outer; i-- > 0;) {
            at += stride[i];
            if (++index[i] < shape[i]) break;
            at -= stride[i] * shape[i];
            index[i] = 0;
        }
    }
    return y;
}

template <class T>
struct BroadcastTo final : Function<T> {
    explicit BroadcastTo(Shape shape) : shape(std::move(shape)) {}
    std::string_view name() const override { return "broadcast_to"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        if (xs[0].dimension() > shape.size() || broadcast_shapes(xs[0].shape(), shape, name()) != shape)
            throw ShapeError(fmt::format("broadcast_to: cannot broadcast {} to {}", shape_str(xs[0].shape()),
                                         shape_str(shape)));
        return broadcast_array(xs[0], shape);
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
    if (kernels::is_row_of(y, x)) {  // rows onto one row (a bias's gradient): in SIMD batches, in order
        vmath::add_rows(x.data(), x.size() / y.size(), y.size(), y.data());
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
        if (!this->needs_input_grad(0)) return {Variable<T>()};  // added by add_input_grad
        return {apply<SliceGrad<T>>({gy}, this->input(0).shape(), axis, start, stop, step)};
    }
    // Adds the part in place: the slices of one source (an LSTM's gates, the time steps of an
    // input projection) then cost one array of the source's shape per pass, not one each.
    bool add_input_grad(std::size_t, const Array<T>& gy, Array<T>& sum) override {
        const T* g = gy.data();
        T* s = sum.data();
        for_each_slice_run(sum.shape(), axis, start, step, slice_length(start, stop, step),
                           [&](std::size_t f, std::size_t p, std::size_t n) {
                               for (std::size_t k = 0; k < n; ++k) s[f + k] += g[p + k];
                           });
        return true;
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

// Constant padding, one (before, after) pair per axis; negative amounts crop. Its gradient is the
// same op with the amounts negated (a crop, or a pad when they were negative) and value 0.
template <class T>
struct Pad final : Function<T> {
    Pad(std::vector<std::pair<long, long>> pads, T value) : pads(std::move(pads)), value(value) {}
    std::string_view name() const override { return "pad"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        const Shape& in = x.shape();
        const std::size_t nd = in.size();
        Shape out(nd);
        for (std::size_t k = 0; k < nd; ++k)
            out[k] = static_cast<std::size_t>(static_cast<long>(in[k]) + pads[k].first + pads[k].second);
        shape_size(out, name());
        Array<T> y = full(out, value);
        if (y.size() == 0 || x.size() == 0) return y;
        if (nd == 0) return x;
        // Along the last axis, output positions [j0, j1) come from input positions j - before.
        const std::size_t last = nd - 1;
        const long before = pads[last].first;
        const long j0 = std::max(0L, before);
        const long j1 = std::min(static_cast<long>(out[last]), before + static_cast<long>(in[last]));
        if (j1 <= j0) return y;
        std::vector<std::size_t> index(last, 0);  // the output position along the leading axes
        for (std::size_t row = 0, rows = y.size() / out[last]; row < rows; ++row) {
            bool inside = true;
            std::size_t from = 0;
            for (std::size_t k = 0; k < last && inside; ++k) {
                const long s = static_cast<long>(index[k]) - pads[k].first;
                inside = s >= 0 && s < static_cast<long>(in[k]);
                from = from * in[k] + static_cast<std::size_t>(s);
            }
            if (inside)
                std::copy_n(x.data() + from * in[last] + static_cast<std::size_t>(j0 - before),
                            static_cast<std::size_t>(j1 - j0),
                            y.data() + row * out[last] + static_cast<std::size_t>(j0));
            for (std::size_t k = last; k-- > 0;) {
                if (++index[k] < out[k]) break;
                index[k] = 0;
            }
        }
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        std::vector<std::pair<long, long>> crop;
        for (const auto& [b, a] : pads) crop.emplace_back(-b, -a);
        return {pad(gy, crop, T(0))};
    }
    std::vector<std::pair<long, long>> pads;
    T value;
};

// Reverses the elements along each of `axes` (normalised); its own gradient.
template <class T>
struct Flip final : Function<T> {
    explicit Flip(std::vector<std::size_t> axes) : axes(std::move(axes)) {}
    std::string_view name() const override { return "flip"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = xs[0];
        for (const std::size_t axis : axes) {
            const AxisSplit s = split_at_axis(y.shape(), axis);
            for (std::size_t o = 0; o < s.outer; ++o) {
                T* lane = y.data() + o * s.dim * s.inner;
                for (std::size_t d = 0; d < s.dim / 2; ++d)
                    std::swap_ranges(lane + d * s.inner, lane + (d + 1) * s.inner, lane + (s.dim - 1 - d) * s.inner);
            }
        }
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {flip(gy, std::vector<long>(axes.begin(), axes.end()))};
    }
    std::vector<std::size_t> axes;
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

template <class T>
Variable<T> squeeze(const Variable<T>& x) {
    std::vector<long> shape;
    for (const std::size_t d : x.shape())
        if (d != 1) shape.push_back(static_cast<long>(d));
    return reshape(x, shape);
}

template <class T>
Variable<T> squeeze(const Variable<T>& x, long axis) {
    if (x.ndim() == 0) {  // torch accepts axis 0 or -1 for a 0-d tensor
        normalize_axis(axis, 1, "squeeze");
        return x;
    }
    const std::size_t a = normalize_axis(axis, x.ndim(), "squeeze");
    if (x.shape()[a] != 1) return x;
    std::vector<long> shape = as_long(x.shape());
    shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(a));
    return reshape(x, shape);
}

template <class T>
Variable<T> unsqueeze(const Variable<T>& x, long axis) {
    const std::size_t a = normalize_axis(axis, x.ndim() + 1, "unsqueeze");
    std::vector<long> shape = as_long(x.shape());
    shape.insert(shape.begin() + static_cast<std::ptrdiff_t>(a), 1);
    return reshape(x, shape);
}

template <class T>
Variable<T> flatten(const Variable<T>& x, long start, long end) {
    const std::size_t nd = std::max<std::size_t>(x.ndim(), 1);  // a 0-d array flattens as (1,)
    const std::size_t s = normalize_axis(start, nd, "flatten"), e = normalize_axis(end, nd, "flatten");
    if (s > e)
        throw ValueError(fmt::format("flatten: start axis {} comes after end axis {} for shape {}", start, end,
                                     shape_str(x.shape())));
    if (x.ndim() == 0) return reshape(x, {1});
    std::vector<long> shape(x.shape().begin(), x.shape().begin() + static_cast<std::ptrdiff_t>(s));
    long merged = 1;
    for (std::size_t i = s; i <= e; ++i) merged *= static_cast<long>(x.shape()[i]);
    shape.push_back(merged);
    for (std::size_t i = e + 1; i < x.ndim(); ++i) shape.push_back(static_cast<long>(x.shape()[i]));
    return reshape(x, shape);
}

// unsqueeze then concatenate: the gradient is concatenate's (slices) then reshapes.
template <class T>
Variable<T> stack(const std::vector<Variable<T>>& xs, long axis) {
    if (xs.empty()) throw ShapeError("stack: no inputs");
    for (std::size_t i = 0; i < xs.size(); ++i)
        if (!xs[i].defined()) throw GraphError(fmt::format("stack: input {} is an undefined Variable", i));
    const std::size_t a = normalize_axis(axis, xs[0].ndim() + 1, "stack");
    std::vector<Variable<T>> parts;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        if (xs[i].shape() != xs[0].shape())
            throw ShapeError(fmt::format("stack: input {} has shape {}, input 0 has {}", i, shape_str(xs[i].shape()),
                                         shape_str(xs[0].shape())));
        parts.push_back(unsqueeze(xs[i], static_cast<long>(a)));
    }
    return concatenate(parts, static_cast<long>(a));
}

template <class T>
std::vector<Variable<T>> split(const Variable<T>& x, long split_size, long axis) {
    const std::size_t a = normalize_axis(axis, x.ndim(), "split");
    const std::size_t dim = x.shape()[a];
    if (split_size < 0 || (split_size == 0 && dim != 0))
        throw ValueError(fmt::format("split: split size {} for axis {} of shape {} (it must be positive)", split_size,
                                     axis, shape_str(x.shape())));
    if (dim == 0) return {slice(x, static_cast<long>(a), 0, 0)};
    std::vector<Variable<T>> parts;
    for (std::size_t start = 0, n = static_cast<std::size_t>(split_size); start < dim; start += n)
        parts.push_back(slice(x, static_cast<long>(a), start, std::min(start + n, dim)));
    return parts;
}

template <class T>
std::vector<Variable<T>> split(const Variable<T>& x, const std::vector<long>& sizes, long axis) {
    const std::size_t a = normalize_axis(axis, x.ndim(), "split");
    const std::size_t dim = x.shape()[a];
    std::size_t total = 0;
    bool over = false;  // past the axis' size: summed no further, so nothing wraps around
    for (const long n : sizes) {
        if (n < 0)
            throw ValueError(fmt::format("split: negative size {} in ({})", n, fmt::join(sizes, ", ")));
        over = over || static_cast<std::size_t>(n) > dim - total;
        if (!over) total += static_cast<std::size_t>(n);
    }
    if (over || total != dim)
        throw ShapeError(fmt::format("split: sizes ({}) add up to {}, not to the size {} of axis {} of shape {}",
                                     fmt::join(sizes, ", "),
                                     over ? fmt::format("more than {}", dim) : fmt::format("{}", total), dim, axis,
                                     shape_str(x.shape())));
    std::vector<Variable<T>> parts;
    std::size_t start = 0;
    for (const long n : sizes) {
        parts.push_back(slice(x, static_cast<long>(a), start, start + static_cast<std::size_t>(n)));
        start += static_cast<std::size_t>(n);
    }
    return parts;
}

template <class T>
std::vector<Variable<T>> chunk(const Variable<T>& x, long chunks, long axis) {
    const std::size_t a = normalize_axis(axis, x.ndim(), "chunk");
    if (chunks <= 0)
        throw ValueError(fmt::format("chunk: the number of chunks must be positive, got {}", chunks));
    const long dim = static_cast<long>(x.shape()[a]);
    if (dim == 0) {  // torch: `chunks` empty pieces
        std::vector<Variable<T>> parts;
        for (long i = 0; i < chunks; ++i) parts.push_back(slice(x, static_cast<long>(a), 0, 0));
        return parts;
    }
    return split(x, (dim - 1) / chunks + 1, static_cast<long>(a));  // ceil(dim / chunks), no overflow
}

template <class T>
Variable<T> pad(const Variable<T>& x, const std::vector<std::pair<long, long>>& pads, Scalar<T> value) {
    if (pads.size() != x.ndim())
        throw ShapeError(fmt::format("pad: {} (before, after) pairs for shape {}: one per axis, first axis first",
                                     pads.size(), shape_str(x.shape())));
    bool zero = true;
    for (std::size_t k = 0; k < pads.size(); ++k) {
        const auto [b, e] = pads[k];
        const long most = static_cast<long>(max_array_elements);  // the sum below cannot overflow
        if (b > most || e > most || b < -most || e < -most)
            throw ResourceError(fmt::format("pad: ({}, {}) on axis {} of shape {} is beyond any array's size", b, e, k,
                                            shape_str(x.shape())));
        if (static_cast<long>(x.shape()[k]) + b + e < 0)
            throw ShapeError(fmt::format("pad: ({}, {}) on axis {} of shape {} leaves a negative size", b, e, k,
                                         shape_str(x.shape())));
        zero = zero && b == 0 && e == 0;
    }
    if (zero) return x;
    return apply<Pad<T>>({x}, pads, value);
}

template <class T>
Variable<T> flip(const Variable<T>& x, const std::vector<long>& axes) {
    std::vector<std::size_t> ax = normalize_axes(axes, x.ndim(), "flip");
    if (ax.empty()) return x;
    return apply<Flip<T>>({x}, std::move(ax));
}

// Through broadcasting: x as (1, d0, 1, d1, ...) broadcast to (r0, d0, r1, d1, ...) and merged to
// (r0 * d0, r1 * d1, ...); the gradient (sum_to) adds up the copies.
template <class T>
Variable<T> repeat(const Variable<T>& x, const std::vector<long>& repeats) {
    if (repeats.size() < x.ndim())
        throw ShapeError(fmt::format("repeat: {} counts ({}) for shape {}: at least one per axis", repeats.size(),
                                     fmt::join(repeats, ", "), shape_str(x.shape())));
    for (const long r : repeats)
        if (r < 0) throw ValueError(fmt::format("repeat: negative count in ({})", fmt::join(repeats, ", ")));
    const std::size_t extra = repeats.size() - x.ndim();
    std::vector<long> spread, merged;
    Shape target_shape;
    for (std::size_t i = 0; i < repeats.size(); ++i) {
        const long d = i < extra ? 1 : static_cast<long>(x.shape()[i - extra]);
        spread.insert(spread.end(), {1, d});
        target_shape.push_back(static_cast<std::size_t>(repeats[i]));
        target_shape.push_back(static_cast<std::size_t>(d));
    }
    shape_size(target_shape, "repeat");  // ResourceError before any product below could overflow
    for (std::size_t i = 0; i < repeats.size(); ++i) merged.push_back(repeats[i] * spread[2 * i + 1]);
    return reshape(broadcast_to(reshape(x, spread), target_shape), merged);
}

template <class T>
Variable<T> tile(const Variable<T>& x, const std::vector<long>& reps) {
    for (const long r : reps)
        if (r < 0) throw ValueError(fmt::format("tile: negative count in ({})", fmt::join(reps, ", ")));
    std::vector<long> counts(reps.size() < x.ndim() ? x.ndim() - reps.size() : 0, 1);
    counts.insert(counts.end(), reps.begin(), reps.end());
    return repeat(x, counts);
}

template <class T>
Variable<T> permute(const Variable<T>& x, const std::vector<long>& axes) {
    if (axes.size() != x.ndim())
        throw ShapeError(fmt::format("permute: {} axes ({}) for shape {}", axes.size(), fmt::join(axes, ", "),
                                     shape_str(x.shape())));
    normalize_axes(axes, x.ndim(), "permute");  // in range, none twice: a permutation
    std::vector<std::size_t> perm;
    for (const long a : axes) perm.push_back(normalize_axis(a, x.ndim(), "permute"));
    return transpose(x, perm);
}

template <class T>
Variable<T> expand(const Variable<T>& x, const std::vector<long>& shape) {
    auto fail = [&](std::string_view why) {
        return ShapeError(fmt::format("expand: cannot expand {} to ({}): {}", shape_str(x.shape()),
                                      fmt::join(shape, ", "), why));
    };
    if (shape.size() < x.ndim()) throw fail("fewer dimensions");
    const std::size_t lead = shape.size() - x.ndim();
    Shape target(shape.size());
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1 && i < lead) throw fail("-1 for a new leading axis");
        if (shape[i] < -1) throw fail("a negative size");
        const std::size_t have = i < lead ? 1 : x.shape()[i - lead];
        target[i] = shape[i] == -1 ? have : static_cast<std::size_t>(shape[i]);
        if (have != 1 && have != target[i]) throw fail(fmt::format("axis {} has size {}", i, have));
    }
    shape_size(target, "expand");
    return broadcast_to(x, target);
}

XG_INSTANTIATE_OP(reshape)
XG_INSTANTIATE_OP(broadcast_to)
XG_INSTANTIATE_OP(sum_to)
XG_INSTANTIATE_OP(slice)
XG_INSTANTIATE_OP(concatenate)
XG_INSTANTIATE_OP(unsqueeze)
XG_INSTANTIATE_OP(flatten)
XG_INSTANTIATE_OP(stack)
XG_INSTANTIATE_OP(chunk)
XG_INSTANTIATE_OP(pad)
XG_INSTANTIATE_OP(flip)
XG_INSTANTIATE_OP(repeat)
XG_INSTANTIATE_OP(tile)
XG_INSTANTIATE_OP(permute)
XG_INSTANTIATE_OP(expand)

// Overloaded names: the signature is needed to say which one.
#define XG_INSTANTIATE(T)                                 \
    template Variable<T> transpose(const Variable<T>&); \
    template Variable<T> transpose(const Variable<T>&, const std::vector<std::size_t>&);                  \
    template Variable<T> squeeze(const Variable<T>&);                                                    \
    template Variable<T> squeeze(const Variable<T>&, long);                                              \
    template std::vector<Variable<T>> split(const Variable<T>&, long, long);                             \
    template std::vector<Variable<T>> split(const Variable<T>&, const std::vector<long>&, long);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
