// Indexing ops: index_select (and rows, its axis-0 form), gather, scatter_add, embedding. Each one's gradient is another
// indexing op (index_select's is an index add, gather's is scatter_add and scatter_add's is
// gather), so all of them are twice differentiable. Indices are checked once, in the public
// wrappers, before any array is touched.
#include <algorithm>

#include <fmt/format.h>

#include "ops/instantiate.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

template <class T>
void require_defined(const Variable<T>& x, std::size_t i, std::string_view op) {
    if (!x.defined()) throw GraphError(fmt::format("{}: input {} is an undefined Variable", op, i));
}

// Every index of `index` in [0, size); `what` says what the size counts.
void check_indices(std::string_view op, const IndexArray& index, std::size_t size, std::string_view what) {
    const std::int64_t* p = index.data();
    for (std::size_t i = 0, n = index.size(); i < n; ++i)
        if (p[i] < 0 || static_cast<std::uint64_t>(p[i]) >= size)
            throw IndexError(fmt::format("{}: index {} (position {}) is out of range for size {} ({})", op, p[i], i,
                                         size, what));
}

std::vector<std::size_t> as_sizes(const IndexArray& index) {
    return std::vector<std::size_t>(index.begin(), index.end());
}

// ---- index_select and its gradient, an index add ----

template <class T>
struct IndexAdd;

// y = x's entries `indices` along `axis`; `op` names it in errors and graphs (index_select or
// embedding).
template <class T>
struct IndexSelect final : Function<T> {
    IndexSelect(std::size_t axis, std::vector<std::size_t> indices, std::string_view op)
        : axis(axis), indices(std::move(indices)), op(op) {}
    std::string_view name() const override { return op; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        Shape shape = x.shape();
        shape[axis] = indices.size();
        shape_size(shape, op);
        Array<T> y = Array<T>::from_shape(shape);
        const AxisSplit s = split_at_axis(x.shape(), axis);
        const std::size_t n = indices.size();
        for (std::size_t o = 0; o < s.outer; ++o)
            for (std::size_t j = 0; j < n; ++j)
                std::copy_n(x.data() + (o * s.dim + indices[j]) * s.inner, s.inner, y.data() + (o * n + j) * s.inner);
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {apply<IndexAdd<T>>({gy}, this->input(0).shape(), axis, indices, op)};
    }
    std::size_t axis;
    std::vector<std::size_t> indices;
    std::string_view op;
};

// Zeros of `shape` with g's entries added at `indices` along `axis` (repeated indices add up).
template <class T>
struct IndexAdd final : Function<T> {
    IndexAdd(Shape shape, std::size_t axis, std::vector<std::size_t> indices, std::string_view op)
        : shape(std::move(shape)), axis(axis), indices(std::move(indices)), op(op) {}
    std::string_view name() const override { return "index_add"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> gx = full(shape, T(0));
        const AxisSplit s = split_at_axis(shape, axis);
        const std::size_t n = indices.size();
        const T* g = xs[0].data();
        for (std::size_t o = 0; o < s.outer; ++o)
            for (std::size_t j = 0; j < n; ++j) {
                T* dst = gx.data() + (o * s.dim + indices[j]) * s.inner;
                const T* src = g + (o * n + j) * s.inner;
                for (std::size_t i = 0; i < s.inner; ++i) dst[i] += src[i];
            }
        return gx;
    }
    std::vector<Variable<T>> backward(const Variable<T>& ggx) override {
        return {apply<IndexSelect<T>>({ggx}, axis, indices, op)};
    }
    Shape shape;
    std::size_t axis;
    std::vector<std::size_t> indices;
    std::string_view op;
};

// ---- gather and scatter_add ----

// Row-major strides of `shape`.
std::vector<std::size_t> strides_of(const Shape& shape) {
    std::vector<std::size_t> s(shape.size(), 0);
    for (std::size_t i = shape.size(), step = 1; i-- > 0; step *= shape[i]) s[i] = step;
    return s;
}

// Calls f(i, base, at) for each element i (row-major) of an index array of shape `index`:
// `base` is the offset in a row-major array of shape `target` of i's coordinates with the
// coordinate on `axis` zeroed (the index chooses it), `at` the offset of i's coordinates in a
// row-major array of shape `other` (src: at least index's size on every axis).
template <class F>
void for_each_index(const Shape& index, const Shape& target, const Shape& other, std::size_t axis, F&& f) {
    std::size_t n = 1;
    for (std::size_t d : index) n *= d;
    if (n == 0) return;
    std::vector<std::size_t> st = strides_of(target), so = strides_of(other);
    st[axis] = 0;
    std::vector<std::size_t> coord(index.size(), 0);
    std::size_t base = 0, at = 0;
    for (std::size_t i = 0; i < n; ++i) {
        f(i, base, at);
        for (std::size_t d = index.size(); d-- > 0;) {  // the odometer's next position
            base += st[d];
            at += so[d];
            if (++coord[d] < index[d]) break;
            base -= st[d] * coord[d];
            at -= so[d] * coord[d];
            coord[d] = 0;
        }
    }
}

template <class T>
struct Gather final : Function<T> {
    Gather(std::size_t axis, IndexArray index) : axis(axis), index(std::move(index)) {}
    std::string_view name() const override { return "gather"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        const Shape shape(index.shape().begin(), index.shape().end());
        Array<T> y = Array<T>::from_shape(shape);
        const std::size_t stride = strides_of(x.shape())[axis];
        const std::int64_t* idx = index.data();
        for_each_index(shape, x.shape(), shape, axis, [&](std::size_t i, std::size_t base, std::size_t) {
            y.data()[i] = x.data()[base + static_cast<std::size_t>(idx[i]) * stride];
        });
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> zeros(full(this->input(0).shape(), T(0)));
        return {scatter_add(zeros, static_cast<long>(axis), index, gy)};
    }
    std::size_t axis;
    IndexArray index;
};

// `v` with zeros appended along each axis where it is shorter than `shape`.
template <class T>
Variable<T> pad_with_zeros(Variable<T> v, const Shape& shape) {
    for (std::size_t d = 0; d < shape.size(); ++d) {
        if (v.shape()[d] == shape[d]) continue;
        Shape z = v.shape();
        z[d] = shape[d] - v.shape()[d];
        v = concatenate(std::vector<Variable<T>>{v, Variable<T>(full(z, T(0)))}, static_cast<long>(d));
    }
    return v;
}

template <class T>
struct ScatterAdd final : Function<T> {
    ScatterAdd(std::size_t axis, IndexArray index) : axis(axis), index(std::move(index)) {}
    std::string_view name() const override { return "scatter_add"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = xs[0];
        const Array<T>& src = xs[1];
        const Shape shape(index.shape().begin(), index.shape().end());
        const std::size_t stride = strides_of(y.shape())[axis];
        const std::int64_t* idx = index.data();
        for_each_index(shape, y.shape(), src.shape(), axis, [&](std::size_t i, std::size_t base, std::size_t at) {
            y.data()[base + static_cast<std::size_t>(idx[i]) * stride] += src.data()[at];
        });
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        Variable<T> gx, gsrc;
        if (this->needs_input_grad(0)) gx = gy;
        if (this->needs_input_grad(1))  // src's entries outside index's shape were not used: zeros
            gsrc = pad_with_zeros(gather(gy, static_cast<long>(axis), index), this->input(1).shape());
        return {gx, gsrc};
    }
    std::size_t axis;
    IndexArray index;
};

// torch's rules for gather's and scatter_add's index: x's (and src's) number of dimensions, at
// most src's size on every axis and x's on every axis but `axis`, entries in [0, x's size on axis).
void check_scatter_index(std::string_view op, const Shape& x, std::size_t axis, const IndexArray& index,
                         const Shape* src) {
    const Shape is(index.shape().begin(), index.shape().end());
    auto shapes = [&] {
        return src ? fmt::format("x of shape {}, index of shape {}, src of shape {}", shape_str(x), shape_str(is),
                                 shape_str(*src))
                   : fmt::format("x of shape {}, index of shape {}", shape_str(x), shape_str(is));
    };
    if (is.size() != x.size() || (src && src->size() != x.size()))
        throw ShapeError(fmt::format("{}: index must have as many dimensions as x{}: {}", op, src ? " and src" : "",
                                     shapes()));
    for (std::size_t d = 0; d < is.size(); ++d)
        if ((d != axis && is[d] > x[d]) || (src && is[d] > (*src)[d]))
            throw ShapeError(fmt::format("{}: index is larger than {} on axis {}: {}", op,
                                         d != axis && is[d] > x[d] ? "x" : "src", d, shapes()));
    check_indices(op, index, x[axis], fmt::format("axis {} of shape {}", axis, shape_str(x)));
}

}  // namespace

template <class T>
Variable<T> index_select(const Variable<T>& x, long axis, const IndexArray& indices) {
    require_defined(x, 0, "index_select");
    const std::size_t ax = normalize_axis(axis, x.ndim(), "index_select");
    if (indices.dimension() > 1)
        throw ShapeError(fmt::format("index_select: indices must be 1-D, got shape {} (x of shape {})",
                                     shape_str(indices.shape()), shape_str(x.shape())));
    check_indices("index_select", indices, x.shape()[ax], fmt::format("axis {} of shape {}", ax, shape_str(x.shape())));
    return apply<IndexSelect<T>>({x}, ax, as_sizes(indices), std::string_view("index_select"));
}

// index_select along axis 0 under its own name (declared with the shape ops).
template <class T>
Variable<T> rows(const Variable<T>& x, const std::vector<std::size_t>& indices) {
    require_defined(x, 0, "rows");
    if (x.ndim() == 0) throw ShapeError("rows: cannot select rows of a 0-d array");
    for (std::size_t i = 0; i < indices.size(); ++i)
        if (indices[i] >= x.shape()[0])
            throw IndexError(fmt::format("rows: index {} (position {}) is out of range for size {} (shape {})",
                                         indices[i], i, x.shape()[0], shape_str(x.shape())));
    return apply<IndexSelect<T>>({x}, std::size_t{0}, indices, std::string_view("rows"));
}

template <class T>
Variable<T> gather(const Variable<T>& x, long axis, const IndexArray& index) {
    require_defined(x, 0, "gather");
    const std::size_t ax = normalize_axis(axis, x.ndim(), "gather");
    check_scatter_index("gather", x.shape(), ax, index, nullptr);
    return apply<Gather<T>>({x}, ax, index);
}

template <class T>
Variable<T> scatter_add(const Variable<T>& x, long axis, const IndexArray& index, const Variable<T>& src) {
    require_defined(x, 0, "scatter_add");
    require_defined(src, 1, "scatter_add");
    const std::size_t ax = normalize_axis(axis, x.ndim(), "scatter_add");
    check_scatter_index("scatter_add", x.shape(), ax, index, &src.shape());
    return apply<ScatterAdd<T>>({x, src}, ax, index);
}

template <class T>
Variable<T> embedding(const Variable<T>& weight, const IndexArray& ids) {
    require_defined(weight, 0, "embedding");
    if (weight.ndim() != 2)
        throw ShapeError(fmt::format("embedding: weight must be 2-D (num, dim), got shape {} (ids of shape {})",
                                     shape_str(weight.shape()), shape_str(ids.shape())));
    check_indices("embedding", ids, weight.shape()[0],
                  fmt::format("{} embeddings, weight of shape {}", weight.shape()[0], shape_str(weight.shape())));
    const Variable<T> rows = apply<IndexSelect<T>>({weight}, std::size_t{0}, as_sizes(ids), std::string_view("embedding"));
    std::vector<long> shape(ids.shape().begin(), ids.shape().end());
    shape.push_back(static_cast<long>(weight.shape()[1]));
    return reshape(rows, shape);
}

XG_INSTANTIATE_OP(index_select)
XG_INSTANTIATE_OP(rows)
XG_INSTANTIATE_OP(gather)
XG_INSTANTIATE_OP(scatter_add)
XG_INSTANTIATE_OP(embedding)

}  // namespace xg
