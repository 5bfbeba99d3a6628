// Forward values against closed forms, and numerical stability at extreme inputs.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include <xtensor/xbroadcast.hpp>

#include "fixtures.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::mat;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(values)

BOOST_AUTO_TEST_CASE(broadcasting_forward) {
    V a(mat({{1.0}, {2.0}, {3.0}}));
    V b(A{{10.0, 20.0, 30.0, 40.0}});
    V c = a + b;
    BOOST_TEST(c.shape() == xg::Shape({3, 4}), tt::per_element());
    BOOST_TEST(c.data()(2, 3) == 43.0);
    V d = V(A{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}) * V(A{1.0, 0.0, -1.0});
    BOOST_TEST(d.data() == A({{1.0, 0.0, -3.0}, {4.0, 0.0, -6.0}}), tt::per_element());
}

// Each path of the elementwise broadcast (equal shapes, one element, a row of the other operand
// in either order and with leading 1s, the general case) against xtensor's broadcasting, for the
// operators whose order matters; rows of 5 and 9 elements leave a tail after the SIMD lanes.
BOOST_AUTO_TEST_CASE(broadcast_paths_agree_with_xtensor) {
    const std::vector<std::pair<xg::Shape, xg::Shape>> pairs{
        {{3, 5}, {3, 5}}, {{3, 5}, {}},        {{3, 5}, {1}},          {{3, 5}, {5}},       {{5}, {3, 5}},
        {{2, 3, 9}, {9}}, {{2, 3, 9}, {3, 9}}, {{2, 3, 9}, {1, 1, 9}}, {{1, 9}, {2, 3, 9}}, {{3, 1}, {1, 5}},
        {{2, 1, 5}, {3, 5}}, {{4, 0}, {0}},    {{1, 1, 9}, {2, 9}}};
    unsigned seed = 1;
    for (const auto& [sa, sb] : pairs) {
        const A a = xgt::random_array(sa, seed++), b = xgt::random_array(sb, seed++, 0.5, 2.0);
        BOOST_TEST_CONTEXT(xg::shape_str(sa) << " with " << xg::shape_str(sb)) {
            BOOST_TEST(xgt::close((V(a) - V(b)).data(), A(a - b), 0.0));
            BOOST_TEST(xgt::close((V(b) - V(a)).data(), A(b - a), 0.0));
            BOOST_TEST(xgt::close((V(a) / V(b)).data(), A(a / b), 0.0));
            BOOST_TEST(xgt::close((V(a) * V(b)).data(), A(a * b), 0.0));
        }
    }
}

// sum_to onto a row of the input (a bias's gradient takes this path) against xtensor's sums,
// rows of 9 elements (a tail after the SIMD lanes), leading 1s kept, and a column (the other path).
BOOST_AUTO_TEST_CASE(sum_to_rows_agrees_with_xtensor) {
    const A a = xgt::random_array({2, 3, 9}, 7);
    const auto got = [&](const xg::Shape& s) { return xg::sum_to(V(a), s).data(); };
    BOOST_TEST(xgt::close(got({9}), A(xt::sum(a, {0, 1})), 1e-15));
    BOOST_TEST(xgt::close(got({3, 9}), A(xt::sum(a, {0})), 1e-15));
    BOOST_TEST(xgt::close(got({1, 1, 9}), A(xt::sum(a, {0, 1}, xt::keep_dims)), 1e-15));
    BOOST_TEST(xgt::close(got({2, 3, 9}), a, 0.0));
    A column = xt::sum(a, {0, 2});
    column.reshape({3, 1});
    BOOST_TEST(xgt::close(got({3, 1}), column, 1e-15));
}

BOOST_AUTO_TEST_CASE(broadcast_gradient_is_reduced_to_input_shape) {
    V a(mat({{1.0}, {2.0}, {3.0}}), true);
    V b(A{{10.0, 20.0, 30.0, 40.0}}, true);
    xg::sum(a * b).backward();
    BOOST_TEST(a.grad().data() == mat({{100.0}, {100.0}, {100.0}}), tt::per_element());
    BOOST_TEST(b.grad().data() == A({{6.0, 6.0, 6.0, 6.0}}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(matmul_and_linear_values) {
    V a(A{{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}});
    V b(A{{1.0, 0.0, 2.0}, {0.0, 1.0, -1.0}});
    BOOST_TEST(xg::matmul(a, b).data() == A({{1, 2, 0}, {3, 4, 2}, {5, 6, 4}}), tt::per_element());
    BOOST_TEST(xg::matmul(b, a, true, true).data() == A({{1, 3, 5}, {2, 4, 6}, {0, 2, 4}}), tt::per_element());
    V bias(A{0.5, -0.5, 1.0});
    BOOST_TEST(xg::linear(a, b, bias).data() == A({{1.5, 1.5, 1}, {3.5, 3.5, 3}, {5.5, 5.5, 5}}), tt::per_element());
    xg::Variable<float> af(xg::Array<float>{{1.f, 2.f}}), bf(xg::Array<float>(xt::nested_initializer_list_t<float, 2>{{3.f}, {4.f}}));
    BOOST_TEST(xg::matmul(af, bf).item() == 11.f);
}

BOOST_AUTO_TEST_CASE(activations_values) {
    V x(A{-1000.0, -1.0, 0.0, 1.0, 1000.0});
    const A s = xg::sigmoid(x).data();
    BOOST_TEST(s(0) == 0.0);
    BOOST_TEST(s(1) == 1.0 / (1.0 + std::exp(1.0)), tt::tolerance(1e-14));
    BOOST_TEST(s(2) == 0.5);
    BOOST_TEST(s(4) == 1.0);
    const A sp = xg::softplus(x).data();
    BOOST_TEST(sp(0) == 0.0);
    BOOST_TEST(sp(2) == std::log(2.0), tt::tolerance(1e-14));
    BOOST_TEST(sp(3) == std::log1p(std::exp(1.0)), tt::tolerance(1e-14));
    BOOST_TEST(sp(4) == 1000.0);  // no overflow
    BOOST_TEST(xg::relu(x).data() == A({0, 0, 0, 1, 1000}), tt::per_element());
    BOOST_TEST(xg::leaky_relu(x, 0.1).data() == A({-100, -0.1, 0, 1, 1000}), tt::tolerance(1e-12) << tt::per_element());
    BOOST_TEST(xg::tanh(x).data()(3) == std::tanh(1.0), tt::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(softplus_gradient_is_sigmoid) {
    V x(A{-30.0, 0.0, 2.0, 30.0}, true);
    xg::sum(xg::softplus(x)).backward();
    BOOST_TEST(x.grad().data() == xg::sigmoid(x.detach()).data(), tt::tolerance(1e-14) << tt::per_element());
}

BOOST_AUTO_TEST_CASE(softmax_is_stable_and_normalised) {
    V x(A{{1000.0, 1001.0, 1002.0}, {-1000.0, 0.0, 1000.0}});
    const A p = xg::softmax(x).data();
    const double z = 1 + std::exp(1.0) + std::exp(2.0);
    BOOST_TEST(p(0, 0) == 1 / z, tt::tolerance(1e-12));
    BOOST_TEST(p(0, 2) == std::exp(2.0) / z, tt::tolerance(1e-12));
    BOOST_TEST(p(1, 2) == 1.0);
    const A lp = xg::log_softmax(x).data();
    BOOST_TEST(lp(1, 0) == -2000.0, tt::tolerance(1e-12));  // finite, not -inf
    BOOST_TEST(lp(0, 0) == -std::log(z), tt::tolerance(1e-12));
    const double loss = xg::softmax_cross_entropy(x, xg::Labels{0, 0}).item();
    BOOST_TEST(loss == (std::log(z) + 2000.0) / 2, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(cross_entropy_onehot_matches_labels) {
    A logits = {{0.2, -1.0, 3.0}, {1.0, 1.0, 1.0}};
    const double l1 = xg::softmax_cross_entropy(V(logits), xg::Labels{2, 1}).item();
    const double l2 = xg::softmax_cross_entropy(V(logits), V(A{{0, 0, 1}, {0, 1, 0}})).item();
    BOOST_TEST(l1 == l2, tt::tolerance(1e-14));
    BOOST_TEST(xg::softmax_cross_entropy(V(A{{1.0, 1.0, 1.0}}), xg::Labels{1}).item() == std::log(3.0),
               tt::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(cross_entropy_of_labels_is_minus_log_softmax_at_the_label_exactly) {
    // the op sums -t_j log p_j in running sums: with one-hot targets the other terms are zeros,
    // so each row's loss is exactly -log_softmax at its label, as one chain of sums gives
    for (const std::size_t c : {3, 10, 96, 97}) {
        const A x = xgt::random_array({5, c}, unsigned(c), -20.0, 20.0);
        const auto k = static_cast<std::int64_t>(c);
        const xg::Labels labels{0, k - 1, k / 2, 1, k - 2};
        const A loss = xg::softmax_cross_entropy(V(x), labels, xg::Reduction::none).data();
        const A lp = xg::log_softmax(V(x), 1).data();
        for (std::size_t i = 0; i < labels.size(); ++i)
            BOOST_TEST(loss(i) == -lp(i, labels[i]), "classes " << c << " row " << i);
    }
}

// Labels take their own route (no one-hot array, the gradient in one pass): the same bits as the
// one-hot target's route, loss and gradient, for every reduction, float and double.
template <class T>
void labels_and_onehot_agree_bitwise() {
    using AT = xg::Array<T>;
    using VT = xg::Variable<T>;
    const std::size_t n = 6, c = 97;
    const AT x = xt::cast<T>(xgt::random_array({n, c}, 7, -30.0, 30.0));
    const xg::Labels labels{0, c - 1, 5, 5, 48, 1};
    AT onehot = xt::zeros<T>({n, c});
    for (std::size_t i = 0; i < n; ++i) onehot(i, static_cast<std::size_t>(labels(i))) = T(1);
    for (const auto r : {xg::Reduction::mean, xg::Reduction::sum, xg::Reduction::none}) {
        VT a(x, true), b(x, true);
        const VT la = xg::softmax_cross_entropy(a, labels, r), lb = xg::softmax_cross_entropy(b, VT(onehot), r);
        BOOST_TEST(la.data() == lb.data(), tt::per_element());
        const AT g = xt::cast<T>(xgt::random_array(la.shape(), 3, 0.5, 2.0));
        la.backward(VT(g));
        lb.backward(VT(g));
        BOOST_TEST(a.grad().data() == b.grad().data(), tt::per_element());
    }
}

BOOST_AUTO_TEST_CASE(cross_entropy_labels_and_onehot_agree_bitwise) {
    labels_and_onehot_agree_bitwise<float>();
    labels_and_onehot_agree_bitwise<double>();
}

BOOST_AUTO_TEST_CASE(mean_squared_error_value) {
    BOOST_TEST(xg::mean_squared_error(V(A{1.0, 2.0, 4.0}), V(A{1.0, 0.0, 1.0})).item() == 13.0 / 3.0,
               tt::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(reductions_values) {
    V x(A{{1.0, 5.0, 3.0}, {4.0, 2.0, 6.0}});
    BOOST_TEST(xg::sum(x).item() == 21.0);
    BOOST_TEST(xg::sum(x, 0).data() == A({5, 7, 9}), tt::per_element());
    BOOST_TEST(xg::sum(x, -1, true).shape() == xg::Shape({2, 1}), tt::per_element());
    BOOST_TEST(xg::mean(x, 1).data() == A({3, 4}), tt::per_element());
    BOOST_TEST(xg::mean(x).item() == 3.5);
    BOOST_TEST(xg::max(x, 1).data() == A({5, 6}), tt::per_element());
    BOOST_TEST(xg::max(x).item() == 6.0);
}

BOOST_AUTO_TEST_CASE(max_ties_share_the_gradient) {
    V x(A{{2.0, 2.0, 1.0}}, true);
    xg::sum(xg::max(x, 1)).backward();
    BOOST_TEST(x.grad().data() == A({{0.5, 0.5, 0.0}}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(shape_ops_values) {
    V x(A{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9, 10, 11}});
    BOOST_TEST(xg::rows(x, {3, 0}).data() == A({{9, 10, 11}, {0, 1, 2}}), tt::per_element());
    BOOST_TEST(xg::slice(x, 0, 1, 3).data() == A({{3, 4, 5}, {6, 7, 8}}), tt::per_element());
    BOOST_TEST(xg::slice(x, 1, 0, 3, 2).data() == A({{0, 2}, {3, 5}, {6, 8}, {9, 11}}), tt::per_element());
    BOOST_TEST(xg::reshape(x, {-1}).shape() == xg::Shape({12}), tt::per_element());
    BOOST_TEST(xg::transpose(x).data()(2, 3) == 11.0);
    BOOST_TEST(xg::sum_to(x, xg::Shape{1, 3}).data() == A({{18, 22, 26}}), tt::per_element());
    BOOST_TEST(xg::broadcast_to(V(A{1.0, 2.0}), xg::Shape{2, 2}).data() == A({{1, 2}, {1, 2}}), tt::per_element());
    const V c = xg::concatenate<double>({V(A{{1.0, 2.0}}), V(A{{3.0, 4.0}, {5.0, 6.0}})}, 0);
    BOOST_TEST(c.data() == A({{1, 2}, {3, 4}, {5, 6}}), tt::per_element());
}

// broadcast_to's own loops against xtensor's broadcast: copied runs, filled runs, both at once,
// broadcasts in the middle, new leading axes, a scalar, empty outputs.
BOOST_AUTO_TEST_CASE(broadcast_to_agrees_with_xtensor) {
    const std::vector<std::pair<xg::Shape, xg::Shape>> cases{
        {{3}, {4, 3}},          {{4, 1}, {4, 3}},       {{1, 3}, {5, 3}},       {{2, 1, 4}, {2, 3, 4}},
        {{1, 3, 1}, {2, 3, 4}}, {{3, 1}, {2, 3, 4}},    {{2, 1, 1}, {2, 3, 4}}, {{1}, {2, 3}},
        {{}, {2, 2}},           {{1, 1}, {3, 1}},       {{2, 3}, {2, 3}},       {{0, 3}, {2, 0, 3}},
        {{1, 3}, {0, 3}},       {{5, 1, 2, 1}, {5, 3, 2, 4}}};
    for (const auto& [from, to] : cases) {
        A x = A::from_shape(from);
        std::iota(x.begin(), x.end(), 1.0);
        const A want = xt::broadcast(x, to);
        BOOST_TEST_CONTEXT(xg::shape_str(from) << " -> " << xg::shape_str(to)) {
            const A got = xg::broadcast_to(V(x), to).data();
            BOOST_TEST(got.shape() == want.shape(), tt::per_element());
            BOOST_TEST(got == want, tt::per_element());
        }
    }
}

// sum_to onto a row (a bias's gradient) sums each column in row order, in register blocks of
// columns and a tail: the bits of the plain loop, for widths around the block size.
BOOST_AUTO_TEST_CASE(sum_to_a_row_keeps_row_order_bits) {
    for (const std::size_t w : {1, 7, 31, 32, 33, 64, 70, 512}) {
        const std::size_t rows = 37;
        const xg::Array<float> x = xt::cast<float>(xgt::random_array({rows, w}, unsigned(w), -100.0, 100.0));
        xg::Array<float> want = xt::zeros<float>({std::size_t{1}, w});
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < w; ++j) want(0, j) += x(r, j);
        const xg::Array<float> got = xg::sum_to(xg::Variable<float>(x), xg::Shape{1, w}).data();
        BOOST_TEST(std::memcmp(got.data(), want.data(), w * sizeof(float)) == 0, "width " << w);
    }
}

BOOST_AUTO_TEST_CASE(rows_gradient_scatters_repeated_indices) {
    V x(A{{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}}, true);
    xg::sum(xg::rows(x, {2, 0, 2})).backward();
    BOOST_TEST(x.grad().data() == A({{1, 1}, {0, 0}, {2, 2}}), tt::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
