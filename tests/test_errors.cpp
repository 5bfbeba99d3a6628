// Bad input raises an exception that names the op and the shapes; never a crash.
#include <boost/test/unit_test.hpp>

#include <limits>
#include <string>

#include "expect_error.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;

namespace {
using xgt::expect_error;
V zeros(std::initializer_list<std::size_t> shape) { return V(A(xt::zeros<double>(std::vector<std::size_t>(shape))), true); }
}  // namespace

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(matmul_shape_mismatch_names_op_and_shapes) {
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({128, 784}), zeros({100, 10})); },
                                 {"matmul", "(128, 784)", "(100, 10)"});
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({3}), zeros({4, 2})); }, {"matmul", "(3,)", "(4, 2)"});
    expect_error<xg::ShapeError>([] { xg::linear(zeros({4, 3}), zeros({3, 2}), zeros({3})); },
                                 {"linear", "bias", "(3,)"});
    expect_error<xg::ShapeError>([] { xg::linear_relu(zeros({4, 3}), zeros({3, 2}), zeros({3})); },
                                 {"linear_relu", "bias", "(3,)", "(4, 2)"});
    expect_error<xg::ShapeError>([] { xg::linear_relu(zeros({4, 5}), zeros({3, 2})); },
                                 {"linear_relu", "(4, 5)", "(3, 2)"});
    // A weight of more than two dimensions is refused, even one whose matrix would fit.
    expect_error<xg::ShapeError>([] { xg::linear(zeros({4, 3}), zeros({1, 3, 2})); },
                                 {"linear", "(4, 3)", "(1, 3, 2)"});
    expect_error<xg::ShapeError>([] { xg::linear(zeros({2, 4, 3}), zeros({3, 2, 1})); },
                                 {"linear", "(3, 2, 1)"});
    // torch_linear: W (out, in); a (1, out, in) weight, a wrong bias or in, a 0-d input
    expect_error<xg::ShapeError>([] { xg::torch_linear(zeros({4, 3}), zeros({1, 2, 3})); },
                                 {"torch_linear", "(4, 3)", "(1, 2, 3)"});
    expect_error<xg::ShapeError>([] { xg::torch_linear(zeros({4, 3}), zeros({2, 3}), zeros({3})); },
                                 {"torch_linear", "(2, 3)", "b (3,)"});
    expect_error<xg::ShapeError>([] { xg::torch_linear(zeros({2, 4, 2}), zeros({2, 3})); },
                                 {"torch_linear", "(2, 4, 2)", "(2, 3)"});
    expect_error<xg::ShapeError>([] { xg::torch_linear(zeros({}), zeros({2, 3})); }, {"torch_linear", "()"});
    expect_error<xg::ValueError>([] { xg::torch_linear(xg::Variable<double>(), zeros({2, 3})); }, {"torch_linear"});
}

BOOST_AUTO_TEST_CASE(incompatible_broadcast) {
    expect_error<xg::ShapeError>([] { xg::add(zeros({2, 3}), zeros({4})); }, {"add", "(2, 3)", "(4,)"});
    expect_error<xg::ShapeError>([] { xg::mul(zeros({2, 3}), zeros({3, 2})); }, {"mul", "(2, 3)", "(3, 2)"});
    expect_error<xg::ShapeError>([] { xg::broadcast_to(zeros({3}), xg::Shape{2, 4}); }, {"broadcast_to", "(3,)", "(2, 4)"});
    expect_error<xg::ShapeError>([] { xg::sum_to(zeros({2, 3}), xg::Shape{4}); }, {"sum_to", "(2, 3)", "(4,)"});
}

BOOST_AUTO_TEST_CASE(backward_of_non_scalar_needs_gradient) {
    V y = zeros({2, 3}) * 2.0;
    expect_error<xg::GraphError>([&] { y.backward(); }, {"backward", "(2, 3)", "not a scalar"});
    expect_error<xg::ShapeError>([&] { y.backward(V(A{1.0, 2.0})); }, {"backward", "(2,)", "(2, 3)"});
}

BOOST_AUTO_TEST_CASE(shape_op_errors) {
    expect_error<xg::ShapeError>([] { xg::reshape(zeros({2, 3}), {4, 2}); }, {"reshape", "(2, 3)", "(4, 2)"});
    expect_error<xg::ShapeError>([] { xg::reshape(zeros({2, 3}), {4, -1}); }, {"reshape", "(2, 3)"});
    expect_error<xg::ShapeError>([] { xg::transpose(zeros({2, 3}), {0, 0}); }, {"transpose", "(2, 3)"});
    expect_error<xg::IndexError>([] { xg::sum(zeros({2, 3}), 2); }, {"sum", "axis 2"});
    expect_error<xg::IndexError>([] { xg::rows(zeros({2, 3}), {0, 5}); }, {"rows", "index 5", "(2, 3)"});
    expect_error<xg::IndexError>([] { xg::slice(zeros({2, 3}), 1, 1, 4); }, {"slice", "(2, 3)"});
    expect_error<xg::ShapeError>([] { xg::concatenate<double>({zeros({2, 3}), zeros({2, 2})}, 0); },
                                 {"concatenate", "(2, 2)", "(2, 3)"});
    expect_error<xg::ShapeError>([] { xg::mean_squared_error(zeros({3}), zeros({3, 1})); },
                                 {"mean_squared_error", "(3,)", "(3, 1)"});
}

BOOST_AUTO_TEST_CASE(cross_entropy_errors) {
    expect_error<xg::ShapeError>([] { xg::softmax_cross_entropy(zeros({0, 10}), xg::Labels{}); },
                                 {"softmax_cross_entropy", "empty batch", "(0, 10)"});
    expect_error<xg::ShapeError>([] { xg::softmax_cross_entropy(zeros({3, 10}), xg::Labels{1, 2}); },
                                 {"softmax_cross_entropy", "(3, 10)", "2 labels"});
    expect_error<xg::IndexError>([] { xg::softmax_cross_entropy(zeros({2, 10}), xg::Labels{1, 10}); },
                                 {"softmax_cross_entropy", "label 10", "row 1"});
    expect_error<xg::ShapeError>([] { xg::softmax_cross_entropy(zeros({2, 10}), zeros({2, 9})); },
                                 {"softmax_cross_entropy", "(2, 10)", "(2, 9)"});
}

BOOST_AUTO_TEST_CASE(undefined_variable) {
    V undefined;
    expect_error<xg::GraphError>([&] { xg::exp(undefined); }, {"exp", "undefined"});
    expect_error<xg::GraphError>([&] { (void)undefined.data(); }, {"undefined"});
}

BOOST_AUTO_TEST_CASE(anomaly_mode_names_the_forward_op) {
    V x(A{1.0, -1.0}, true);
    {
        V y = xg::log(x);  // NaN, allowed outside anomaly mode
        BOOST_TEST(std::isnan(y.data()(1)));
    }
    xg::AnomalyGuard anomaly;
    expect_error<xg::ValueError>([&] { xg::log(x); }, {"anomaly", "log", "NaN"});
    expect_error<xg::ValueError>([&] { xg::exp(x * 1000.0); }, {"anomaly", "exp", "Inf"});
}

BOOST_AUTO_TEST_CASE(anomaly_mode_names_the_backward_op) {
    V x(A{0.0, 4.0}, true);
    V y = xg::sum(xg::sqrt(x));  // forward is finite; d/dx sqrt(x) at 0 is Inf
    xg::AnomalyGuard anomaly;
    expect_error<xg::ValueError>([&] { y.backward(); }, {"anomaly", "in the backward of sqrt", "Inf"});
}

BOOST_AUTO_TEST_CASE(freed_graph_names_the_op) {
    V x(A{1.0, 2.0}, true);
    V y = xg::sum(xg::exp(x));
    y.backward();
    expect_error<xg::GraphError>([&] { y.backward(); }, {"sum", "retain_graph"});
}

BOOST_AUTO_TEST_CASE(reduction_errors) {
    // axes out of range, repeated, or an empty reduction without a value
    expect_error<xg::IndexError>([] { xg::min(zeros({2, 3}), -3); }, {"min", "axis -3"});
    expect_error<xg::IndexError>([] { xg::sum(zeros({2, 3}), {0, 2}); }, {"sum", "axis 2"});
    expect_error<xg::ValueError>([] { xg::sum(zeros({2, 3}), {1, -1}); }, {"sum", "axis 1", "more than once", "(1, -1)"});
    expect_error<xg::ValueError>([] { xg::mean(zeros({2, 3}), {0, 0}); }, {"mean", "axis 0", "more than once"});
    expect_error<xg::ValueError>([] { xg::max(zeros({2, 3, 4}), {2, -1}); }, {"max", "axis 2", "more than once"});
    expect_error<xg::ValueError>([] { xg::min(zeros({2, 3, 4}), {0, -3}); }, {"min", "axis 0", "more than once"});
    expect_error<xg::ValueError>([] { xg::var(zeros({2, 3}), {1, 1}); }, {"var", "more than once"});
    expect_error<xg::ValueError>([] { xg::std(zeros({2, 3}), {0, -2}); }, {"std", "more than once"});
    expect_error<xg::IndexError>([] { xg::logsumexp(zeros({2, 3}), 2); }, {"logsumexp", "axis 2"});
    expect_error<xg::IndexError>([] { xg::var(zeros({2, 3}), 5); }, {"var", "axis 5"});
    expect_error<xg::IndexError>([] { xg::std(zeros({2, 3}), -3); }, {"std", "axis -3"});
    expect_error<xg::IndexError>([] { xg::prod(zeros({2, 3}), 2); }, {"prod", "axis 2"});
    expect_error<xg::IndexError>([] { xg::argmax(zeros({2, 3}), 2); }, {"argmax", "axis 2"});
    expect_error<xg::IndexError>([] { xg::argmin(zeros({2, 3}), -3); }, {"argmin", "axis -3"});
    expect_error<xg::ValueError>([] { xg::var(zeros({2, 3}), 1, -1); }, {"var", "correction", "-1"});
    expect_error<xg::ShapeError>([] { xg::min(zeros({0, 3})); }, {"min", "empty", "(0, 3)"});
    expect_error<xg::ShapeError>([] { xg::min(zeros({2, 0}), 1); }, {"min", "empty", "(2, 0)", "axis 1"});
    expect_error<xg::ShapeError>([] { xg::max(zeros({2, 0, 3}), {1, 2}); }, {"max", "empty", "(2, 0, 3)", "(1, 2)"});
    expect_error<xg::ShapeError>([] { xg::mean(zeros({2, 0, 3}), {0, 1}); }, {"mean", "empty", "(2, 0, 3)"});
    expect_error<xg::ShapeError>([] { xg::var(zeros({0, 3})); }, {"var", "empty", "(0, 3)"});
    expect_error<xg::ShapeError>([] { xg::std(zeros({3, 0}), 1); }, {"std", "empty", "(3, 0)"});
    expect_error<xg::ShapeError>([] { xg::argmax(zeros({0, 3}), 0); }, {"argmax", "empty", "(0, 3)"});
    expect_error<xg::ShapeError>([] { xg::argmin(zeros({0})); }, {"argmin", "empty", "(0,)"});
}

BOOST_AUTO_TEST_CASE(new_shape_op_errors) {
    expect_error<xg::IndexError>([] { xg::squeeze(zeros({2, 1}), 2); }, {"squeeze", "axis 2"});
    expect_error<xg::IndexError>([] { xg::unsqueeze(zeros({2, 3}), 3); }, {"unsqueeze", "axis 3"});
    expect_error<xg::IndexError>([] { xg::unsqueeze(zeros({2, 3}), -4); }, {"unsqueeze", "axis -4"});
    expect_error<xg::IndexError>([] { xg::flatten(zeros({2, 3}), 0, 2); }, {"flatten", "axis 2"});
    expect_error<xg::ValueError>([] { xg::flatten(zeros({2, 3, 4}), 2, 1); }, {"flatten", "start axis 2", "end axis 1", "(2, 3, 4)"});
    expect_error<xg::ShapeError>([] { xg::stack<double>({zeros({2, 3}), zeros({3, 2})}); }, {"stack", "input 1", "(3, 2)", "(2, 3)"});
    expect_error<xg::ShapeError>([] { xg::stack<double>({}); }, {"stack", "no inputs"});
    expect_error<xg::IndexError>([] { xg::stack<double>({zeros({2, 3}), zeros({2, 3})}, 3); }, {"stack", "axis 3"});
    expect_error<xg::ShapeError>([] { xg::split(zeros({5, 2}), {2, 2}); }, {"split", "(2, 2)", "add up to 4", "size 5", "(5, 2)"});
    expect_error<xg::ValueError>([] { xg::split(zeros({5, 2}), {6, -1}); }, {"split", "negative size -1"});
    expect_error<xg::ValueError>([] { xg::split(zeros({5, 2}), 0); }, {"split", "split size 0", "(5, 2)"});
    expect_error<xg::IndexError>([] { xg::split(zeros({5, 2}), 2, 2); }, {"split", "axis 2"});
    expect_error<xg::ValueError>([] { xg::chunk(zeros({5, 2}), 0); }, {"chunk", "positive", "0"});
    expect_error<xg::IndexError>([] { xg::chunk(zeros({5, 2}), 2, -3); }, {"chunk", "axis -3"});
    expect_error<xg::ShapeError>([] { xg::pad(zeros({2, 3}), {{1, 1}}); }, {"pad", "1 (before, after) pairs", "(2, 3)"});
    expect_error<xg::ShapeError>([] { xg::pad(zeros({2, 3}), {{0, 0}, {-2, -2}}); }, {"pad", "(-2, -2)", "axis 1", "(2, 3)"});
    expect_error<xg::IndexError>([] { xg::flip(zeros({2, 3}), {2}); }, {"flip", "axis 2"});
    expect_error<xg::ValueError>([] { xg::flip(zeros({2, 3}), {1, -1}); }, {"flip", "axis 1", "more than once"});
    expect_error<xg::ShapeError>([] { xg::repeat(zeros({2, 3}), {2}); }, {"repeat", "(2)", "(2, 3)"});
    expect_error<xg::ValueError>([] { xg::repeat(zeros({2, 3}), {2, -1}); }, {"repeat", "negative", "(2, -1)"});
    expect_error<xg::ValueError>([] { xg::tile(zeros({2, 3}), {-2}); }, {"tile", "negative", "(-2)"});
    expect_error<xg::ShapeError>([] { xg::permute(zeros({2, 3}), {0}); }, {"permute", "(0)", "(2, 3)"});
    expect_error<xg::ValueError>([] { xg::permute(zeros({2, 3}), {1, -1}); }, {"permute", "more than once"});
    expect_error<xg::IndexError>([] { xg::permute(zeros({2, 3}), {0, 2}); }, {"permute", "axis 2"});
    expect_error<xg::ShapeError>([] { xg::expand(zeros({2, 3}), {4, 3}); }, {"expand", "(2, 3)", "(4, 3)", "axis 0"});
    expect_error<xg::ShapeError>([] { xg::expand(zeros({2, 3}), {3}); }, {"expand", "(2, 3)", "fewer"});
    expect_error<xg::ShapeError>([] { xg::expand(zeros({2, 3}), {-1, 2, 3}); }, {"expand", "-1", "leading"});
    expect_error<xg::ShapeError>([] { xg::expand(zeros({2, 1}), {2, -2}); }, {"expand", "negative"});
    // sizes beyond any array: a named error before any arithmetic could wrap around
    static constexpr long huge = std::numeric_limits<long>::max();
    expect_error<xg::ResourceError>([] { xg::pad(zeros({2}), {{huge, 0}}); }, {"pad", "(2,)"});
    expect_error<xg::ResourceError>([] { xg::pad(zeros({2}), {{0, 1L << 60}}); }, {"pad", "(2,)"});
    expect_error<xg::ResourceError>([] { xg::repeat(zeros({2, 3}), {1L << 40, 1L << 40}); }, {"repeat"});
    expect_error<xg::ResourceError>([] { xg::expand(zeros({1}), {1L << 40, 1L << 40}); }, {"expand"});
    expect_error<xg::ShapeError>([] { xg::split(zeros({5}), {huge, huge, 5}); }, {"split", "more than 5"});
    BOOST_TEST(xg::chunk(zeros({5}), huge).size() == 5u);
}

BOOST_AUTO_TEST_SUITE_END()
