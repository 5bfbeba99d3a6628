// Softmax, log-softmax and the losses. All subtract the row maximum before exponentiating.
#include <fmt/format.h>
#include <xtensor/xmath.hpp>
#include <xtensor/xreducer.hpp>

#include "ops/ops.hpp"

namespace xg {
namespace {

// x - max(x) along `axis` (kept), the shift that keeps exp() from overflowing.
// Reductions are evaluated into arrays before use: a lazy reducer inside a larger expression
// would be recomputed for every element. (xtensor 0.24's immediate strategy is avoided: it
// crashes with keep_dims.)
template <class T>
Array<T> sum_keep(const Array<T>& x, std::size_t axis) {
    return xt::sum(x, {axis}, xt::keep_dims);
}

template <class T>
Array<T> shifted(const Array<T>& x, std::size_t axis) {
    const Array<T> m = xt::amax(x, {axis}, xt::keep_dims);
    return x - m;
}

template <class T>
struct Softmax final : Function<T> {
    explicit Softmax(std::size_t axis) : axis(axis) {}
    std::string_view name() const override { return "softmax"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> e = xt::exp(shifted(xs[0], axis));
        e /= sum_keep(e, axis);
        return e;
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
        Array<T> s = shifted(xs[0], axis);
        const Array<T> e = xt::exp(s);
        s -= xt::log(sum_keep(e, axis));
        return s;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {gy - exp(this->output()) * sum(gy, static_cast<long>(axis), true)};
    }
    std::size_t axis;
};

// Cross entropy of softmax(x) against a target distribution per row (one-hot for labels):
// loss_i = -sum_j t_ij log softmax(x)_ij. Inputs: x, and the target when it is a Variable.
template <class T>
struct SoftmaxCrossEntropy final : Function<T> {
    SoftmaxCrossEntropy(Array<T> target, Reduction reduction) : target(std::move(target)), reduction(reduction) {}
    std::string_view name() const override { return "softmax_cross_entropy"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& t = xs.size() == 2 ? xs[1] : target;
        Array<T> logp = shifted(xs[0], 1);
        probs = xt::exp(logp);  // kept for backward
        const Array<T> z = sum_keep(probs, 1);
        probs /= z;
        logp -= xt::log(z);
        Array<T> loss = xt::sum(t * logp, {1});
        loss = -loss;
        if (xs.size() == 2) log_probs = std::move(logp);
        const auto n = static_cast<T>(xs[0].shape()[0]);
        switch (reduction) {
            case Reduction::mean: return Array<T>(xt::sum(loss)() / n);
            case Reduction::sum: return Array<T>(xt::sum(loss)());
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
        const Variable<T> t = soft ? this->input(1) : Variable<T>(target);
        // Recorded (create_graph): softmax as an op, so the gradient is differentiable again.
        const Variable<T> p = grad_enabled() ? softmax(x, 1) : Variable<T>(probs);
        Variable<T> gx = (p - t) * w;
        if (!soft) return {gx};
        Variable<T> gt;
        if (this->needs_input_grad(1)) gt = neg((grad_enabled() ? log_softmax(x, 1) : Variable<T>(log_probs)) * w);
        return {gx, gt};
    }
    void release_saved() override {
        probs = {};
        log_probs = {};
        target = {};
    }
    Array<T> target;  // one-hot of integer labels; unused when the target is an input
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
    Array<T> onehot = xt::zeros<T>({n, c});
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t t = labels(i);
        if (t < 0 || static_cast<std::size_t>(t) >= c)
            throw ValueError(fmt::format("softmax_cross_entropy: label {} at row {} is outside [0, {})", t, i, c));
        onehot(i, static_cast<std::size_t>(t)) = T(1);
    }
    return apply<SoftmaxCrossEntropy<T>>({x}, std::move(onehot), r);
}

template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& x, const Variable<T>& onehot, Reduction r) {
    check_logits(x, x.ndim() == 2 ? x.shape()[0] : 0, "target rows");
    if (onehot.shape() != x.shape())
        throw ShapeError(fmt::format("softmax_cross_entropy: logits of shape {} but target of shape {}",
                                     shape_str(x.shape()), shape_str(onehot.shape())));
    return apply<SoftmaxCrossEntropy<T>>({x, onehot}, Array<T>(), r);
}

template <class T>
Variable<T> mean_squared_error(const Variable<T>& a, const Variable<T>& b) {
    if (a.shape() != b.shape())
        throw ShapeError(fmt::format("mean_squared_error: shapes {} and {} differ", shape_str(a.shape()),
                                     shape_str(b.shape())));
    const Variable<T> d = a - b;
    return mean(d * d);
}

#define XG_INSTANTIATE(T)                                                                           \
    template Variable<T> softmax(const Variable<T>&, long);                                         \
    template Variable<T> log_softmax(const Variable<T>&, long);                                     \
    template Variable<T> softmax_cross_entropy(const Variable<T>&, const Labels&, Reduction);       \
    template Variable<T> softmax_cross_entropy(const Variable<T>&, const Variable<T>&, Reduction);  \
    template Variable<T> mean_squared_error(const Variable<T>&, const Variable<T>&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
