// Softmax, log-softmax and the losses. All subtract the row maximum before exponentiating.
#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "ops/instantiate.hpp"
#include "ops/ops.hpp"
#include "ops/vector_math.hpp"

namespace xg {
namespace {

// The softmax family works on lanes: the elements along `axis`, one lane per position of the
// other axes. With the array split as (outer, dim, inner) around the axis, lane (o, i) starts at
// o*dim*inner + i with stride `inner` (for the last axis each lane is a contiguous row). Plain
// loops: xtensor's keep-dims reductions and broadcasts cost more than the arithmetic here.
// f(offset, stride) for each lane.
template <class F>
void for_each_lane(const AxisSplit& l, F&& f) {
    for (std::size_t o = 0; o < l.outer; ++o)
        for (std::size_t i = 0; i < l.inner; ++i) f(o * l.dim * l.inner + i, l.inner);
}

// For one lane of x: its maximum m, and the sum of e = exp(x - m), written to e: the shift keeps
// exp() from overflowing, and the caller normalises by the sum, which is at least 1. A contiguous
// lane (the last axis: a classifier's logits) runs ops/vector_math's row loops, in SIMD batches of
// the widest instruction set the CPU has, as attention's softmax does: libm's scalar exp cost as
// much as the rest of the loss, and one chain of dependent additions a quarter of it.
template <class T>
struct ShiftedExp {
    T max, sum;
};

template <class T>
ShiftedExp<T> exp_shifted(const T* x, T* e, std::size_t dim, std::size_t stride) {
    if (stride == 1) {
        const T m = vmath::row_max(x, dim);
        std::copy_n(x, dim, e);
        return {m, vmath::exp_shifted_sum(e, m, dim)};
    }
    T m = x[0];
    for (std::size_t d = 1; d < dim; ++d) m = std::max(m, x[d * stride]);
    T z = 0;
    for (std::size_t d = 0; d < dim; ++d) z += e[d * stride] = std::exp(x[d * stride] - m);
    return {m, z};
}

template <class T>
struct Softmax final : Function<T> {
    explicit Softmax(std::size_t axis) : axis(axis) {}
    std::string_view name() const override { return "softmax"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        if (y.size() == 0) return y;
        const std::size_t dim = xs[0].shape()[axis];
        for_each_lane(split_at_axis(y.shape(), axis), [&](std::size_t at, std::size_t stride) {
            T* e = y.data() + at;
            const T z = exp_shifted(xs[0].data() + at, e, dim, stride).sum;
            for (std::size_t d = 0; d < dim; ++d) e[d * stride] /= z;
        });
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        const Variable<T> yg = y * gy;
        return {yg - y * sum(yg, static_cast<long>(axis), true)};
    }
    std::size_t axis;
};

template <class T>
struct LogSoftmax final : Function<T> {
    explicit LogSoftmax(std::size_t axis) : axis(axis) {}
    std::string_view name() const override { return "log_softmax"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        if (y.size() == 0) return y;
        const std::size_t dim = xs[0].shape()[axis];
        for_each_lane(split_at_axis(y.shape(), axis), [&](std::size_t at, std::size_t stride) {
            const T* x = xs[0].data() + at;
            T* s = y.data() + at;
            const auto [m, z] = exp_shifted(x, s, dim, stride);
            const T log_z = std::log(z);
            for (std::size_t d = 0; d < dim; ++d) s[d * stride] = (x[d * stride] - m) - log_z;
        });
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {gy - exp(this->output()) * sum(gy, static_cast<long>(axis), true)};
    }
    std::size_t axis;
};

// Cross entropy of softmax(x) against a target distribution per row: loss_i = -sum_j t_ij log
// softmax(x)_ij, for logits (N, C) and integer labels (`labels`, one per row) or a target (N, C)
// given as the second input (soft targets). With labels no one-hot array is made: the loss is
// -log softmax(x)[label] and the gradient (softmax(x) - onehot) * w is written in one pass, with
// the one-hot route's bits (every term of the one-hot sum but one is zero).
template <class T>
struct SoftmaxCrossEntropy final : Function<T> {
    SoftmaxCrossEntropy(std::vector<std::size_t> labels, Reduction reduction)
        : labels(std::move(labels)), reduction(reduction) {}
    std::string_view name() const override { return "softmax_cross_entropy"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const bool soft = xs.size() == 2;
        const std::size_t n = xs[0].shape()[0], c = xs[0].shape()[1];
        Array<T> logp = soft ? Array<T>::from_shape(xs[0].shape()) : Array<T>();
        probs = Array<T>::from_shape(xs[0].shape());  // kept for backward
        Array<T> loss = Array<T>::from_shape({n});
        for (std::size_t i = 0; i < n; ++i) {
            const T* x = xs[0].data() + i * c;
            T* p = probs.data() + i * c;
            const auto [m, z] = exp_shifted(x, p, c, 1);
            const T log_z = std::log(z);
            for (std::size_t j = 0; j < c; ++j) p[j] /= z;  // separate loops: they vectorise
            if (!soft) {
                loss(i) = -((x[labels[i]] - m) - log_z);
                continue;
            }
            const T* ti = xs[1].data() + i * c;
            T* lp = logp.data() + i * c;
            for (std::size_t j = 0; j < c; ++j) lp[j] = (x[j] - m) - log_z;
            // -sum_j t_j lp_j in four running sums, not one chain of dependent additions.
            T l4[4] = {0, 0, 0, 0};
            std::size_t j = 0;
            for (; j + 4 <= c; j += 4)
                for (std::size_t k = 0; k < 4; ++k) l4[k] += ti[j + k] * lp[j + k];
            for (; j < c; ++j) l4[0] += ti[j] * lp[j];
            loss(i) = -((l4[0] + l4[1]) + (l4[2] + l4[3]));
        }
        if (soft) log_probs = std::move(logp);
        T total = 0;
        for (std::size_t i = 0; i < n; ++i) total += loss(i);
        switch (reduction) {
            case Reduction::mean: return Array<T>(total / static_cast<T>(n));
            case Reduction::sum: return Array<T>(total);
            case Reduction::none: return loss;
        }
        return loss;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& x = this->input(0);
        const std::size_t n = x.shape()[0];
        // Per-row weight of the output gradient, shaped (N, 1) or () to broadcast over classes.
        Variable<T> w = reduction == Reduction::none ? reshape(gy, {static_cast<long>(n), 1})
                        : reduction == Reduction::mean ? gy * (T(1) / static_cast<T>(n))
                                                       : gy;
        const bool soft = this->inputs().size() == 2;
        if (!soft && !recording_backward()) return {labels_grad(w.data())};
        const Variable<T> t = soft ? this->input(1) : Variable<T>(onehot());
        // Recorded (create_graph): softmax as an op, so the gradient is differentiable again.
        const Variable<T> p = recording_backward() ? softmax(x, 1) : Variable<T>(probs);
        // d/dx of -sum_j t_j log softmax(x)_j is softmax(x) * sum_j t_j - t: (p - t) only when each
        // target row sums to 1 (labels, one-hot); soft targets need not.
        Variable<T> gx;
        if (this->needs_input_grad(0)) gx = (soft ? p * sum(t, 1, true) - t : p - t) * w;
        if (!soft) return {gx};
        Variable<T> gt;
        if (this->needs_input_grad(1)) gt = neg((recording_backward() ? log_softmax(x, 1) : Variable<T>(log_probs)) * w);
        return {gx, gt};
    }
    // (probs - onehot) * w in one pass: w is one weight, or one per row.
    Variable<T> labels_grad(const Array<T>& w) const {
        const std::size_t n = probs.shape()[0], c = probs.shape()[1];
        Array<T> gx = Array<T>::from_shape(probs.shape());
        for (std::size_t i = 0; i < n; ++i) {
            const T wi = w.size() == 1 ? w.data()[0] : w.data()[i];
            const T* p = probs.data() + i * c;
            T* g = gx.data() + i * c;
            for (std::size_t j = 0; j < c; ++j) g[j] = p[j] * wi;
            g[labels[i]] = (p[labels[i]] - T(1)) * wi;
        }
        return Variable<T>(std::move(gx));
    }
    Array<T> onehot() const {
        Array<T> t = full<T>({labels.size(), this->input(0).shape()[1]}, T(0));
        for (std::size_t i = 0; i < labels.size(); ++i) t(i, labels[i]) = T(1);
        return t;
    }
    void release_saved() override {
        probs = {};
        log_probs = {};
        labels = {};
    }
    std::vector<std::size_t> labels;  // when the target is not an input
    Reduction reduction;
    Array<T> probs, log_probs;
};

template <class T>
void check_logits(const Variable<T>& x, std::size_t rows_expected, std::string_view what) {
    if (x.ndim() != 2)
        throw ShapeError(fmt::format("softmax_cross_entropy: logits must be 2-D (N, C), got shape {}",
                                     shape_str(x.shape())));
    if (x.shape()[0] == 0 || x.shape()[1] == 0)
        throw ShapeError(fmt::format("softmax_cross_entropy: empty batch, logits of shape {}", shape_str(x.shape())));
    if (rows_expected != x.shape()[0])
        throw ShapeError(fmt::format("softmax_cross_entropy: logits of shape {} but {} {}", shape_str(x.shape()),
                                     rows_expected, what));
}

}  // namespace

template <class T>
Variable<T> softmax(const Variable<T>& x, long axis) {
    return apply<Softmax<T>>({x}, normalize_axis(axis, x.ndim(), "softmax"));
}

template <class T>
Variable<T> log_softmax(const Variable<T>& x, long axis) {
    return apply<LogSoftmax<T>>({x}, normalize_axis(axis, x.ndim(), "log_softmax"));
}

template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& x, const Labels& labels, Reduction r) {
    check_logits(x, labels.size(), "labels");
    const std::size_t n = x.shape()[0], c = x.shape()[1];
    std::vector<std::size_t> rows(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t t = labels(i);
        if (t < 0 || static_cast<std::size_t>(t) >= c)
            throw IndexError(fmt::format("softmax_cross_entropy: label {} at row {} is outside [0, {})", t, i, c));
        rows[i] = static_cast<std::size_t>(t);
    }
    return apply<SoftmaxCrossEntropy<T>>({x}, std::move(rows), r);
}

template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& x, const Variable<T>& onehot, Reduction r) {
    check_logits(x, x.ndim() == 2 ? x.shape()[0] : 0, "target rows");
    if (onehot.shape() != x.shape())
        throw ShapeError(fmt::format("softmax_cross_entropy: logits of shape {} but target of shape {}",
                                     shape_str(x.shape()), shape_str(onehot.shape())));
    return apply<SoftmaxCrossEntropy<T>>({x, onehot}, std::vector<std::size_t>(), r);
}

template <class T>
Variable<T> mean_squared_error(const Variable<T>& a, const Variable<T>& b) {
    if (a.shape() != b.shape())
        throw ShapeError(fmt::format("mean_squared_error: shapes {} and {} differ", shape_str(a.shape()),
                                     shape_str(b.shape())));
    const Variable<T> d = a - b;
    return mean(d * d);
}

XG_INSTANTIATE_OP(softmax)
XG_INSTANTIATE_OP(log_softmax)
XG_INSTANTIATE_OP(mean_squared_error)

// Overloaded names: the signature is needed to say which one.
#define XG_INSTANTIATE(T)                                                                     \
    template Variable<T> softmax_cross_entropy(const Variable<T>&, const Labels&, Reduction); \
    template Variable<T> softmax_cross_entropy(const Variable<T>&, const Variable<T>&, Reduction);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
