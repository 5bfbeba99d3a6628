// Normalisation: layer_norm and batch_norm as fused ops. Each row of layer_norm (the block of the
// normalised axes, flattened) and each channel of batch_norm is normalised by ops/vector_math's
// loops (AVX2 or AVX-512 where the CPU has them), which keep the row or the channel's strip in
// cache: two passes for the mean and the variance (the variance from the centred values: no
// cancellation for large magnitudes), one to write the output. Backward uses the closed formula,
// or the same formula made of ops when the backward pass is recorded (create_graph).
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "ops/instantiate.hpp"
#include "ops/ops.hpp"
#include "ops/vector_math.hpp"

namespace xg {
namespace {

// What layer_norm and batch_norm share: inputs {x}, {x, gamma}, {x, beta} or {x, gamma, beta}, and
// the gradients of an empty x.
template <class T>
struct AffineNorm : Function<T> {
    AffineNorm(bool has_gamma, bool has_beta) : has_gamma(has_gamma), has_beta(has_beta) {}

    static constexpr std::size_t gi = 1;                  // gamma's input position
    std::size_t bi() const { return has_gamma ? 2 : 1; }  // beta's
    const T* gamma_of(const ArrayRefs<T>& xs) const { return has_gamma ? xs[gi].data() : nullptr; }
    const T* beta_of(const ArrayRefs<T>& xs) const { return has_beta ? xs[bi()].data() : nullptr; }
    const T* gamma_data() { return has_gamma ? this->input(gi).data().data() : nullptr; }

    // Which gradients backward must return.
    struct Wanted {
        bool x, gamma, beta;
    };
    Wanted wanted() {
        return {this->needs_input_grad(0), has_gamma && this->needs_input_grad(gi),
                has_beta && this->needs_input_grad(bi())};
    }
    // For an empty x nothing flows: zeros of each wanted input's shape (gamma and beta included).
    std::vector<Variable<T>> zero_grads(const Wanted& w) {
        std::vector<Variable<T>> grads(this->inputs().size());
        const bool want[] = {w.x, w.gamma, w.beta};
        const std::size_t at[] = {0, gi, bi()};
        for (int i = 0; i < 3; ++i)
            if (want[i]) grads[at[i]] = Variable<T>(full<T>(this->input(at[i]).shape(), T(0)));
        return grads;
    }

    bool has_gamma, has_beta;
};

template <class T>
struct LayerNorm final : AffineNorm<T> {
    // rows blocks of n elements
    LayerNorm(std::size_t rows, std::size_t n, std::size_t axes, bool has_gamma, bool has_beta, T eps)
        : AffineNorm<T>(has_gamma, has_beta), rows(rows), n(n), axes(axes), eps(eps) {}
    std::string_view name() const override { return "layer_norm"; }

    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        const T* gamma = this->gamma_of(xs);
        const T* beta = this->beta_of(xs);
        Array<T> y = Array<T>::from_shape(x.shape());
        row_mean = Array<T>::from_shape({rows});
        row_rstd = Array<T>::from_shape({rows});
        if (n == 0) return y;
        vmath::layer_norm_rows(x.data(), y.data(), rows, n, gamma, beta, eps, row_mean.data(), row_rstd.data());
        return y;
    }

    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const auto want = this->wanted();
        if (rows * n == 0) return this->zero_grads(want);
        if (recording_backward()) return recorded_backward(gy, want);

        const Array<T>& x = this->input(0).data();
        const Array<T>& g = gy.data();
        Array<T> gx = want.x ? Array<T>::from_shape(x.shape()) : Array<T>();
        const bool acc = want.gamma || want.beta;
        const Shape block(x.shape().end() - static_cast<std::ptrdiff_t>(axes), x.shape().end());
        Array<T> ggamma = acc ? full<T>(block, T(0)) : Array<T>();
        Array<T> gbeta = acc ? full<T>(block, T(0)) : Array<T>();
        vmath::layer_norm_rows_backward(x.data(), g.data(), want.x ? gx.data() : nullptr, rows, n, row_mean.data(),
                                        row_rstd.data(), this->gamma_data(), acc ? ggamma.data() : nullptr,
                                        acc ? gbeta.data() : nullptr);
        std::vector<Variable<T>> grads(this->inputs().size());
        if (want.x) grads[0] = Variable<T>(std::move(gx));
        if (want.gamma) grads[this->gi] = Variable<T>(std::move(ggamma));
        if (want.beta) grads[this->bi()] = Variable<T>(std::move(gbeta));
        return grads;
    }

    // The same formula made of ops, mean and rstd recomputed from x, so the gradients are
    // differentiable again.
    std::vector<Variable<T>> recorded_backward(const Variable<T>& gy, const typename AffineNorm<T>::Wanted& want) {
        const std::size_t gi = this->gi, bi = this->bi();
        const Variable<T>& x = this->input(0);
        const long nd = static_cast<long>(x.ndim());
        std::vector<long> block, lead;  // the normalised axes, the others
        for (long a = 0; a < nd; ++a) (a < nd - static_cast<long>(axes) ? lead : block).push_back(a);
        const Variable<T> centred = x - mean(x, block, true);
        const Variable<T> r = rsqrt(mean(centred * centred, block, true) + eps);
        const Variable<T> xhat = centred * r;
        // Summed over the leading axes down to normalized_shape (none to sum when x is one block).
        auto column_sum = [&](const Variable<T>& v) { return lead.empty() ? v : sum(v, lead); };
        std::vector<Variable<T>> grads(this->inputs().size());
        if (want.x) {
            const Variable<T> g = this->has_gamma ? gy * this->input(gi) : gy;
            grads[0] = (g - mean(g, block, true) - xhat * mean(g * xhat, block, true)) * r;
        }
        if (want.gamma) grads[gi] = column_sum(gy * xhat);
        if (want.beta) grads[bi] = column_sum(gy);
        return grads;
    }

    void release_saved() override {
        row_mean = {};
        row_rstd = {};
    }

    std::size_t rows, n, axes;
    T eps;
    Array<T> row_mean, row_rstd;  // per row, kept by forward for backward
};

// batch_norm in training: x (N, C, *) seen as (outer N, C channels, inner = the product of *).
template <class T>
struct BatchNorm final : AffineNorm<T> {
    BatchNorm(std::size_t outer, std::size_t channels, std::size_t inner, bool has_gamma, bool has_beta, T eps,
              BatchStatistics<T>* statistics)
        : AffineNorm<T>(has_gamma, has_beta), outer(outer), channels(channels), inner(inner), eps(eps),
          statistics(statistics) {}
    std::string_view name() const override { return "batch_norm"; }

    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        const T* gamma = this->gamma_of(xs);
        const T* beta = this->beta_of(xs);
        Array<T> y = Array<T>::from_shape(x.shape());
        Array<T> var = full<T>({channels}, std::numeric_limits<T>::quiet_NaN());  // of no values: NaN
        mean = full<T>({channels}, std::numeric_limits<T>::quiet_NaN());
        rstd = full<T>({channels}, std::numeric_limits<T>::quiet_NaN());
        if (outer * inner > 0)
            vmath::batch_norm(x.data(), y.data(), outer, channels, inner, gamma, beta, eps, mean.data(), var.data(),
                              rstd.data());
        if (statistics) *statistics = {mean, std::move(var)};
        statistics = nullptr;  // the caller's, valid during this call only
        return y;
    }

    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const auto want = this->wanted();
        if (outer * inner * channels == 0) return this->zero_grads(want);
        if (recording_backward()) return recorded_backward(gy, want);

        const Array<T>& x = this->input(0).data();
        Array<T> gx = want.x ? Array<T>::from_shape(x.shape()) : Array<T>();
        Array<T> sum_g = Array<T>::from_shape({channels}), sum_gd = Array<T>::from_shape({channels});
        vmath::batch_norm_backward(x.data(), gy.data().data(), want.x ? gx.data() : nullptr, outer, channels, inner,
                                   mean.data(), rstd.data(), this->gamma_data(), sum_g.data(), sum_gd.data());
        std::vector<Variable<T>> grads(this->inputs().size());
        if (want.x) grads[0] = Variable<T>(std::move(gx));
        if (want.gamma) {  // the sum of gy * xhat = rstd * the sum of gy * (x - mean)
            for (std::size_t c = 0; c < channels; ++c) sum_gd.data()[c] *= rstd.data()[c];
            grads[this->gi] = Variable<T>(std::move(sum_gd));
        }
        if (want.beta) grads[this->bi()] = Variable<T>(std::move(sum_g));
        return grads;
    }

    // The same formula made of ops, the statistics recomputed from x, so the gradients are
    // differentiable again.
    std::vector<Variable<T>> recorded_backward(const Variable<T>& gy, const typename AffineNorm<T>::Wanted& want) {
        const Variable<T>& x = this->input(0);
        std::vector<long> axes{0}, channel_shape{1, static_cast<long>(channels)};
        for (std::size_t a = 2; a < x.ndim(); ++a) {
            axes.push_back(static_cast<long>(a));
            channel_shape.push_back(1);
        }
        const Variable<T> centred = x - mean_of(x, axes);
        const Variable<T> r = rsqrt(mean_of(centred * centred, axes) + eps);
        const Variable<T> xhat = centred * r;
        std::vector<Variable<T>> grads(this->inputs().size());
        if (want.x) {
            const Variable<T> g = this->has_gamma ? gy * reshape(this->input(this->gi), channel_shape) : gy;
            grads[0] = (g - mean_of(g, axes) - xhat * mean_of(g * xhat, axes)) * r;
        }
        if (want.gamma) grads[this->gi] = sum(gy * xhat, axes);
        if (want.beta) grads[this->bi()] = sum(gy, axes);
        return grads;
    }
    static Variable<T> mean_of(const Variable<T>& v, const std::vector<long>& axes) { return xg::mean(v, axes, true); }

    void release_saved() override {
        mean = {};
        rstd = {};
    }

    std::size_t outer, channels, inner;
    T eps;
    BatchStatistics<T>* statistics;
    Array<T> mean, rstd;  // per channel, kept by forward for backward
};

}  // namespace

template <class T>
Variable<T> layer_norm(const Variable<T>& x, const Shape& normalized_shape, const Variable<T>& gamma,
                       const Variable<T>& beta, Scalar<T> eps) {
    const std::size_t k = normalized_shape.size();
    if (k == 0)
        throw ShapeError(fmt::format("layer_norm: normalized_shape is empty (it needs at least one axis), x of shape {}",
                                     shape_str(x.shape())));
    const Shape& s = x.shape();
    const auto trailing = s.end() - static_cast<std::ptrdiff_t>(std::min(k, s.size()));
    if (s.size() < k || !std::equal(normalized_shape.begin(), normalized_shape.end(), trailing))
        throw ShapeError(fmt::format("layer_norm: normalized_shape {} does not match the last {} axes of x of shape {}",
                                     shape_str(normalized_shape), k, shape_str(s)));
    if (gamma.defined() && gamma.shape() != normalized_shape)
        throw ShapeError(fmt::format("layer_norm: gamma of shape {} for normalized_shape {}", shape_str(gamma.shape()),
                                     shape_str(normalized_shape)));
    if (beta.defined() && beta.shape() != normalized_shape)
        throw ShapeError(fmt::format("layer_norm: beta of shape {} for normalized_shape {}", shape_str(beta.shape()),
                                     shape_str(normalized_shape)));
    if (!(eps > T(0)) || !std::isfinite(eps))
        throw ValueError(fmt::format("layer_norm: eps must be positive and finite, got {}", eps));
    std::size_t rows = 1, n = 1;
    for (std::size_t i = 0; i < s.size(); ++i) (i + k < s.size() ? rows : n) *= s[i];
    std::vector<Variable<T>> inputs{x};
    if (gamma.defined()) inputs.push_back(gamma);
    if (beta.defined()) inputs.push_back(beta);
    return apply<LayerNorm<T>>(std::move(inputs), rows, n, k, gamma.defined(), beta.defined(), eps);
}

XG_INSTANTIATE_OP(layer_norm)

template <class T>
Variable<T> batch_norm(const Variable<T>& x, const Variable<T>& gamma, const Variable<T>& beta, Scalar<T> eps,
                       BatchStatistics<T>* statistics) {
    const Shape& s = x.shape();
    if (s.size() < 2)
        throw ShapeError(fmt::format("batch_norm: x must have shape (N, C, ...), got {}", shape_str(s)));
    const std::size_t channels = s[1];
    const Shape channel_shape{channels};
    if (gamma.defined() && gamma.shape() != channel_shape)
        throw ShapeError(fmt::format("batch_norm: gamma of shape {} for x of shape {} (C = {})",
                                     shape_str(gamma.shape()), shape_str(s), channels));
    if (beta.defined() && beta.shape() != channel_shape)
        throw ShapeError(fmt::format("batch_norm: beta of shape {} for x of shape {} (C = {})",
                                     shape_str(beta.shape()), shape_str(s), channels));
    if (!(eps > T(0)) || !std::isfinite(eps))
        throw ValueError(fmt::format("batch_norm: eps must be positive and finite, got {}", eps));
    std::size_t inner = 1;
    for (std::size_t i = 2; i < s.size(); ++i) inner *= s[i];
    if (channels > 0 && s[0] * inner == 1)
        throw ValueError(fmt::format("batch_norm: training needs more than one value per channel, got x of shape {}",
                                     shape_str(s)));
    std::vector<Variable<T>> inputs{x};
    if (gamma.defined()) inputs.push_back(gamma);
    if (beta.defined()) inputs.push_back(beta);
    return apply<BatchNorm<T>>(std::move(inputs), s[0], channels, inner, gamma.defined(), beta.defined(), eps,
                               statistics);
}

XG_INSTANTIATE_OP(batch_norm)

}  // namespace xg
