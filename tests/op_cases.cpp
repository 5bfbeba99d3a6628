#include "op_cases.hpp"

#include <ostream>
#include <random>

namespace xgt {

using Shape = xg::Shape;
using Vs = std::vector<V>;

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
        // activations
        {"sigmoid", {{3, 4}}, [](const Vs& x) { return xg::sigmoid(x[0]); }},
        {"tanh", {{3, 4}}, [](const Vs& x) { return xg::tanh(x[0]); }},
        {"relu", {{3, 4}}, [](const Vs& x) { return xg::relu(x[0]); }, true, Domain::away_from_zero},
        {"leaky_relu", {{3, 4}}, [](const Vs& x) { return xg::leaky_relu(x[0], 0.1); }, true, Domain::away_from_zero},
        {"softplus", {{3, 4}}, [](const Vs& x) { return xg::softplus(x[0]); }},
        {"leaky_relu_grad", {{3, 4}, {3, 4}}, [](const Vs& x) { return xg::leaky_relu_grad(x[0], x[1], 0.1); }, true,
         Domain::away_from_zero},
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
        // shape
        {"reshape", {{2, 6}}, [](const Vs& x) { return xg::reshape(x[0], {3, -1}); }},
        {"transpose_2d", {{2, 3}}, [](const Vs& x) { return xg::transpose(x[0]); }},
        {"transpose_axes", {{2, 3, 4}}, [](const Vs& x) { return xg::transpose(x[0], {1, 2, 0}); }},
        {"broadcast_to", {{3, 1}}, [](const Vs& x) { return xg::broadcast_to(x[0], Shape{2, 3, 4}); }},
        {"sum_to", {{2, 3, 4}}, [](const Vs& x) { return xg::sum_to(x[0], Shape{3, 1}); }},
        {"rows", {{4, 3}}, [](const Vs& x) { return xg::rows(x[0], {2, 0, 2, 3}); }},
        {"slice_axis0", {{5, 3}}, [](const Vs& x) { return xg::slice(x[0], 0, 1, 4); }},
        {"slice_axis1_step", {{3, 6}}, [](const Vs& x) { return xg::slice(x[0], -1, 0, 6, 2); }},
        {"concatenate_axis0", {{2, 3}, {1, 3}, {3, 3}}, [](const Vs& x) { return xg::concatenate(x, 0); }},
        {"concatenate_axis1", {{2, 3}, {2, 2}}, [](const Vs& x) { return xg::concatenate(x, 1); }},
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
        {"matmul_batched_ta_tb", {{2, 4, 3}, {2, 2, 4}}, [](const Vs& x) { return xg::matmul(x[0], x[1], true, true); }},
        {"bmm", {{2, 3, 4}, {2, 4, 2}}, [](const Vs& x) { return xg::bmm(x[0], x[1]); }},
        {"linear_3d", {{2, 3, 4}, {4, 2}, {2}}, [](const Vs& x) { return xg::linear(x[0], x[1], x[2]); }},
        {"linear_1d", {{4}, {4, 2}, {2}}, [](const Vs& x) { return xg::linear(x[0], x[1], x[2]); }},
        {"linear_relu_3d", {{2, 2, 4}, {4, 3}, {3}}, [](const Vs& x) { return xg::linear_relu(x[0], x[1], x[2]); }},
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
