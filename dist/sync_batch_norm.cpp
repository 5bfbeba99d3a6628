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

template <class T>
Variable<T> SyncBatchNorm1d<T>::forward(const Variable<T>& x) {
    if (!this->is_training() || ctx_.world_size() == 1) return nn::BatchNorm1d<T>::forward(x);
    if (x.ndim() != 2 || x.shape()[1] != features_)
        throw ShapeError(fmt::format("SyncBatchNorm1d: expects input of shape (N, {}), got {} on {}", features_,
                                     shape_str(x.shape()), ctx_.where()));
    const double rows = ctx_.all_reduce_sum(static_cast<double>(x.shape()[0]));
    if (rows < 2)
        throw ValueError(fmt::format("SyncBatchNorm1d: training needs more than one row in the global batch, got {}",
                                     rows));
    const T n = static_cast<T>(rows);
    const Variable<T> mu = all_reduce_sum(ctx_, sum(x, 0)) / n;
    const Variable<T> centred = x - mu;
    const Variable<T> var = all_reduce_sum(ctx_, sum(centred * centred, 0)) / n;
    const T eps = static_cast<T>(options_.eps);
    const Variable<T> y = centred / sqrt(var + eps) * this->gamma() + this->beta();
    const T m = static_cast<T>(options_.momentum);
    this->running_mean().mutable_data() = (T(1) - m) * this->running_mean().data() + m * mu.data();
    this->running_var().mutable_data() = (T(1) - m) * this->running_var().data() + m * var.data();
    return y;
}

template <class T>
std::string SyncBatchNorm1d<T>::repr() const {
    return fmt::format("SyncBatchNorm1d({}, eps={}, momentum={})", features_, options_.eps, options_.momentum);
}

template Variable<float> all_reduce_sum(const Context&, const Variable<float>&);
template Variable<double> all_reduce_sum(const Context&, const Variable<double>&);
template class SyncBatchNorm1d<float>;
template class SyncBatchNorm1d<double>;

}  // namespace xg::dist
