#pragma once
// Batch normalisation (of rows, and of images' channels) whose batch statistics are those of the whole global batch, over every
// rank (torch.nn.SyncBatchNorm). A plain nn::BatchNorm1d under DataParallel normalises each rank's
// part of the batch by that part's own mean and variance, so N ranks do not compute what one
// process with the whole batch would (and its running statistics differ between ranks); this
// layer all-reduces the per-feature sums, so they do. It is an nn::BatchNorm1d (same parameters
// and buffers, same names: state dicts and checkpoints move between the two freely) and behaves
// as one in evaluation and in a world of one.
//
// In training, forward() is a collective: every rank calls it, in the same order, with its part
// of the batch (which may be empty on some ranks; the global batch needs two rows or more).
#include <cstddef>
#include <string>

#include "dist/context.hpp"
#include "graph/variable.hpp"
#include "nn/conv.hpp"
#include "nn/layers.hpp"

namespace xg::dist {

// The element-wise sum of `x` over the ranks (every rank passes the same shape). Differentiable:
// the gradient of each rank's x is the sum over the ranks of their output gradients, as the
// backward of an all-reduce is.
template <class T>
Variable<T> all_reduce_sum(const Context& ctx, const Variable<T>& x);

template <class T>
class SyncBatchNorm1d : public nn::BatchNorm1d<T> {
public:
    SyncBatchNorm1d(const Context& ctx, std::size_t features, nn::BatchNormOptions options = {});
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;

private:
    const Context& ctx_;
    std::size_t features_;
    nn::BatchNormOptions options_;
};

// The same for images (torch.nn.SyncBatchNorm on (N, C, H, W)): an nn::BatchNorm2d whose training
// statistics per channel are those of every rank's (N, H, W) together.
template <class T>
class SyncBatchNorm2d : public nn::BatchNorm2d<T> {
public:
    SyncBatchNorm2d(const Context& ctx, std::size_t channels, nn::BatchNormOptions options = {});
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;

private:
    const Context& ctx_;
    nn::BatchNormOptions options_;
};

extern template class SyncBatchNorm1d<float>;
extern template class SyncBatchNorm1d<double>;
extern template class SyncBatchNorm2d<float>;
extern template class SyncBatchNorm2d<double>;

}  // namespace xg::dist
