#include "dist/sync_batch_norm.hpp"

#include <limits>

#include <fmt/format.h>
#include <mpi.h>

#include "dist/mpi_check.hpp"
#include "graph/function.hpp"
#include "graph/shape_text.hpp"
#include "ops/ops.hpp"

namespace xg::dist {
namespace {

template <class T>
class AllReduceSum final : public Function<T> {
public:
    explicit AllReduceSum(const Context& ctx) : ctx_(ctx) {}
    std::string_view name() const override { return "all_reduce_sum"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = xs[0];
        if (ctx_.world_size() == 1) return y;
        // Different shapes on different ranks would reduce garbage: compare the sizes first.
        double size[2] = {static_cast<double>(y.size()), -static_cast<double>(y.size())};
        ctx_.all_reduce_max(size);
        if (size[0] != -size[1])
            throw DistError(fmt::format("all_reduce_sum: the ranks pass different sizes (from {} to {}; shape {} "
                                        "on {})",
                                        -size[1], size[0], shape_str(y.shape()), ctx_.where()));
        if (y.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
            throw DistError(fmt::format("all_reduce_sum: {} elements is more than MPI's int count", y.size()));
        detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, y.data(), static_cast<int>(y.size()),
                                        sizeof(T) == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                          "MPI_Allreduce (all_reduce_sum)");
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {all_reduce_sum(ctx_, gy)}; }

private:
    const Context& ctx_;
};

}  // namespace

template <class T>
Variable<T> all_reduce_sum(const Context& ctx, const Variable<T>& x) {
    return apply(std::make_shared<AllReduceSum<T>>(ctx), {x});
}

template <class T>
SyncBatchNorm1d<T>::SyncBatchNorm1d(const Context& ctx, std::size_t features, nn::BatchNormOptions options)
    : nn::BatchNorm1d<T>(features, options), ctx_(ctx), features_(features), options_(options) {}

// Normalises x in training with the global batch's statistics over `axes` (kept as size-1 axes for
// images), all-reduced over the ranks, and moves the running statistics toward them (biased
// variance, BatchNorm1d's and BatchNorm2d's rule). `values_per_row` is how many values of a
// channel one row of x holds (1, or H * W).
template <class T>
Variable<T> sync_normalise(const Context& ctx, const Variable<T>& x, std::initializer_list<long> axes, bool keepdims,
                           double values_per_row, const Variable<T>& gamma, const Variable<T>& beta,
                           const Variable<T>& running_mean, const Variable<T>& running_var,
                           const nn::BatchNormOptions& options, const std::string& layer) {
    const double count = ctx.all_reduce_sum(static_cast<double>(x.shape()[0]) * values_per_row);
    if (count < 2)
        throw ValueError(fmt::format("{}: training needs more than one value per feature in the global batch, got {}",
                                     layer, count));
    const T n = static_cast<T>(count);
    const Variable<T> mu = all_reduce_sum(ctx, sum(x, axes, keepdims)) / n;
    const Variable<T> centred = x - mu;
    const Variable<T> var = all_reduce_sum(ctx, sum(centred * centred, axes, keepdims)) / n;
    const Variable<T> y = centred / sqrt(var + static_cast<T>(options.eps)) * gamma + beta;
    nn::update_running_statistics(running_mean, running_var, mu.data().data(), var.data().data(), options.momentum);
    return y;
}

template <class T>
Variable<T> SyncBatchNorm1d<T>::forward(const Variable<T>& x) {
    if (!this->is_training() || ctx_.world_size() == 1) return nn::BatchNorm1d<T>::forward(x);
    if (!x.defined()) throw GraphError(fmt::format("SyncBatchNorm1d: the input is an undefined Variable on {}", ctx_.where()));
    if ((x.ndim() != 2 && x.ndim() != 3) || x.shape()[1] != features_)
        throw ShapeError(fmt::format("SyncBatchNorm1d: expects input of shape (N, {0}) or (N, {0}, L), got {1} on {2}",
                                     features_, shape_str(x.shape()), ctx_.where()));
    if (x.ndim() == 2)
        return sync_normalise(ctx_, x, {0}, false, 1.0, this->gamma(), this->beta(), this->running_mean(),
                              this->running_var(), options_, "SyncBatchNorm1d");
    const long features = static_cast<long>(features_);
    return sync_normalise(ctx_, x, {0, 2}, true, static_cast<double>(x.shape()[2]), reshape(this->gamma(), {1, features, 1}),
                          reshape(this->beta(), {1, features, 1}), this->running_mean(), this->running_var(), options_,
                          "SyncBatchNorm1d");
}

template <class T>
std::string SyncBatchNorm1d<T>::repr() const {
    return fmt::format("SyncBatchNorm1d({}, eps={}, momentum={})", features_, options_.eps, options_.momentum);
}

template <class T>
SyncBatchNorm2d<T>::SyncBatchNorm2d(const Context& ctx, std::size_t channels, nn::BatchNormOptions options)
    : nn::BatchNorm2d<T>(channels, options), ctx_(ctx), options_(options) {}

template <class T>
Variable<T> SyncBatchNorm2d<T>::forward(const Variable<T>& x) {
    if (!this->is_training() || ctx_.world_size() == 1) return nn::BatchNorm2d<T>::forward(x);
    const std::size_t c = this->channels();
    if (x.ndim() != 4 || x.shape()[1] != c)
        throw ShapeError(fmt::format("SyncBatchNorm2d: expects input of shape (N, {}, H, W), got {} on {}", c,
                                     shape_str(x.shape()), ctx_.where()));
    const long channels = static_cast<long>(c);
    return sync_normalise(ctx_, x, {0, 2, 3}, true, static_cast<double>(x.shape()[2] * x.shape()[3]),
                          reshape(this->gamma(), {1, channels, 1, 1}), reshape(this->beta(), {1, channels, 1, 1}),
                          this->running_mean(), this->running_var(), options_, "SyncBatchNorm2d");
}

template <class T>
std::string SyncBatchNorm2d<T>::repr() const {
    return fmt::format("SyncBatchNorm2d({}, eps={}, momentum={})", this->channels(), options_.eps, options_.momentum);
}

template Variable<float> all_reduce_sum(const Context&, const Variable<float>&);
template Variable<double> all_reduce_sum(const Context&, const Variable<double>&);
template class SyncBatchNorm1d<float>;
template class SyncBatchNorm1d<double>;
template class SyncBatchNorm2d<float>;
template class SyncBatchNorm2d<double>;

}  // namespace xg::dist
