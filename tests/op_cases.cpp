#include "op_cases.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <ostream>
#include <random>

namespace xgt {

using Shape = xg::Shape;
using Vs = std::vector<V>;

namespace {
// A mask of shape (n, 1): xg::Mask{{true}, {false}} is ambiguous (a list of bools, or of rows).
xg::Mask mask_column(std::initializer_list<bool> values) {
    xg::Mask m = xg::Mask::from_shape({values.size(), 1});
    std::copy(values.begin(), values.end(), m.begin());
    return m;
}

// pooling (pool): an nn::BatchNorm2d(3, eps 1e-3) with fixed weight, bias and running statistics
// (scripts/torch_fixtures/pool.py passes the same to F.batch_norm), in training or in evaluation.
V batch_norm2d_layer(const V& x, bool training) {
    xg::nn::BatchNorm2d<double> bn(3, {.eps = 1e-3});
    bn.gamma().mutable_data() = xg::Array<double>{1.5, -0.5, 2.0};
    bn.beta().mutable_data() = xg::Array<double>{0.25, 0.0, -1.0};
    bn.running_mean().mutable_data() = xg::Array<double>{0.5, -1.0, 0.25};
    bn.running_var().mutable_data() = xg::Array<double>{2.0, 0.5, 1.5};
    bn.train(training);
    return bn(x);
}
}  // namespace

const std::vector<OpCase>& op_cases() {
    static const std::vector<OpCase> cases = {
        // elementwise, including broadcasting shapes
        {"add", {{3, 4}, {3, 4}}, [](const Vs& x) { return x[0] + x[1]; }},
        {"add_bcast_3x1_1x4", {{3, 1}, {1, 4}}, [](const Vs& x) { return x[0] + x[1]; }},
        {"add_bcast_2x3_3", {{2, 3}, {3}}, [](const Vs& x) { return x[0] + x[1]; }},
        {"sub_bcast_3x1_1x4", {{3, 1}, {1, 4}}, [](const Vs& x) { return x[0] - x[1]; }},
        {"sub_bcast_2x3_3", {{2, 3}, {3}}, [](const Vs& x) { return x[0] - x[1]; }},
        {"mul", {{2, 3}, {2, 3}}, [](const Vs& x) { return x[0] * x[1]; }},
        {"mul_bcast_3x1_1x4", {{3, 1}, {1, 4}}, [](const Vs& x) { return x[0] * x[1]; }},
        {"mul_bcast_2x3_3", {{2, 3}, {3}}, [](const Vs& x) { return x[0] * x[1]; }},
        {"mul_bcast_scalar", {{2, 3}, {}}, [](const Vs& x) { return x[0] * x[1]; }},
        {"div", {{2, 3}, {2, 3}}, [](const Vs& x) { return x[0] / x[1]; }, true, Domain::positive},
        {"div_bcast_3x1_1x4", {{3, 1}, {1, 4}}, [](const Vs& x) { return x[0] / x[1]; }, true, Domain::positive},
        {"div_bcast_2x3_3", {{2, 3}, {3}}, [](const Vs& x) { return x[0] / x[1]; }, true, Domain::positive},
        {"neg", {{2, 3}}, [](const Vs& x) { return -x[0]; }},
        {"add_scalar", {{2, 3}}, [](const Vs& x) { return x[0] + 2.5; }},
        {"scalar_add", {{2, 3}}, [](const Vs& x) { return 2.5 + x[0]; }},
        {"sub_scalar", {{2, 3}}, [](const Vs& x) { return x[0] - 1.5; }},
        {"scalar_sub", {{2, 3}}, [](const Vs& x) { return 1.0 - x[0]; }},
        {"mul_scalar", {{2, 3}}, [](const Vs& x) { return x[0] * 3.0; }},
        {"scalar_mul", {{2, 3}}, [](const Vs& x) { return 2.0 * x[0]; }},
        {"div_scalar", {{2, 3}}, [](const Vs& x) { return x[0] / 3.0; }},
        {"scalar_div", {{2, 3}}, [](const Vs& x) { return 2.0 / x[0]; }, true, Domain::positive},
        {"pow_3", {{2, 3}}, [](const Vs& x) { return xg::pow(x[0], 3.0); }},
        {"pow_frac", {{2, 3}}, [](const Vs& x) { return xg::pow(x[0], 1.7); }, true, Domain::positive},
        {"pow_neg", {{2, 3}}, [](const Vs& x) { return xg::pow(x[0], -2.0); }, true, Domain::positive},
        {"exp", {{2, 3}}, [](const Vs& x) { return xg::exp(x[0]); }},
        {"log", {{2, 3}}, [](const Vs& x) { return xg::log(x[0]); }, true, Domain::positive},
        {"sqrt", {{2, 3}}, [](const Vs& x) { return xg::sqrt(x[0]); }, true, Domain::positive},
        {"abs", {{2, 3}}, [](const Vs& x) { return xg::abs(x[0]); }, true, Domain::away_from_zero},
        {"maximum", {{3, 4}, {3, 4}}, [](const Vs& x) { return xg::maximum(x[0], x[1]); }},
        {"maximum_bcast_3x1_1x4", {{3, 1}, {1, 4}}, [](const Vs& x) { return xg::maximum(x[0], x[1]); }},
        {"maximum_bcast_scalar", {{2, 3}, {}}, [](const Vs& x) { return xg::maximum(x[0], x[1]); }},
        {"minimum", {{3, 4}, {3, 4}}, [](const Vs& x) { return xg::minimum(x[0], x[1]); }},
        {"minimum_bcast_2x3_3", {{2, 3}, {3}}, [](const Vs& x) { return xg::minimum(x[0], x[1]); }},
        {"minimum_bcast_2x1x3_4x1", {{2, 1, 3}, {4, 1}}, [](const Vs& x) { return xg::minimum(x[0], x[1]); }},
        {"clamp", {{3, 4}}, [](const Vs& x) { return xg::clamp(x[0], -1.0, 0.5); }},
        {"clamp_lo_only", {{3, 4}}, [](const Vs& x) { return xg::clamp(x[0], 0.25, INFINITY); }},
        // *_ties, *_at_bounds, *_small, *_large: the PyTorch fixture gives these edge-value inputs (ties,
        // bounds, tiny and huge magnitudes, inf and NaN); the gradchecks draw random ones
        {"maximum_ties", {{2, 3}, {2, 3}}, [](const Vs& x) { return xg::maximum(x[0], x[1]); }},
        {"minimum_ties_bcast", {{2, 3}, {3}}, [](const Vs& x) { return xg::minimum(x[0], x[1]); }},
        {"clamp_at_bounds", {{2, 4}}, [](const Vs& x) { return xg::clamp(x[0], -1.0, 0.5); }},
        {"sin", {{2, 3}}, [](const Vs& x) { return xg::sin(x[0]); }},
        {"cos", {{2, 3}}, [](const Vs& x) { return xg::cos(x[0]); }},
        {"log1p", {{2, 3}}, [](const Vs& x) { return xg::log1p(x[0]); }, true, Domain::positive},
        {"expm1", {{2, 3}}, [](const Vs& x) { return xg::expm1(x[0]); }},
        {"log1p_small", {{2, 3}}, [](const Vs& x) { return xg::log1p(x[0]); }, true, Domain::positive},
        {"expm1_small", {{2, 3}}, [](const Vs& x) { return xg::expm1(x[0]); }},
        {"square", {{2, 3}}, [](const Vs& x) { return xg::square(x[0]); }},
        {"reciprocal", {{2, 3}}, [](const Vs& x) { return xg::reciprocal(x[0]); }, true, Domain::away_from_zero},
        {"rsqrt", {{2, 3}}, [](const Vs& x) { return xg::rsqrt(x[0]); }, true, Domain::positive},
        // activations
        {"sigmoid", {{3, 4}}, [](const Vs& x) { return xg::sigmoid(x[0]); }},
        {"tanh", {{3, 4}}, [](const Vs& x) { return xg::tanh(x[0]); }},
        {"relu", {{3, 4}}, [](const Vs& x) { return xg::relu(x[0]); }, true, Domain::away_from_zero},
        {"leaky_relu", {{3, 4}}, [](const Vs& x) { return xg::leaky_relu(x[0], 0.1); }, true, Domain::away_from_zero},
        {"softplus", {{3, 4}}, [](const Vs& x) { return xg::softplus(x[0]); }},
        {"gelu", {{3, 4}}, [](const Vs& x) { return xg::gelu(x[0]); }},
        {"gelu_tanh", {{3, 4}}, [](const Vs& x) { return xg::gelu(x[0], xg::GeluApproximate::tanh); }},
        {"silu", {{3, 4}}, [](const Vs& x) { return xg::silu(x[0]); }},
        {"elu", {{3, 4}}, [](const Vs& x) { return xg::elu(x[0]); }, true, Domain::away_from_zero},
        {"elu_alpha", {{3, 4}}, [](const Vs& x) { return xg::elu(x[0], 0.5); }, true, Domain::away_from_zero},
        {"hardtanh", {{3, 4}}, [](const Vs& x) { return xg::hardtanh(x[0]); }},
        {"hardtanh_bounds", {{3, 4}}, [](const Vs& x) { return xg::hardtanh(x[0], -0.5, 1.5); }},
        {"softsign", {{3, 4}}, [](const Vs& x) { return xg::softsign(x[0]); }, true, Domain::away_from_zero},
        {"gelu_large", {{8}}, [](const Vs& x) { return xg::gelu(x[0]); }},
        {"gelu_tanh_large", {{8}}, [](const Vs& x) { return xg::gelu(x[0], xg::GeluApproximate::tanh); }},
        {"silu_large", {{8}}, [](const Vs& x) { return xg::silu(x[0]); }},
        {"elu_large_and_zero", {{8}}, [](const Vs& x) { return xg::elu(x[0], 0.5); }, true, Domain::away_from_zero},
        {"softsign_large", {{8}}, [](const Vs& x) { return xg::softsign(x[0]); }, true, Domain::away_from_zero},
        {"hardtanh_at_bounds", {{2, 4}}, [](const Vs& x) { return xg::hardtanh(x[0]); }},
        {"leaky_relu_grad", {{3, 4}, {3, 4}}, [](const Vs& x) { return xg::leaky_relu_grad(x[0], x[1], 0.1); }, true,
         Domain::away_from_zero},
        // selection; the masks are literal constants
        {"where", {{2, 3}, {2, 3}},
         [](const Vs& x) { return xg::where(xg::Mask{{true, false, true}, {false, false, true}}, x[0], x[1]); }},
        {"where_bcast_mask_2x1_a_3_b_scalar", {{3}, {}},
         [](const Vs& x) { return xg::where(mask_column({true, false}), x[0], x[1]); }},
        {"where_bcast_mask_3_a_2x1_b_1x3", {{2, 1}, {1, 3}},
         [](const Vs& x) { return xg::where(xg::Mask{false, true, true}, x[0], x[1]); }},
        {"where_scalar_b", {{2, 3}}, [](const Vs& x) { return xg::where(xg::Mask{true, false, true}, x[0], 0.5); }},
        {"where_scalar_a", {{2, 3}}, [](const Vs& x) { return xg::where(xg::Mask{true, false, true}, -1.5, x[0]); }},
        {"masked_fill", {{2, 3}},
         [](const Vs& x) { return xg::masked_fill(x[0], xg::Mask{{true, false, false}, {false, true, false}}, 2.5); }},
        {"masked_fill_bcast_x_3_mask_2x1", {{3}},
         [](const Vs& x) { return xg::masked_fill(x[0], mask_column({false, true}), -1.0); }},
        {"where_lt_bcast", {{2, 3}, {3}}, [](const Vs& x) { return xg::where(xg::lt(x[0], x[1]), x[0], x[1]); }},
        {"where_isfinite", {{2, 3}}, [](const Vs& x) { return xg::where(xg::isfinite(x[0]), x[0], 0.0); }},
        {"masked_fill_gt_scalar", {{3, 4}}, [](const Vs& x) { return xg::masked_fill(x[0], xg::gt(x[0], 0.5), 0.5); }},
        {"where_ge_eq_ne_le", {{2, 3}, {2, 3}},
         [](const Vs& x) {
             V y = xg::where(xg::ge(x[0], 0.0), x[0], x[1]);
             y = xg::where(xg::eq(x[0], x[1]), x[1], y);
             y = xg::where(xg::ne(x[1], -1.0), y, x[0] * 2.0);
             return xg::where(xg::le(x[0], x[1]), y, y * 3.0);
         }},
        // dropout with a generator seeded afresh in every call: the same mask each time
        {"dropout", {{3, 4}},
         [](const Vs& x) {
             std::mt19937_64 gen(7);
             return xg::dropout(x[0], 0.4, true, gen);
         }},
        // reductions
        {"sum_all", {{3, 4}}, [](const Vs& x) { return xg::sum(x[0]); }},
        {"sum_axis0", {{3, 4}}, [](const Vs& x) { return xg::sum(x[0], 0); }},
        {"sum_axis1_keepdims", {{3, 4}}, [](const Vs& x) { return xg::sum(x[0], 1, true); }},
        {"sum_axis_neg_3d", {{2, 3, 4}}, [](const Vs& x) { return xg::sum(x[0], -2); }},
        {"mean_all", {{3, 4}}, [](const Vs& x) { return xg::mean(x[0]); }},
        {"mean_axis0", {{3, 4}}, [](const Vs& x) { return xg::mean(x[0], 0); }},
        {"mean_axis1_keepdims", {{3, 4}}, [](const Vs& x) { return xg::mean(x[0], 1, true); }},
        {"max_all", {{3, 4}}, [](const Vs& x) { return xg::max(x[0]); }},
        {"max_axis1", {{3, 4}}, [](const Vs& x) { return xg::max(x[0], 1); }},
        {"max_axis0_keepdims", {{3, 4}}, [](const Vs& x) { return xg::max(x[0], 0, true); }},
        {"min_all", {{3, 4}}, [](const Vs& x) { return xg::min(x[0]); }},
        {"min_axis1", {{3, 4}}, [](const Vs& x) { return xg::min(x[0], 1); }},
        {"min_axis_neg_keepdims", {{2, 3, 4}}, [](const Vs& x) { return xg::min(x[0], -2, true); }},
        {"sum_axes_0_2", {{2, 3, 4}}, [](const Vs& x) { return xg::sum(x[0], {0, 2}); }},
        {"sum_axes_neg_keepdims", {{2, 3, 4}}, [](const Vs& x) { return xg::sum(x[0], {-1, -3}, true); }},
        {"sum_axes_empty_keepdims", {{2, 3}}, [](const Vs& x) { return xg::sum(x[0], {}, true); }},
        {"mean_axes_1_2", {{2, 3, 4}}, [](const Vs& x) { return xg::mean(x[0], {1, 2}); }},
        {"mean_axes_keepdims", {{2, 3, 4}}, [](const Vs& x) { return xg::mean(x[0], {0, -1}, true); }},
        {"max_axes_0_2", {{2, 3, 4}}, [](const Vs& x) { return xg::max(x[0], {0, 2}); }},
        {"max_axes_last_keepdims", {{2, 3, 4}}, [](const Vs& x) { return xg::max(x[0], {-1, -2}, true); }},
        {"min_axes_2_0", {{2, 3, 4}}, [](const Vs& x) { return xg::min(x[0], {2, 0}); }},
        {"logsumexp_axis1", {{3, 4}}, [](const Vs& x) { return xg::logsumexp(x[0], 1); }},
        {"logsumexp_axis0_keepdims", {{3, 4}}, [](const Vs& x) { return xg::logsumexp(x[0], 0, true); }},
        {"logsumexp_axis_neg_3d", {{2, 3, 4}}, [](const Vs& x) { return xg::logsumexp(x[0], -2); }},
        {"var_all", {{3, 4}}, [](const Vs& x) { return xg::var(x[0]); }},
        {"var_axis1_biased", {{3, 4}}, [](const Vs& x) { return xg::var(x[0], 1, 0); }},
        {"var_axes_keepdims", {{2, 3, 4}}, [](const Vs& x) { return xg::var(x[0], {0, 2}, 1, true); }},
        {"std_all", {{3, 4}}, [](const Vs& x) { return xg::std(x[0]); }},
        {"std_axis0", {{3, 4}}, [](const Vs& x) { return xg::std(x[0], 0); }},
        {"std_axes_biased_keepdims", {{2, 3, 4}}, [](const Vs& x) { return xg::std(x[0], {-1, 0}, 0, true); }},
        {"prod_all", {{2, 3}}, [](const Vs& x) { return xg::prod(x[0]); }},
        {"prod_axis1", {{3, 4}}, [](const Vs& x) { return xg::prod(x[0], 1); }},
        {"prod_axis0_keepdims", {{3, 4}}, [](const Vs& x) { return xg::prod(x[0], 0, true); }},
        {"prod_axis_neg_3d", {{2, 3, 4}}, [](const Vs& x) { return xg::prod(x[0], -2); }},
        // edge values: the PyTorch fixture runs these on explicit inputs (ties, +-inf, 1e308, zeros,
        // zero variance; scripts/torch_fixtures/reduce_shape.py), the gradchecks on random ones
        {"min_axis1_ties", {{3, 4}}, [](const Vs& x) { return xg::min(x[0], 1); }},
        {"max_axes_ties", {{2, 2, 2}}, [](const Vs& x) { return xg::max(x[0], {0, 2}); }},
        {"logsumexp_extremes", {{5, 3}}, [](const Vs& x) { return xg::logsumexp(x[0], 1); }},
        {"std_zero_variance", {{2, 3}}, [](const Vs& x) { return xg::std(x[0], 1); }},
        {"prod_axis1_zeros", {{4, 4}}, [](const Vs& x) { return xg::prod(x[0], 1); }},
        {"prod_all_one_zero", {{2, 3}}, [](const Vs& x) { return xg::prod(x[0]); }},
        // shape
        {"reshape", {{2, 6}}, [](const Vs& x) { return xg::reshape(x[0], {3, -1}); }},
        {"transpose_2d", {{2, 3}}, [](const Vs& x) { return xg::transpose(x[0]); }},
        {"transpose_axes", {{2, 3, 4}}, [](const Vs& x) { return xg::transpose(x[0], {1, 2, 0}); }},
        {"transpose_heads", {{2, 3, 1, 4}}, [](const Vs& x) { return xg::transpose(x[0], {0, 2, 1, 3}); }},
        {"broadcast_to", {{3, 1}}, [](const Vs& x) { return xg::broadcast_to(x[0], Shape{2, 3, 4}); }},
        {"sum_to", {{2, 3, 4}}, [](const Vs& x) { return xg::sum_to(x[0], Shape{3, 1}); }},
        {"rows", {{4, 3}}, [](const Vs& x) { return xg::rows(x[0], {2, 0, 2, 3}); }},
        {"slice_axis0", {{5, 3}}, [](const Vs& x) { return xg::slice(x[0], 0, 1, 4); }},
        {"slice_axis1_step", {{3, 6}}, [](const Vs& x) { return xg::slice(x[0], -1, 0, 6, 2); }},
        {"concatenate_axis0", {{2, 3}, {1, 3}, {3, 3}}, [](const Vs& x) { return xg::concatenate(x, 0); }},
        {"concatenate_axis1", {{2, 3}, {2, 2}}, [](const Vs& x) { return xg::concatenate(x, 1); }},
        {"squeeze_all", {{1, 3, 1, 2}}, [](const Vs& x) { return xg::squeeze(x[0]); }},
        {"squeeze_axis_neg", {{3, 1, 2}}, [](const Vs& x) { return xg::squeeze(x[0], -2); }},
        {"unsqueeze_axis1", {{2, 3}}, [](const Vs& x) { return xg::unsqueeze(x[0], 1); }},
        {"unsqueeze_axis_neg", {{2, 3}}, [](const Vs& x) { return xg::unsqueeze(x[0], -1); }},
        {"flatten_all", {{2, 3, 4}}, [](const Vs& x) { return xg::flatten(x[0]); }},
        {"flatten_1_2", {{2, 3, 4, 2}}, [](const Vs& x) { return xg::flatten(x[0], 1, 2); }},
        {"stack_axis0", {{2, 3}, {2, 3}, {2, 3}}, [](const Vs& x) { return xg::stack(x, 0); }},
        {"stack_axis_neg", {{2, 3}, {2, 3}}, [](const Vs& x) { return xg::stack(x, -1); }},
        // pieces weighted differently, so each one's gradient reaches the right place
        {"split_size", {{5, 3}},
         [](const Vs& x) {
             const Vs p = xg::split(x[0], 2);
             return xg::concatenate(Vs{p[2], p[0] * 2.0, p[1] * 3.0}, 0);
         }},
        {"split_sizes_axis1", {{3, 5}},
         [](const Vs& x) {
             const Vs p = xg::split(x[0], {1, 3, 1}, 1);
             return xg::concatenate(Vs{p[2] * 2.0, p[0], xg::exp(p[1])}, 1);
         }},
        {"chunk", {{7, 2}},
         [](const Vs& x) {
             const Vs p = xg::chunk(x[0], 3);
             return xg::concatenate(Vs{p[1], p[2] * 2.0, p[0] * 3.0}, 0);
         }},
        {"pad_2d", {{2, 3}}, [](const Vs& x) { return xg::pad(x[0], {{1, 0}, {2, 1}}, 0.5); }},
        {"pad_crop", {{4, 5}}, [](const Vs& x) { return xg::pad(x[0], {{-1, 2}, {1, -2}}); }},
        {"flip", {{2, 3, 4}}, [](const Vs& x) { return xg::flip(x[0], {0, -1}); }},
        {"repeat", {{2, 3}}, [](const Vs& x) { return xg::repeat(x[0], {2, 1, 3}); }},
        {"tile", {{2, 3}}, [](const Vs& x) { return xg::tile(x[0], {2}); }},
        {"permute", {{2, 3, 4}}, [](const Vs& x) { return xg::permute(x[0], {-1, 0, 1}); }},
        {"expand", {{3, 1}}, [](const Vs& x) { return xg::expand(x[0], {2, -1, 4}); }},
        // linear algebra
        {"matmul", {{3, 4}, {4, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_ta", {{4, 3}, {4, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1], true, false); }},
        {"matmul_tb", {{3, 4}, {2, 4}}, [](const Vs& x) { return xg::matmul(x[0], x[1], false, true); }},
        {"matmul_ta_tb", {{4, 3}, {2, 4}}, [](const Vs& x) { return xg::matmul(x[0], x[1], true, true); }},
        {"linear", {{3, 4}, {4, 2}, {2}}, [](const Vs& x) { return xg::linear(x[0], x[1], x[2]); }},
        {"linear_no_bias", {{3, 4}, {4, 2}}, [](const Vs& x) { return xg::linear(x[0], x[1]); }},
        {"linear_relu", {{5, 4}, {4, 3}, {3}}, [](const Vs& x) { return xg::linear_relu(x[0], x[1], x[2]); }},
        {"linear_relu_no_bias", {{5, 4}, {4, 3}}, [](const Vs& x) { return xg::linear_relu(x[0], x[1]); }},
        // matmul's torch rules: vectors, batches, broadcast batch dimensions (index_matmul)
        {"matmul_1d_1d", {{4}, {4}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_1d_2d", {{3}, {3, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_2d_1d", {{2, 3}, {3}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_1d_3d", {{3}, {2, 3, 4}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_3d_1d", {{2, 4, 3}, {3}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_3d_2d", {{2, 3, 4}, {4, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_2d_3d", {{3, 4}, {2, 4, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_3d_3d", {{2, 3, 4}, {2, 4, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_bcast_batch_1", {{1, 3, 4}, {2, 4, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_bcast_4d_3d", {{2, 1, 3, 4}, {3, 4, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_bcast_4d_4d", {{2, 1, 2, 3}, {1, 2, 3, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"matmul_batched_ta", {{2, 4, 3}, {4, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1], true, false); }},
        {"matmul_batched_tb", {{2, 3, 4}, {2, 4}}, [](const Vs& x) { return xg::matmul(x[0], x[1], false, true); }},
        {"matmul_rows_4d_tb", {{2, 1, 3, 4}, {2, 4}}, [](const Vs& x) { return xg::matmul(x[0], x[1], false, true); }},
        {"matmul_batched_ta_tb", {{2, 4, 3}, {2, 2, 4}}, [](const Vs& x) { return xg::matmul(x[0], x[1], true, true); }},
        {"bmm", {{2, 3, 4}, {2, 4, 2}}, [](const Vs& x) { return xg::bmm(x[0], x[1]); }},
        {"linear_3d", {{2, 3, 4}, {4, 2}, {2}}, [](const Vs& x) { return xg::linear(x[0], x[1], x[2]); }},
        {"linear_1d", {{4}, {4, 2}, {2}}, [](const Vs& x) { return xg::linear(x[0], x[1], x[2]); }},
        {"linear_relu_3d", {{2, 2, 4}, {4, 3}, {3}}, [](const Vs& x) { return xg::linear_relu(x[0], x[1], x[2]); }},
        // torch_linear: W (out, in), rows of any number of leading axes, one row, no bias
        {"torch_linear", {{3, 4}, {2, 4}, {2}}, [](const Vs& x) { return xg::torch_linear(x[0], x[1], x[2]); }},
        {"torch_linear_3d", {{2, 3, 4}, {5, 4}, {5}}, [](const Vs& x) { return xg::torch_linear(x[0], x[1], x[2]); }},
        {"torch_linear_1d", {{4}, {3, 4}, {3}}, [](const Vs& x) { return xg::torch_linear(x[0], x[1], x[2]); }},
        {"torch_linear_no_bias", {{2, 1, 3}, {2, 3}}, [](const Vs& x) { return xg::torch_linear(x[0], x[1]); }},
        // indexing (index_matmul)
        {"index_select_axis0", {{4, 3}}, [](const Vs& x) { return xg::index_select(x[0], 0, {2, 0, 2, 3}); }},
        {"index_select_axis_neg", {{2, 3, 4}}, [](const Vs& x) { return xg::index_select(x[0], -1, {3, 0, 3}); }},
        {"gather_axis1", {{3, 4}}, [](const Vs& x) { return xg::gather(x[0], 1, {{0, 3}, {1, 1}, {2, 0}}); }},
        {"gather_axis_neg_3d", {{2, 3, 2}},
         [](const Vs& x) { return xg::gather(x[0], -2, {{{2, 0}, {0, 0}}, {{1, 2}, {1, 1}}}); }},
        {"gather_smaller_index", {{3, 4}}, [](const Vs& x) { return xg::gather(x[0], 0, {{2, 0, 2}, {1, 1, 0}}); }},
        {"scatter_add_axis0", {{3, 4}, {2, 4}},
         [](const Vs& x) { return xg::scatter_add(x[0], 0, {{0, 2, 2, 1}, {2, 2, 0, 1}}, x[1]); }},
        {"scatter_add_axis_neg_larger_src", {{3, 4}, {3, 3}},
         [](const Vs& x) { return xg::scatter_add(x[0], -1, {{0, 0}, {3, 1}}, x[1]); }},
        {"embedding_1d_ids", {{5, 3}}, [](const Vs& x) { return xg::embedding(x[0], {4, 0, 4}); }},
        {"embedding_2d_ids", {{5, 3}}, [](const Vs& x) { return xg::embedding(x[0], {{0, 4, 4}, {4, 2, 0}}); }},
        // edge values (explicit inputs in the PyTorch fixture: scripts/torch_fixtures/index_matmul.py)
        {"matmul_bcast_large", {{2, 1, 2, 3}, {3, 3, 2}}, [](const Vs& x) { return xg::matmul(x[0], x[1]); }},
        {"embedding_nan_weight", {{4, 2}}, [](const Vs& x) { return xg::embedding(x[0], {3, 1, 3, 3}); }},
        // normalisation: with and without gamma/beta, over one and two trailing axes
        {"layer_norm", {{3, 5}, {5}, {5}}, [](const Vs& x) { return xg::layer_norm(x[0], {5}, x[1], x[2]); }},
        {"layer_norm_no_affine", {{3, 4}}, [](const Vs& x) { return xg::layer_norm(x[0], {4}); }},
        {"layer_norm_gamma_only", {{2, 4}, {4}}, [](const Vs& x) { return xg::layer_norm(x[0], {4}, x[1]); }},
        {"layer_norm_beta_only", {{2, 4}, {4}}, [](const Vs& x) { return xg::layer_norm(x[0], {4}, {}, x[1]); }},
        {"layer_norm_3d_last_axis", {{2, 3, 4}, {4}, {4}},
         [](const Vs& x) { return xg::layer_norm(x[0], {4}, x[1], x[2], 1e-3); }},
        {"layer_norm_3d_two_axes", {{2, 3, 4}, {3, 4}, {3, 4}},
         [](const Vs& x) { return xg::layer_norm(x[0], {3, 4}, x[1], x[2]); }},
        {"layer_norm_whole_input", {{2, 3}}, [](const Vs& x) { return xg::layer_norm(x[0], {2, 3}); }},
        // edge values (explicit inputs in scripts/torch_fixtures/norm.py): large magnitudes, a
        // constant row (variance 0: only eps keeps it finite)
        {"layer_norm_large_magnitude", {{3, 4}, {4}, {4}},
         [](const Vs& x) { return xg::layer_norm(x[0], {4}, x[1], x[2]); }},
        {"layer_norm_constant_row", {{2, 4}, {4}, {4}},
         [](const Vs& x) { return xg::layer_norm(x[0], {4}, x[1], x[2], 1e-2); }},
        // batch_norm (training statistics per channel): (N, C) with and without gamma/beta, (N, C, L),
        // (N, C, H, W) with a spatial size that is not a multiple of a SIMD batch
        {"batch_norm", {{4, 3}, {3}, {3}}, [](const Vs& x) { return xg::batch_norm(x[0], x[1], x[2]); }},
        {"batch_norm_no_affine", {{3, 4}}, [](const Vs& x) { return xg::batch_norm(x[0]); }},
        {"batch_norm_gamma_only", {{3, 2}, {2}}, [](const Vs& x) { return xg::batch_norm(x[0], x[1]); }},
        {"batch_norm_beta_only", {{3, 2}, {2}}, [](const Vs& x) { return xg::batch_norm(x[0], {}, x[1]); }},
        {"batch_norm_3d", {{2, 3, 4}, {3}, {3}}, [](const Vs& x) { return xg::batch_norm(x[0], x[1], x[2], 1e-3); }},
        {"batch_norm_4d", {{2, 3, 2, 3}, {3}, {3}}, [](const Vs& x) { return xg::batch_norm(x[0], x[1], x[2]); }},
        // edge values (explicit inputs in scripts/torch_fixtures/norm.py): large magnitudes, a
        // constant column (variance 0), a channel of two values
        {"batch_norm_large_magnitude", {{3, 4}, {4}, {4}},
         [](const Vs& x) { return xg::batch_norm(x[0], x[1], x[2]); }},
        {"batch_norm_constant_column", {{3, 2}, {2}, {2}},
         [](const Vs& x) { return xg::batch_norm(x[0], x[1], x[2], 1e-2); }},
        {"batch_norm_two_values", {{2, 3}, {3}, {3}}, [](const Vs& x) { return xg::batch_norm(x[0], x[1], x[2]); }},
        // convolution (conv): bias or not, stride + padding, dilation, groups (depthwise too), a
        // non-square kernel with per-axis options, a 1x1 kernel (no columns built); the transposed
        // convolution with stride + output_padding, groups, and dilation with an output_padding at
        // the stride (allowed below the dilation)
        {"conv2d", {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}}, [](const Vs& x) { return xg::conv2d(x[0], x[1], x[2]); }},
        {"conv2d_no_bias", {{2, 3, 5, 5}, {4, 3, 3, 3}}, [](const Vs& x) { return xg::conv2d(x[0], x[1]); }},
        {"conv2d_stride2_pad1", {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}},
         [](const Vs& x) { return xg::conv2d(x[0], x[1], x[2], {.stride = 2, .padding = 1}); }},
        {"conv2d_dilation2", {{2, 2, 5, 5}, {3, 2, 2, 2}, {3}},
         [](const Vs& x) { return xg::conv2d(x[0], x[1], x[2], {.padding = 1, .dilation = 2}); }},
        {"conv2d_groups2", {{2, 4, 5, 5}, {4, 2, 3, 3}, {4}},
         [](const Vs& x) { return xg::conv2d(x[0], x[1], x[2], {.groups = 2}); }},
        {"conv2d_depthwise", {{2, 3, 4, 4}, {3, 1, 3, 3}},
         [](const Vs& x) { return xg::conv2d(x[0], x[1], {}, {.padding = 1, .groups = 3}); }},
        {"conv2d_nonsquare_kernel", {{2, 3, 5, 4}, {2, 3, 3, 2}, {2}},
         [](const Vs& x) { return xg::conv2d(x[0], x[1], x[2], {.stride = {2, 1}, .padding = {1, 0}}); }},
        {"conv2d_1x1", {{2, 3, 4, 4}, {2, 3, 1, 1}, {2}}, [](const Vs& x) { return xg::conv2d(x[0], x[1], x[2]); }},
        // relu(conv2d) as one op (what Sequential runs for Conv2d + ReLU)
        {"conv2d_relu", {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}},
         [](const Vs& x) { return xg::conv2d_relu(x[0], x[1], x[2], {.padding = 1}); }},
        {"conv2d_relu_no_bias_groups2", {{2, 4, 5, 6}, {4, 2, 3, 2}},
         [](const Vs& x) { return xg::conv2d_relu(x[0], x[1], {}, {.stride = 2, .groups = 2}); }},
        // max_pool2d(relu(conv2d), 2) as one op (what Sequential runs for Conv2d, ReLU, MaxPool2d(2))
        {"conv2d_relu_max_pool2d", {{2, 3, 6, 7}, {4, 3, 3, 3}, {4}},
         [](const Vs& x) { return xg::conv2d_relu_max_pool2d(x[0], x[1], x[2], {.padding = 1}); }},
        {"conv2d_relu_max_pool2d_stride2_no_bias", {{2, 2, 9, 8}, {3, 2, 3, 2}},
         [](const Vs& x) { return xg::conv2d_relu_max_pool2d(x[0], x[1], {}, {.stride = 2}); }},
        {"conv2d_relu_max_pool2d_flat", {{2, 3, 6, 7}, {4, 3, 3, 3}, {4}},
         [](const Vs& x) { return xg::conv2d_relu_max_pool2d(x[0], x[1], x[2], {.padding = 1}, {.kernel = 2}, true); }},
        {"conv_transpose2d", {{2, 3, 4, 4}, {3, 2, 3, 3}, {2}},
         [](const Vs& x) { return xg::conv_transpose2d(x[0], x[1], x[2]); }},
        {"conv_transpose2d_no_bias", {{2, 3, 4, 3}, {3, 2, 2, 3}},
         [](const Vs& x) { return xg::conv_transpose2d(x[0], x[1]); }},
        {"conv_transpose2d_stride2_outpad1", {{2, 3, 3, 3}, {3, 2, 3, 3}, {2}},
         [](const Vs& x) {
             return xg::conv_transpose2d(x[0], x[1], x[2], {.stride = 2, .padding = 1, .output_padding = 1});
         }},
        {"conv_transpose2d_groups2", {{2, 4, 3, 3}, {4, 1, 3, 3}, {2}},
         [](const Vs& x) { return xg::conv_transpose2d(x[0], x[1], x[2], {.groups = 2}); }},
        {"conv_transpose2d_dilation2", {{2, 2, 3, 3}, {2, 3, 2, 2}, {3}},
         [](const Vs& x) { return xg::conv_transpose2d(x[0], x[1], x[2], {.output_padding = 1, .dilation = 2}); }},
        // pooling (pool): kernel 2, 3 and (2, 3); stride 1, 2, default and (2, 1); padding 0, 1 and (1, 0);
        // odd sizes. Random inputs have no ties (max_pool2d's gradient jumps at a tie); the *_ties_nan
        // and *_large cases get explicit edge inputs in scripts/torch_fixtures/pool.py
        {"max_pool2d_k2", {{2, 2, 5, 5}}, [](const Vs& x) { return xg::max_pool2d(x[0], {2}); }},
        {"max_pool2d_k3_s1_p1", {{1, 2, 5, 4}}, [](const Vs& x) { return xg::max_pool2d(x[0], {3, 1, 1}); }},
        {"max_pool2d_k3_s2", {{2, 1, 7, 5}}, [](const Vs& x) { return xg::max_pool2d(x[0], {3, 2}); }},
        {"max_pool2d_k2x3_s2x1_p1x0", {{1, 2, 5, 6}},
         [](const Vs& x) { return xg::max_pool2d(x[0], {{2, 3}, xg::Size2(2, 1), xg::Size2(1, 0)}); }},
        {"max_pool2d_ties_nan", {{1, 2, 4, 4}}, [](const Vs& x) { return xg::max_pool2d(x[0], {2, 1, 1}); }},
        {"max_pool2d_large", {{1, 1, 4, 5}}, [](const Vs& x) { return xg::max_pool2d(x[0], {{2, 3}, 1}); }},
        {"avg_pool2d_k2", {{2, 2, 5, 5}}, [](const Vs& x) { return xg::avg_pool2d(x[0], {2}); }},
        {"avg_pool2d_k3_s1_p1", {{1, 2, 5, 4}}, [](const Vs& x) { return xg::avg_pool2d(x[0], {3, 1, 1}); }},
        {"avg_pool2d_k3_s2_p1_exclude_pad", {{2, 1, 7, 5}},
         [](const Vs& x) { return xg::avg_pool2d(x[0], {3, 2, 1}, false); }},
        {"avg_pool2d_k2x3_s2x1_p1x0", {{1, 2, 5, 6}},
         [](const Vs& x) { return xg::avg_pool2d(x[0], {{2, 3}, xg::Size2(2, 1), xg::Size2(1, 0)}); }},
        {"avg_pool2d_k2x3_p1_exclude_pad", {{1, 2, 5, 6}},
         [](const Vs& x) { return xg::avg_pool2d(x[0], {{2, 3}, std::nullopt, 1}, false); }},
        {"avg_pool2d_large", {{1, 1, 4, 5}}, [](const Vs& x) { return xg::avg_pool2d(x[0], {{2, 3}, 1}); }},
        {"adaptive_avg_pool2d_7x5_to_3x2", {{2, 2, 7, 5}}, [](const Vs& x) { return xg::adaptive_avg_pool2d(x[0], {3, 2}); }},
        {"adaptive_avg_pool2d_3x4_to_5x7", {{1, 2, 3, 4}}, [](const Vs& x) { return xg::adaptive_avg_pool2d(x[0], {5, 7}); }},
        {"adaptive_avg_pool2d_global", {{2, 3, 5, 3}}, [](const Vs& x) { return xg::adaptive_avg_pool2d(x[0], 1); }},
        {"adaptive_avg_pool2d_6x6_to_3x3", {{1, 2, 6, 6}}, [](const Vs& x) { return xg::adaptive_avg_pool2d(x[0], 3); }},
        // nn::BatchNorm2d itself (the batch_norm op in training, graph ops with the running statistics in eval)
        {"batch_norm2d_train", {{2, 3, 4, 5}}, [](const Vs& x) { return batch_norm2d_layer(x[0], true); }},
        {"batch_norm2d_eval", {{2, 3, 4, 5}}, [](const Vs& x) { return batch_norm2d_layer(x[0], false); }},
        // attention (scripts/torch_fixtures/attention.py): L != S, E != Ev, batch axes that broadcast,
        // additive masks (differentiable), causal, both, a fully masked row (zeros), one query, scores ~1e4
        {"sdpa", {{2, 3, 4}, {2, 5, 4}, {2, 5, 3}},
         [](const Vs& x) { return xg::scaled_dot_product_attention(x[0], x[1], x[2]); }},
        {"sdpa_mask", {{3, 4}, {5, 4}, {5, 2}, {3, 5}},
         [](const Vs& x) { return xg::scaled_dot_product_attention(x[0], x[1], x[2], x[3]); }},
        {"sdpa_mask_broadcast", {{2, 2, 3, 4}, {2, 1, 5, 4}, {2, 1, 5, 3}, {2, 1, 1, 5}},
         [](const Vs& x) { return xg::scaled_dot_product_attention(x[0], x[1], x[2], x[3]); }},
        {"sdpa_causal", {{2, 4, 3}, {2, 4, 3}, {2, 4, 2}},
         [](const Vs& x) { return xg::scaled_dot_product_attention(x[0], x[1], x[2], {}, true); }},
        {"sdpa_causal_L_ne_S", {{3, 3}, {5, 3}, {5, 2}},
         [](const Vs& x) { return xg::scaled_dot_product_attention(x[0], x[1], x[2], {}, true); }},
        {"sdpa_causal_mask", {{2, 4, 3}, {2, 4, 3}, {2, 4, 3}, {4, 4}},
         [](const Vs& x) { return xg::scaled_dot_product_attention(x[0], x[1], x[2], x[3], true); }},
        {"sdpa_fully_masked_row", {{3, 4}, {4, 4}, {4, 2}},
         [](const Vs& x) {
             constexpr double inf = std::numeric_limits<double>::infinity();
             const V mask(xg::Array<double>{{0.0, 0.5, -1.0, 0.0}, {-inf, -inf, -inf, -inf}, {-inf, 0.0, -inf, 1.0}});
             return xg::scaled_dot_product_attention(x[0], x[1], x[2], mask);
         }},
        {"sdpa_single_query", {{2, 1, 3}, {2, 4, 3}, {2, 4, 3}},
         [](const Vs& x) { return xg::scaled_dot_product_attention(x[0], x[1], x[2]); }},
        {"sdpa_large_scores", {{2, 3}, {4, 3}, {4, 2}},
         [](const Vs& x) { return xg::scaled_dot_product_attention(x[0] * 100.0, x[1] * 100.0, x[2]); }},
        // heads packed in the last axis: L != S, E != Ev, a mask broadcast over N and L, causal, one head
        {"heads_attention", {{2, 3, 4}, {2, 5, 4}, {2, 5, 6}},
         [](const Vs& x) { return xg::heads_attention(x[0], x[1], x[2], 2); }},
        {"heads_attention_causal_mask", {{2, 4, 6}, {2, 4, 6}, {2, 4, 3}, {3, 1, 4}},
         [](const Vs& x) { return xg::heads_attention(x[0], x[1], x[2], 3, x[3], true); }},
        {"heads_attention_one_head", {{1, 3, 2}, {1, 4, 2}, {1, 4, 3}},
         [](const Vs& x) { return xg::heads_attention(x[0], x[1], x[2], 1); }},
        // q, k and v as the thirds of one array: two heads; three heads, causal, a mask over N and L
        {"qkv_attention", {{2, 3, 12}}, [](const Vs& x) { return xg::qkv_attention(x[0], 2); }},
        {"qkv_attention_causal_mask", {{2, 4, 9}, {3, 1, 4}},
         [](const Vs& x) { return xg::qkv_attention(x[0], 3, x[1], true); }},
        // recurrent cells (scripts/torch_fixtures/recurrent.py): h' and c' alone and together (their
        // gradients for the gates add up in place), without state, a step of a sequence's projection
        {"lstm_cell", {{3, 8}, {3, 8}, {3, 2}},
         [](const Vs& x) {
             auto [h, c] = xg::lstm_cell(x[0], x[1], x[2]);
             return h * c;
         }},
        {"lstm_cell_h", {{2, 12}, {2, 12}, {2, 3}}, [](const Vs& x) { return xg::lstm_cell(x[0], x[1], x[2]).first; }},
        {"lstm_cell_c", {{2, 12}, {2, 12}, {2, 3}}, [](const Vs& x) { return xg::lstm_cell(x[0], x[1], x[2]).second; }},
        {"lstm_cell_no_state", {{3, 8}},
         [](const Vs& x) {
             auto [h, c] = xg::lstm_cell(x[0]);
             return h * c;
         }},
        {"lstm_cell_step", {{3, 2, 8}, {2, 8}, {2, 2}},
         [](const Vs& x) {
             auto [h, c] = xg::lstm_cell(x[0], x[1], x[2], 1);
             return h * c;
         }},
        {"lstm_cell_step_no_h", {{2, 3, 4}, {3, 1}},
         [](const Vs& x) {
             auto [h, c] = xg::lstm_cell(x[0], {}, x[1], 0);
             return h + c;
         }},
        {"lstm_cell_large", {{2, 8}, {2, 8}, {2, 2}},
         [](const Vs& x) {
             auto [h, c] = xg::lstm_cell(x[0], x[1], x[2]);
             return h * c;
         }},
        // softmax and losses
        {"softmax", {{3, 4}}, [](const Vs& x) { return xg::softmax(x[0]); }},
        {"softmax_axis0", {{3, 4}}, [](const Vs& x) { return xg::softmax(x[0], 0); }},
        {"log_softmax", {{3, 4}}, [](const Vs& x) { return xg::log_softmax(x[0]); }},
        {"softmax_cross_entropy_labels", {{3, 4}},
         [](const Vs& x) { return xg::softmax_cross_entropy(x[0], xg::Labels{1, 0, 3}); }},
        {"softmax_cross_entropy_sum", {{3, 4}},
         [](const Vs& x) { return xg::softmax_cross_entropy(x[0], xg::Labels{1, 0, 3}, xg::Reduction::sum); }},
        {"softmax_cross_entropy_none", {{3, 4}},
         [](const Vs& x) { return xg::softmax_cross_entropy(x[0], xg::Labels{1, 0, 3}, xg::Reduction::none); }},
        {"softmax_cross_entropy_soft_target", {{3, 4}, {3, 4}},
         [](const Vs& x) { return xg::softmax_cross_entropy(x[0], xg::softmax(x[1])); }},
        {"mean_squared_error", {{3, 4}, {3, 4}}, [](const Vs& x) { return xg::mean_squared_error(x[0], x[1]); }},
        // compositions: a DAG with shared sub-expressions, a two-layer net
        {"shared_subexpression", {{2, 3}},
         [](const Vs& x) {
             V a = xg::exp(x[0]);
             V b = a * a + a;
             return b * a - xg::tanh(b);
         }},
        {"two_layer_net", {{4, 3}, {3, 5}, {5}, {5, 2}, {2}},
         [](const Vs& x) {
             V h = xg::sigmoid(xg::linear(x[0], x[1], x[2]));
             return xg::softmax_cross_entropy(xg::linear(h, x[3], x[4]), xg::Labels{0, 1, 1, 0});
         }},
    };
    return cases;
}

std::vector<V> random_inputs(const OpCase& c, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> any(-2.0, 2.0), magnitude(0.3, 2.0);
    std::bernoulli_distribution sign;
    std::vector<V> xs;
    for (const Shape& s : c.shapes) {
        xg::Array<double> a = xg::Array<double>::from_shape(s);
        for (double& v : a) {
            switch (c.domain) {
                case Domain::any: v = any(gen); break;
                case Domain::positive: v = magnitude(gen); break;
                case Domain::away_from_zero: v = sign(gen) ? magnitude(gen) : -magnitude(gen); break;
            }
        }
        xs.emplace_back(std::move(a), true);
    }
    return xs;
}

std::ostream& operator<<(std::ostream& os, const OpCase& c) { return os << c.name; }

}  // namespace xgt
