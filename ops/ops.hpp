#pragma once
// Every differentiable op of xgrad. Each is defined next to its backward in one ops/*.cpp file
// and explicitly instantiated there for float and double, by name (XG_INSTANTIATE_OP, in
// ops/instantiate.hpp) unless the name is overloaded: a signature is written here and at the
// definition, nowhere else. The declarations are here because user code compiles against this
// header while the definitions, heavy with xtensor templates, are compiled once, in the library.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "graph/function.hpp"
#include "graph/variable.hpp"

namespace xg {

// The number argument of an op on Variable<T> (a constant, an exponent, a slope): T itself, in a
// form that takes no part in deducing T. `2.0 * x` with x a Variable<float> deduces T = float from
// x alone and converts 2.0 to float; a plain `T c` parameter would deduce double from 2.0 as well,
// and the call would match nothing. Every wrapper taking a number beside a Variable<T> takes a
// Scalar<T>.
template <class T>
using Scalar = std::type_identity_t<T>;

// Integer class labels, one per row, for softmax_cross_entropy.
using Labels = xt::xtensor<std::int64_t, 1>;

// ---- elementwise, with numpy broadcasting (ops/elementwise.cpp) ----
template <class T> Variable<T> add(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> sub(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> mul(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> div(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> neg(const Variable<T>& x);
template <class T> Variable<T> add(const Variable<T>& x, Scalar<T> c);   // x + c
template <class T> Variable<T> mul(const Variable<T>& x, Scalar<T> c);   // x * c
template <class T> Variable<T> rsub(Scalar<T> c, const Variable<T>& x);  // c - x
template <class T> Variable<T> rdiv(Scalar<T> c, const Variable<T>& x);  // c / x
template <class T> Variable<T> pow(const Variable<T>& x, Scalar<T> exponent);
template <class T> Variable<T> exp(const Variable<T>& x);
template <class T> Variable<T> log(const Variable<T>& x);
template <class T> Variable<T> sqrt(const Variable<T>& x);
template <class T> Variable<T> abs(const Variable<T>& x);
// Elementwise max/min of a and b (broadcasting); NaN propagates. Where a == b the gradient is
// split half and half between a and b, as PyTorch does.
template <class T> Variable<T> maximum(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> minimum(const Variable<T>& a, const Variable<T>& b);
// min(max(x, lo), hi), so hi wins when lo > hi (as torch.clamp); +-infinity leaves a side open,
// a NaN bound throws ValueError (torch would fill with NaN).
// Gradient 1 where lo <= x <= hi (bounds included, as PyTorch), 0 elsewhere and at NaN.
template <class T> Variable<T> clamp(const Variable<T>& x, Scalar<T> lo, Scalar<T> hi);
template <class T> Variable<T> sin(const Variable<T>& x);
template <class T> Variable<T> cos(const Variable<T>& x);
template <class T> Variable<T> log1p(const Variable<T>& x);  // log(1 + x), exact for small x
template <class T> Variable<T> expm1(const Variable<T>& x);  // e^x - 1, exact for small x
template <class T> Variable<T> square(const Variable<T>& x);
template <class T> Variable<T> reciprocal(const Variable<T>& x);  // 1 / x
template <class T> Variable<T> rsqrt(const Variable<T>& x);       // 1 / sqrt(x)

// ---- activations (ops/activation.cpp) ----
template <class T> Variable<T> sigmoid(const Variable<T>& x);
template <class T> Variable<T> tanh(const Variable<T>& x);
template <class T> Variable<T> relu(const Variable<T>& x);
template <class T> Variable<T> leaky_relu(const Variable<T>& x, Scalar<T> slope = Scalar<T>(0.01));
template <class T> Variable<T> softplus(const Variable<T>& x);  // log(1 + e^x), stable for large |x|
// torch's approximate='none' (x * Phi(x), with the normal CDF Phi from erfc) or 'tanh'
// (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))).
enum class GeluApproximate { none, tanh };
template <class T> Variable<T> gelu(const Variable<T>& x, GeluApproximate approximate = GeluApproximate::none);
template <class T> Variable<T> silu(const Variable<T>& x);  // x * sigmoid(x)
// x for x > 0, alpha * (e^x - 1) elsewhere.
template <class T> Variable<T> elu(const Variable<T>& x, Scalar<T> alpha = Scalar<T>(1));
// clamp(x, min_val, max_val) with PyTorch's hardtanh gradient: 1 strictly inside, 0 at the bounds
// (defined beside clamp, in ops/elementwise.cpp).
template <class T>
Variable<T> hardtanh(const Variable<T>& x, Scalar<T> min_val = Scalar<T>(-1), Scalar<T> max_val = Scalar<T>(1));
template <class T> Variable<T> softsign(const Variable<T>& x);  // x / (1 + |x|)
// leaky_relu's backward as one fused op: gy where x > 0, slope * gy elsewhere (slope 0: relu's).
template <class T> Variable<T> leaky_relu_grad(const Variable<T>& gy, const Variable<T>& x, Scalar<T> slope);

// ---- selection and masks (ops/select.cpp) ----
// A mask: one bool per element (xt::xarray<bool>), made by the comparisons below or by hand
// (xg::Mask{true, false}, xtensor's logical operators). Masks are not differentiable: they take
// no part in the graph. Comparisons broadcast (numpy's rules) and follow IEEE: every comparison
// with NaN is false except ne.
using Mask = Array<bool>;
template <class T> Mask eq(const Variable<T>& a, const Variable<T>& b);
template <class T> Mask ne(const Variable<T>& a, const Variable<T>& b);
template <class T> Mask lt(const Variable<T>& a, const Variable<T>& b);
template <class T> Mask le(const Variable<T>& a, const Variable<T>& b);
template <class T> Mask gt(const Variable<T>& a, const Variable<T>& b);
template <class T> Mask ge(const Variable<T>& a, const Variable<T>& b);
template <class T> Mask eq(const Variable<T>& x, Scalar<T> c);
template <class T> Mask ne(const Variable<T>& x, Scalar<T> c);
template <class T> Mask lt(const Variable<T>& x, Scalar<T> c);
template <class T> Mask le(const Variable<T>& x, Scalar<T> c);
template <class T> Mask gt(const Variable<T>& x, Scalar<T> c);
template <class T> Mask ge(const Variable<T>& x, Scalar<T> c);
template <class T> Mask isfinite(const Variable<T>& x);  // false for +-inf and NaN
// a where mask is true, b elsewhere; mask, a and b broadcast together. The gradient flows to a
// where mask is true and to b elsewhere, summed to each one's shape.
template <class T> Variable<T> where(const Mask& mask, const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> where(const Mask& mask, const Variable<T>& a, Scalar<T> b);
template <class T> Variable<T> where(const Mask& mask, Scalar<T> a, const Variable<T>& b);
// x with `value` where mask is true; mask and x broadcast together (as torch.masked_fill).
template <class T> Variable<T> masked_fill(const Variable<T>& x, const Mask& mask, Scalar<T> value);

// ---- dropout (ops/select.cpp) ----
// Inverted dropout: in training each element is kept with probability 1 - p and scaled by
// 1 / (1 - p), the mask drawn from `generator` (nn::Generator) one element at a time in row-major
// order; the identity when !training or p == 0, and zeros when p == 1 (as PyTorch). p outside
// [0, 1] throws ValueError.
template <class T>
Variable<T> dropout(const Variable<T>& x, double p, bool training, std::mt19937_64& generator);

// ---- reductions (ops/reduce.cpp); axes may be negative ----
template <class T> Variable<T> sum(const Variable<T>& x);
template <class T> Variable<T> sum(const Variable<T>& x, long axis, bool keepdims = false);
template <class T> Variable<T> mean(const Variable<T>& x);
template <class T> Variable<T> mean(const Variable<T>& x, long axis, bool keepdims = false);
template <class T> Variable<T> max(const Variable<T>& x);
template <class T> Variable<T> max(const Variable<T>& x, long axis, bool keepdims = false);
template <class T> Variable<T> min(const Variable<T>& x);
template <class T> Variable<T> min(const Variable<T>& x, long axis, bool keepdims = false);
// Over several axes at once: negative axes allowed, a repeated axis throws ValueError, and an empty
// list means every axis (torch's dim=[]; numpy's axis=() would reduce none). A braced list picks
// the std::initializer_list overloads below, so sum(x, {}) is over all axes and sum(x, {1}) over
// axis 1, never the single-axis overload with a value-initialised axis 0.
template <class T> Variable<T> sum(const Variable<T>& x, const std::vector<long>& axes, bool keepdims = false);
template <class T> Variable<T> mean(const Variable<T>& x, const std::vector<long>& axes, bool keepdims = false);
template <class T> Variable<T> max(const Variable<T>& x, const std::vector<long>& axes, bool keepdims = false);
template <class T> Variable<T> min(const Variable<T>& x, const std::vector<long>& axes, bool keepdims = false);
// log(sum(exp(x))) along `axis`, shifted by the lane's maximum: finite for large inputs; a lane of
// -inf gives -inf (its gradient is NaN, as PyTorch 1.13's).
template <class T> Variable<T> logsumexp(const Variable<T>& x, long axis, bool keepdims = false);
// Variance sum((x - mean)^2) / max(0, N - correction) over all elements, one axis or several
// (correction 1: torch's unbiased, 0: biased); std is its square root, whose gradient is 0 where
// it is 0 (as PyTorch's). An empty reduction throws ShapeError, as mean does. Call std as xg::std
// (as torch::std): after `using namespace xg`, an unqualified std(x) is ambiguous with namespace std.
template <class T> Variable<T> var(const Variable<T>& x);
template <class T> Variable<T> var(const Variable<T>& x, long axis, long correction = 1, bool keepdims = false);
template <class T>
Variable<T> var(const Variable<T>& x, const std::vector<long>& axes, long correction = 1, bool keepdims = false);
template <class T> Variable<T> std(const Variable<T>& x);
template <class T> Variable<T> std(const Variable<T>& x, long axis, long correction = 1, bool keepdims = false);
template <class T>
Variable<T> std(const Variable<T>& x, const std::vector<long>& axes, long correction = 1, bool keepdims = false);
// Product over all elements or one axis (1 when empty). Its gradient, the product of the other
// elements of the lane, is computed without division: right with any number of zeros.
template <class T> Variable<T> prod(const Variable<T>& x);
template <class T> Variable<T> prod(const Variable<T>& x, long axis, bool keepdims = false);
// Index of the largest (smallest) element along `axis`, or in the flattened array: the first one
// on ties, and the first NaN if there is one (PyTorch's rule). Not differentiable.
template <class T> xt::xarray<std::int64_t> argmax(const Variable<T>& x);
template <class T> xt::xarray<std::int64_t> argmax(const Variable<T>& x, long axis, bool keepdims = false);
template <class T> xt::xarray<std::int64_t> argmin(const Variable<T>& x);
template <class T> xt::xarray<std::int64_t> argmin(const Variable<T>& x, long axis, bool keepdims = false);

template <class T> Variable<T> sum(const Variable<T>& x, std::initializer_list<long> axes, bool keepdims = false) {
    return sum(x, std::vector<long>(axes), keepdims);
}
template <class T> Variable<T> mean(const Variable<T>& x, std::initializer_list<long> axes, bool keepdims = false) {
    return mean(x, std::vector<long>(axes), keepdims);
}
template <class T> Variable<T> max(const Variable<T>& x, std::initializer_list<long> axes, bool keepdims = false) {
    return max(x, std::vector<long>(axes), keepdims);
}
template <class T> Variable<T> min(const Variable<T>& x, std::initializer_list<long> axes, bool keepdims = false) {
    return min(x, std::vector<long>(axes), keepdims);
}
template <class T>
Variable<T> var(const Variable<T>& x, std::initializer_list<long> axes, long correction = 1, bool keepdims = false) {
    return var(x, std::vector<long>(axes), correction, keepdims);
}
template <class T>
Variable<T> std(const Variable<T>& x, std::initializer_list<long> axes, long correction = 1, bool keepdims = false) {
    return std(x, std::vector<long>(axes), correction, keepdims);
}

// ---- shape (ops/shape.cpp) ----
// One dimension of `shape` may be -1: it is inferred from the size.
template <class T> Variable<T> reshape(const Variable<T>& x, const std::vector<long>& shape);
template <class T> Variable<T> transpose(const Variable<T>& x);  // reverses the axes
template <class T> Variable<T> transpose(const Variable<T>& x, const std::vector<std::size_t>& axes);
template <class T> Variable<T> broadcast_to(const Variable<T>& x, const Shape& shape);
// Sums x down to `shape` (the inverse of broadcast_to); the gradient of broadcasting.
template <class T> Variable<T> sum_to(const Variable<T>& x, const Shape& shape);
// Rows x[indices[0]], x[indices[1]], ... along axis 0 (a mini-batch, an embedding lookup):
// index_select along axis 0, defined with it in ops/index.cpp.
template <class T> Variable<T> rows(const Variable<T>& x, const std::vector<std::size_t>& indices);
// x[start:stop:step] along `axis`.
template <class T>
Variable<T> slice(const Variable<T>& x, long axis, std::size_t start, std::size_t stop, std::size_t step = 1);
template <class T> Variable<T> concatenate(const std::vector<Variable<T>>& xs, long axis = 0);
// Removes every axis of size 1, or `axis` if its size is 1 (another size: x unchanged, as torch).
template <class T> Variable<T> squeeze(const Variable<T>& x);
template <class T> Variable<T> squeeze(const Variable<T>& x, long axis);
// Inserts an axis of size 1 at `axis`, in [-ndim - 1, ndim].
template <class T> Variable<T> unsqueeze(const Variable<T>& x, long axis);
// Merges axes start..end (inclusive) into one; a 0-d x becomes (1,).
template <class T> Variable<T> flatten(const Variable<T>& x, long start = 0, long end = -1);
// Joins arrays of one shape along a new axis, in [-ndim - 1, ndim].
template <class T> Variable<T> stack(const std::vector<Variable<T>>& xs, long axis = 0);
// Pieces along `axis`: of split_size each (the last one smaller), or of the given sizes, which must
// add up to the axis' size (torch.split; a braced list is sizes).
template <class T> std::vector<Variable<T>> split(const Variable<T>& x, long split_size, long axis = 0);
template <class T>
std::vector<Variable<T>> split(const Variable<T>& x, const std::vector<long>& sizes, long axis = 0);
template <class T>
std::vector<Variable<T>> split(const Variable<T>& x, std::initializer_list<long> sizes, long axis = 0) {
    return split(x, std::vector<long>(sizes), axis);
}
// torch.chunk: pieces of ceil(size / chunks) along `axis`, so possibly fewer than `chunks`.
template <class T> std::vector<Variable<T>> chunk(const Variable<T>& x, long chunks, long axis = 0);
// Constant padding: one (before, after) pair per axis, first axis first (numpy's order; torch's
// F.pad lists the last axis first). Negative amounts crop; an axis cropped below 0 throws.
template <class T>
Variable<T> pad(const Variable<T>& x, const std::vector<std::pair<long, long>>& pads, Scalar<T> value = Scalar<T>(0));
// Reverses the order of elements along each of `axes`.
template <class T> Variable<T> flip(const Variable<T>& x, const std::vector<long>& axes);
// torch's Tensor.repeat: at least ndim counts; x gets leading axes of size 1 for the extra ones.
template <class T> Variable<T> repeat(const Variable<T>& x, const std::vector<long>& repeats);
// numpy/torch tile: as repeat, with fewer counts than axes padded with leading 1s.
template <class T> Variable<T> tile(const Variable<T>& x, const std::vector<long>& reps);
// transpose with the axes given as a permutation, negative allowed.
template <class T> Variable<T> permute(const Variable<T>& x, const std::vector<long>& axes);
// broadcast_to where -1 keeps x's size (only for axes x has).
template <class T> Variable<T> expand(const Variable<T>& x, const std::vector<long>& shape);

// ---- linear algebra (ops/linalg.cpp), BLAS ----
// torch.matmul's rules: 1-D·1-D is a dot product (0-d result); a 1-D operand is a row (left) or
// a column (right) vector, its dimension removed from the result; N-d operands are stacks of
// matrices over their leading (batch) dimensions, which broadcast: (B, 1, M, K)·(H, K, N) is
// (B, H, M, N). Each batch entry is one GEMM on the arrays in place.
template <class T> Variable<T> matmul(const Variable<T>& a, const Variable<T>& b);
// op(a)·op(b) where op transposes the last two axes when asked (a and b at least 2-D; batch
// dimensions broadcast as above): transposes go to BLAS as flags, never copied.
template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b, bool transpose_a, bool transpose_b);
// torch.bmm: a (B, M, K), b (B, K, N) -> (B, M, N), without broadcasting.
template <class T> Variable<T> bmm(const Variable<T>& a, const Variable<T>& b);
// x·W + b for x (..., in), W (in, out), b (out,) or undefined for no bias: any number of leading
// dimensions, as torch's Linear (the 2-D case is one GEMM on x as it is).
template <class T> Variable<T> linear(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b = {});
// relu(linear(x, W, b)) as one op (nn::Sequential runs Linear then ReLU so): same values and
// gradients, one pass over the activations fewer each way.
template <class T> Variable<T> linear_relu(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b = {});
// x·Wᵀ + b with W (out, in), torch.nn.functional.linear's layout (nn::TorchLinear's): x (..., in)
// is taken as the rows it is in memory and the result is (..., out); b (out,) or undefined is
// copied into every row of the result before the GEMM adds x·Wᵀ (no separate add).
template <class T> Variable<T> torch_linear(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b = {});

// ---- indexing (ops/index.cpp) ----
// Integer index arrays (torch's LongTensor), e.g. IndexArray{2, 0, 2}. An index outside
// [0, size) throws IndexError naming the op, the index and the size (no negative indices).
using IndexArray = xt::xarray<std::int64_t>;
// x's entries at `indices` (1-D) along `axis`: torch.index_select. Repeated indices are allowed;
// the backward adds their gradients.
template <class T> Variable<T> index_select(const Variable<T>& x, long axis, const IndexArray& indices);
// torch.gather: y[i][j][k] = x[index[i][j][k]][j][k] for axis 0 (and so on); index has x's number
// of dimensions, at most x's size on the other axes, and y has index's shape.
template <class T> Variable<T> gather(const Variable<T>& x, long axis, const IndexArray& index);
// torch.scatter_add (out of place): x with src[i][j][k] added at [index[i][j][k]][j][k] for axis
// 0 (and so on), for every position of index (at most src's size on every axis, x's on the others).
template <class T>
Variable<T> scatter_add(const Variable<T>& x, long axis, const IndexArray& index, const Variable<T>& src);
// Rows of weight (num, dim) for ids of any shape: ids.shape + (dim,). The backward adds the
// gradients of repeated ids.
template <class T> Variable<T> embedding(const Variable<T>& weight, const IndexArray& ids);
// ---- normalisation (ops/norm.cpp) ----
// torch.nn.functional.layer_norm: each block of x's last normalized_shape.size() axes (which must
// equal normalized_shape) becomes (x - mean) / sqrt(var + eps) * gamma + beta, var biased; gamma
// and beta have shape normalized_shape, and either may be undefined (no scale, no shift). One
// fused op: forward keeps each block's mean and 1 / sqrt(var + eps), backward uses the closed
// formula, and under create_graph it is recorded from ops (differentiable again).
template <class T>
Variable<T> layer_norm(const Variable<T>& x, const Shape& normalized_shape, const Variable<T>& gamma = {},
                       const Variable<T>& beta = {}, Scalar<T> eps = Scalar<T>(1e-5));
// The per-channel statistics of a training batch as batch_norm measured them (var biased), for a
// layer's running estimates.
template <class T>
struct BatchStatistics {
    Array<T> mean, var;
};
// torch.nn.functional.batch_norm in training mode, without running statistics: x of shape (N, C,
// *); each channel c, over x[:, c, ...], becomes (x - mean) / sqrt(var + eps) * gamma[c] + beta[c],
// var biased; gamma and beta have shape (C,), and either may be undefined. A channel of one value
// throws ValueError (as torch); of none (N or * empty) gives an empty output, NaN statistics and
// zero gradients for gamma and beta. When `statistics` is not null it receives the batch's mean
// and biased variance (shape (C,)); nn::BatchNorm1d and BatchNorm2d update their running ones
// from it. One fused op like layer_norm (differentiable again under create_graph).
template <class T>
Variable<T> batch_norm(const Variable<T>& x, const Variable<T>& gamma = {}, const Variable<T>& beta = {},
                       Scalar<T> eps = Scalar<T>(1e-5), BatchStatistics<T>* statistics = nullptr);

// ---- convolution and pooling (ops/conv.cpp, ops/pool.cpp) ----
// Layouts and semantics are PyTorch's: x (N, C, H, W) (a 3-D, unbatched x throws ShapeError:
// add the batch axis with unsqueeze), conv weights (out_channels, in_channels / groups, kh, kw).
// Each size is one number for both spatial axes or an (h, w) pair: {.stride = 2} or
// {.stride = {2, 1}}. Sizes are signed so that a negative one is reported, not wrapped around.
struct Size2 {
    long h, w;
    Size2(long both) : h(both), w(both) {}  // NOLINT: implicit, like torch's _pair
    Size2(long h, long w) : h(h), w(w) {}
};
struct Conv2dOptions {
    Size2 stride = 1;
    Size2 padding = 0;  // zeros on both sides of each spatial axis
    Size2 dilation = 1;
    long groups = 1;    // must divide in_channels and out_channels
};
// torch.nn.functional.conv2d: cross-correlation of x (N, C, H, W) with weight
// (O, C / groups, kh, kw), plus bias (O,) when defined: (N, O, OH, OW) with
// OH = (H + 2 padding.h - dilation.h (kh - 1) - 1) / stride.h + 1 (likewise OW).
// im2col and one BLAS GEMM per image and group; the gradients are ops of their own
// (conv_transpose2d for the input), so the backward is differentiable again.
template <class T>
Variable<T> conv2d(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias = {},
                   Conv2dOptions options = {});
// relu(conv2d(x, weight, bias, options)) as one op (nn::Sequential runs a Conv2d followed by a
// ReLU so): the same values and gradients, with relu applied to each image's output right after
// its GEMMs (while it is in cache) and, backward, relu's mask and the bias gradient's sums taken
// in one pass over the gradient.
template <class T>
Variable<T> conv2d_relu(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias = {},
                        Conv2dOptions options = {});
struct ConvTranspose2dOptions {
    Size2 stride = 1;
    Size2 padding = 0;
    Size2 output_padding = 0;  // added on one side of the output; must be below stride or dilation
    long groups = 1;
    Size2 dilation = 1;
};
// torch.nn.functional.conv_transpose2d: the adjoint of conv2d (its gradient with respect to the
// input) for x (N, C, H, W) and weight (C, O / groups, kh, kw), plus bias (O,):
// OH = (H - 1) stride.h - 2 padding.h + dilation.h (kh - 1) + output_padding.h + 1.
template <class T>
Variable<T> conv_transpose2d(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias = {},
                             ConvTranspose2dOptions options = {});
struct Pool2dOptions {
    Size2 kernel;
    std::optional<Size2> stride = std::nullopt;  // the kernel size when not given, as torch
    Size2 padding = 0;                         // at most half the kernel, as torch
};
// torch.nn.functional.max_pool2d (floor mode, no dilation): padding counts as -infinity. The
// gradient goes to the first maximum of each window in row-major order (ties: one element
// gets it all, as torch's CPU kernel); NaN is a maximum.
template <class T> Variable<T> max_pool2d(const Variable<T>& x, Pool2dOptions options);
// torch.nn.functional.avg_pool2d (floor mode): the mean over each window, padding included in
// the count (torch's default count_include_pad=True) unless count_include_pad is false.
template <class T>
Variable<T> avg_pool2d(const Variable<T>& x, Pool2dOptions options, bool count_include_pad = true);
// torch.nn.functional.adaptive_avg_pool2d: output (N, C, output.h, output.w), window i covering
// rows floor(i H / OH) to ceil((i + 1) H / OH) (likewise columns).
template <class T> Variable<T> adaptive_avg_pool2d(const Variable<T>& x, Size2 output);
// max_pool2d(relu(conv2d(x, weight, bias, conv)), pool) as one op when the pool is 2x2 with stride
// 2 and no padding (nn::Sequential runs a Conv2d, a ReLU and such a MaxPool2d so), the three ops
// otherwise: the same values and gradients (tested bit for bit), without the convolution's
// full-size output, which is made and pooled a chunk of images at a time while it is in cache.
// flatten: return flatten(that, 1), (N, C * OH * OW) for the pooled OH x OW, made in that shape
// (no copy; what nn::Sequential runs when a Flatten follows the pool).
template <class T>
Variable<T> conv2d_relu_max_pool2d(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias = {},
                                   Conv2dOptions conv = {}, Pool2dOptions pool = {.kernel = 2}, bool flatten = false);

// ---- attention (ops/attention.cpp) ----
// softmax(q·kᵀ / sqrt(E) + mask) · v for q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev);
// the batch axes of q, k and v broadcast. mask: undefined, or additive scores broadcastable to
// (..., L, S) (-inf masks an entry; it is differentiable). causal masks the upper triangle (key j > query
// i, torch's is_causal), together with mask if both are given. The softmax subtracts each row's
// maximum (no overflow at any finite score); a row with every score -inf (fully masked) gives zeros
// and zero gradients, where torch 1.13's formula gives NaN. Backward by the closed formula, recorded
// from ops under create_graph.
template <class T>
Variable<T> scaled_dot_product_attention(const Variable<T>& q, const Variable<T>& k, const Variable<T>& v,
                                         const Variable<T>& mask = {}, bool causal = false);
// The same over num_heads heads packed side by side in the last axis, as projections make them:
// q (N, L, H E), k (N, S, H E), v (N, S, H Ev) -> (N, L, H Ev), head h the columns [h E, (h + 1) E)
// (h Ev for v and the output); mask broadcastable to (N, H, L, S). Equal to splitting the heads
// ((N, L, H, E) permuted to (N, H, L, E)), scaled_dot_product_attention, and merging them back,
// without the four copies each way (strided GEMMs read the heads in place).
template <class T>
Variable<T> heads_attention(const Variable<T>& q, const Variable<T>& k, const Variable<T>& v, std::size_t num_heads,
                            const Variable<T>& mask = {}, bool causal = false);
// Self-attention from one projection: qkv (N, L, 3 H E) holds q, k and v side by side in its last
// axis (qkv = torch_linear(x, in_proj_weight, in_proj_bias)), each of H heads; gives (N, L, H E).
// Equal to heads_attention of its three thirds (slice), which it reads in place; its gradient is
// one (N, L, 3 H E) array.
template <class T>
Variable<T> qkv_attention(const Variable<T>& qkv, std::size_t num_heads, const Variable<T>& mask = {},
                          bool causal = false);

// ---- recurrent cells (ops/recurrent.cpp) ----
// One LSTM step from its gate pre-activations, returning (h', c'): with gates = x_gates + h_gates
// split into i, f, g, o along the last axis (each H wide, PyTorch's order),
//   c' = sigmoid(f) c + sigmoid(i) tanh(g),  h' = sigmoid(o) tanh(c').
// x_gates is (N, 4H), or with step >= 0 a whole sequence's input projection (L, N, 4H) of which
// row block `step` is used, without a slice (its gradient is added there in place). h_gates
// (N, 4H) and c (N, H) may be undefined: zeros, left out of the arithmetic. nn::LSTM and
// nn::LSTMCell run on it; it equals the composition of slice, sigmoid, tanh, mul and add.
template <class T>
std::pair<Variable<T>, Variable<T>> lstm_cell(const Variable<T>& x_gates, const Variable<T>& h_gates = {},
                                              const Variable<T>& c = {}, long step = -1);

// ---- softmax and losses (ops/loss.cpp) ----
enum class Reduction { mean, sum, none };
template <class T> Variable<T> softmax(const Variable<T>& x, long axis = -1);
template <class T> Variable<T> log_softmax(const Variable<T>& x, long axis = -1);
// Fused, stable softmax + cross entropy over rows of x (N, C): integer labels or one-hot (N, C).
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& x, const Labels& labels, Reduction r = Reduction::mean);
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& x, const Variable<T>& onehot,
                                  Reduction r = Reduction::mean);
// mean((a - b)^2) over every element.
template <class T> Variable<T> mean_squared_error(const Variable<T>& a, const Variable<T>& b);

// ---- operators ----
template <class T> Variable<T> operator+(const Variable<T>& a, const Variable<T>& b) { return add(a, b); }
template <class T> Variable<T> operator-(const Variable<T>& a, const Variable<T>& b) { return sub(a, b); }
template <class T> Variable<T> operator*(const Variable<T>& a, const Variable<T>& b) { return mul(a, b); }
template <class T> Variable<T> operator/(const Variable<T>& a, const Variable<T>& b) { return div(a, b); }
template <class T> Variable<T> operator-(const Variable<T>& x) { return neg(x); }
template <class T> Variable<T> operator+(const Variable<T>& x, Scalar<T> c) { return add(x, c); }
template <class T> Variable<T> operator+(Scalar<T> c, const Variable<T>& x) { return add(x, c); }
template <class T> Variable<T> operator-(const Variable<T>& x, Scalar<T> c) { return add(x, -c); }
template <class T> Variable<T> operator-(Scalar<T> c, const Variable<T>& x) { return rsub(c, x); }
template <class T> Variable<T> operator*(const Variable<T>& x, Scalar<T> c) { return mul(x, c); }
template <class T> Variable<T> operator*(Scalar<T> c, const Variable<T>& x) { return mul(x, c); }
template <class T> Variable<T> operator/(const Variable<T>& x, Scalar<T> c) { return mul(x, Scalar<T>(1) / c); }
template <class T> Variable<T> operator/(Scalar<T> c, const Variable<T>& x) { return rdiv(c, x); }

}  // namespace xg
