// Values of the reductions and shape ops of issue 13 at the edges the op list avoids: ties, NaN,
// zeros, infinities, large magnitudes and empty shapes (the gradients elsewhere are gradchecked
// in tests/op_cases.cpp).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xmanipulation.hpp>

#include "expect_error.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
using I = xt::xarray<std::int64_t>;
namespace tt = boost::test_tools;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

V param(A a) { return V(std::move(a), true); }
V zeros(const xg::Shape& s) { return V(xg::full(s, 0.0), true); }
A grad_of(const V& y, const V& x) {
    xg::sum(y).backward();
    return x.grad().data();
}
bool same_shape(const V& v, const xg::Shape& s) { return v.shape() == s; }
}  // namespace

BOOST_AUTO_TEST_SUITE(reduce_shape)

BOOST_AUTO_TEST_CASE(min_values_ties_and_nan) {
    V x = param(A{{3.0, 1.0, 1.0}, {0.0, 5.0, -2.0}});
    BOOST_TEST(xg::min(x).item() == -2.0);
    BOOST_TEST(xg::min(x, 1).data() == A({1.0, -2.0}), tt::per_element());
    BOOST_TEST(xg::min(x, 0, true).data() == A({{0.0, 1.0, -2.0}}), tt::per_element());
    // ties share the gradient equally, as max's (torch.amin's rule)
    BOOST_TEST(grad_of(xg::min(x, 1), x) == A({{0.0, 0.5, 0.5}, {0.0, 0.0, 1.0}}), tt::per_element());
    // a NaN anywhere in a lane makes its minimum NaN
    V y(A{{1.0, kNaN, -1.0}, {2.0, 3.0, 4.0}});
    const A m = xg::min(y, 1).data();
    BOOST_TEST(std::isnan(m(0)));
    BOOST_TEST(m(1) == 2.0);
    BOOST_TEST(std::isnan(xg::min(y).item()));
    BOOST_TEST(std::isnan(xg::max(y, {0, 1}).item()));
    // the gradient goes to the NaNs of the lane (torch.amax/amin's would be NaN for the whole lane)
    V z = param(A{{1.0, kNaN, -1.0, kNaN}});
    BOOST_TEST(grad_of(xg::min(z, 1), z) == A({{0.0, 0.5, 0.0, 0.5}}), tt::per_element());
    xg::Variable<float> f(xg::Array<float>{2.f, -3.f, 1.f});
    BOOST_TEST(xg::min(f).item() == -3.f);
}

BOOST_AUTO_TEST_CASE(several_axes_match_one_at_a_time) {
    A a = A::from_shape({2, 3, 4});
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = std::sin(static_cast<double>(i) * 1.7) * 10.0;
    V x(a);
    BOOST_TEST(xg::sum(x, {0, 2}).data() == xg::sum(xg::sum(x, 2), 0).data(), tt::tolerance(1e-12) << tt::per_element());
    BOOST_TEST(xg::sum(x, {2, 0}, true).shape() == xg::Shape({1, 3, 1}), tt::per_element());
    BOOST_TEST(xg::mean(x, {-1, 1}).data() == xg::mean(xg::mean(x, 2), 1).data(), tt::tolerance(1e-12) << tt::per_element());
    BOOST_TEST(xg::max(x, {0, 2}).data() == xg::max(xg::max(x, 2), 0).data(), tt::per_element());
    BOOST_TEST(xg::min(x, {1, 2}, true).data() == xg::min(xg::min(x, 2, true), 1, true).data(), tt::per_element());
    // an empty list is every axis (torch's dim=[])
    BOOST_TEST(xg::sum(x, {}).item() == xg::sum(x).item(), tt::tolerance(1e-12));
    BOOST_TEST(xg::max(x, {}, true).shape() == xg::Shape({1, 1, 1}), tt::per_element());
    BOOST_TEST(xg::max(x, {}).item() == xg::max(x).item());
    // ties over several axes share the gradient over the whole reduced set
    V t = param(A{{{1.0, 4.0}, {4.0, 0.0}}, {{4.0, 2.0}, {3.0, 4.0}}});
    BOOST_TEST(grad_of(xg::max(t, {0, 2}), t) == A({{{0, 0.5}, {0.5, 0}}, {{0.5, 0}, {0, 0.5}}}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(empty_reductions) {
    // a sum over nothing is 0, a product 1; mean, var, std, max, min of nothing throw (tests/test_errors.cpp)
    BOOST_TEST(xg::sum(zeros({0, 3})).item() == 0.0);
    BOOST_TEST(xg::sum(zeros({0, 3}), 0).data() == A({0.0, 0.0, 0.0}), tt::per_element());
    BOOST_TEST(xg::sum(zeros({0, 3}), {0, 1}).item() == 0.0);
    BOOST_TEST(xg::sum(zeros({2, 0, 3}), {0, 1}).data() == A({0.0, 0.0, 0.0}), tt::per_element());
    BOOST_TEST(xg::sum(zeros({3, 0}), 0).shape() == xg::Shape({0}), tt::per_element());
    BOOST_TEST(xg::prod(zeros({0, 3})).item() == 1.0);
    BOOST_TEST(xg::prod(zeros({2, 0}), 1).data() == A({1.0, 1.0}), tt::per_element());
    // logsumexp of nothing is log(0) = -inf (torch's value)
    BOOST_TEST(xg::logsumexp(zeros({0, 2}), 0).data() == A({-kInf, -kInf}), tt::per_element());
    // reducing a non-empty axis of an empty array gives an empty result
    BOOST_TEST(xg::max(zeros({0, 3}), 1).shape() == xg::Shape({0}), tt::per_element());
    BOOST_TEST(xg::var(zeros({0, 3}), 1).shape() == xg::Shape({0}), tt::per_element());
    BOOST_TEST(xg::argmax(zeros({0, 3}), 1).shape() == xg::Shape({0}), tt::per_element());
    V e = zeros({0, 3});
    BOOST_TEST(grad_of(xg::sum(e, {0, 1}), e).shape() == xg::Shape({0, 3}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(logsumexp_is_stable) {
    V x = param(A{{1000.0, 1000.0, 0.0}, {-1000.0, -1000.0, -1000.0}});
    const A y = xg::logsumexp(x, 1).data();
    BOOST_TEST(y(0) == 1000.0 + std::log(2.0), tt::tolerance(1e-15));
    BOOST_TEST(y(1) == -1000.0 + std::log(3.0), tt::tolerance(1e-15));
    const A g = grad_of(xg::logsumexp(x, 1), x);
    // exp(x - y) with y = 1000 + log(2) rounded to the ulp of 1000 (1.1e-13): PyTorch's formula and error
    BOOST_TEST(g(0, 0) == 0.5, tt::tolerance(1e-12));
    BOOST_TEST(g(0, 2) == std::exp(-1000.0 - std::log(2.0)));
    BOOST_TEST(g(1, 1) == 1.0 / 3.0, tt::tolerance(1e-12));
    // near the largest double: no overflow
    BOOST_TEST(xg::logsumexp(V(A{1e308, 1e308}), 0).item() == 1e308);
    // -inf everywhere: -inf (its gradient is NaN, as PyTorch 1.13's); +inf: +inf
    V m = param(A{{-kInf, -kInf}, {kInf, 1.0}, {kInf, -kInf}});
    const A r = xg::logsumexp(m, -1).data();
    BOOST_TEST(r(0) == -kInf);
    BOOST_TEST(r(1) == kInf);
    BOOST_TEST(r(2) == kInf);
    const A gm = grad_of(xg::logsumexp(m, -1), m);
    BOOST_TEST(std::isnan(gm(0, 0)));
    BOOST_TEST(gm(1, 1) == 0.0);
    BOOST_TEST(std::isnan(xg::logsumexp(V(A{kNaN, kInf}), 0).item()));
    BOOST_TEST(xg::logsumexp(V(A{{1.0, 2.0}}), 0, true).shape() == xg::Shape({1, 2}), tt::per_element());
    xg::Variable<float> f(xg::Array<float>{100.f, 100.f});
    BOOST_TEST(xg::logsumexp(f, 0).item() == 100.f + std::log(2.f), tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(var_and_std_values) {
    V x = param(A{{1.0, 2.0, 3.0, 4.0}, {2.0, 2.0, 2.0, 2.0}});
    BOOST_TEST(xg::var(x, 1).data() == A({5.0 / 3.0, 0.0}), tt::tolerance(1e-15) << tt::per_element());
    BOOST_TEST(xg::var(x, 1, 0).data() == A({1.25, 0.0}), tt::tolerance(1e-15) << tt::per_element());
    const A column(xt::nested_initializer_list_t<double, 2>{{std::sqrt(1.25)}, {0.0}});
    BOOST_TEST(xg::std(x, -1, 0, true).data() == column, tt::tolerance(1e-15) << tt::per_element());
    BOOST_TEST(xg::var(x).item() == 5.5 / 7.0, tt::tolerance(1e-15));
    BOOST_TEST(xg::var(x, {}, 0).item() == 5.5 / 8.0, tt::tolerance(1e-15));
    // std's gradient is 0 where it is 0 (PyTorch's std_backward), not NaN
    const A g = grad_of(xg::std(x, 1), x);
    BOOST_TEST(g(1, 0) == 0.0);
    BOOST_TEST(g(1, 3) == 0.0);
    BOOST_TEST(g(0, 0) == (1.0 - 2.5) / 3.0 / std::sqrt(5.0 / 3.0), tt::tolerance(1e-14));
    // one element with correction 1: 0 / 0 = NaN, and NaN gradient (torch's values)
    V one = param(A(xt::nested_initializer_list_t<double, 2>{{3.0}}));
    BOOST_TEST(std::isnan(xg::var(one, 1).data()(0)));
    BOOST_TEST(std::isnan(grad_of(xg::var(one, 1), one)(0, 0)));
    // a correction beyond the count divides by 0: inf
    BOOST_TEST(xg::var(V(A{1.0, 3.0}), 0, 2).item() == kInf);
    // large magnitudes: the mean is taken out first, so no cancellation
    BOOST_TEST(xg::var(V(A{1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0})).item() == 1.0, tt::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(prod_with_zeros) {
    V x = param(A{{1.0, 0.0, 2.0, 0.0}, {0.0, 5.0, 3.0, 2.0}, {1.0, 2.0, 3.0, 4.0}});
    BOOST_TEST(xg::prod(x, 1).data() == A({0.0, 0.0, 24.0}), tt::per_element());
    // the same gradients as torch.prod: the product of the others, never a division by zero
    BOOST_TEST(grad_of(xg::prod(x, 1), x) == A({{0, 0, 0, 0}, {30, 0, 0, 0}, {24, 12, 8, 6}}), tt::per_element());
    V y = param(A{2.0, 0.0, 3.0});
    BOOST_TEST(grad_of(xg::prod(y), y) == A({0.0, 6.0, 0.0}), tt::per_element());
    // gradcheck and gradgradcheck at one zero and at two zeros in a lane (prod is multilinear:
    // central differences are exact there)
    auto f = [](const std::vector<V>& v) { return xg::prod(v[0], 0); };
    for (const A& a : {A{{0.0, 1.5}, {2.0, 0.0}, {-1.0, 3.0}}, A{{0.0, 0.0}, {0.0, 2.0}, {-1.5, 0.0}}}) {
        BOOST_TEST(xg::gradcheck<double>(f, {param(a)}).ok);
        BOOST_TEST(xg::gradgradcheck<double>(f, {param(a)}).ok);
    }
    // a third derivative is not implemented: a named error, not a wrong value
    V z = param(A{1.0, 2.0, 3.0});
    V g1 = xg::grad(xg::prod(z), {z}, {}, {.create_graph = true})[0];
    V g2 = xg::grad(xg::sum(g1 * g1), {z}, {}, {.create_graph = true})[0];
    xgt::expect_error<xg::GraphError>([&] { xg::sum(g2).backward(); }, {});
    BOOST_TEST(xg::prod(V(A{1e200, 1e200})).item() == kInf);  // overflows as torch's does
}

BOOST_AUTO_TEST_CASE(argmax_and_argmin) {
    V x(A{{1.0, 3.0, 3.0, 0.0}, {kNaN, 2.0, kNaN, -1.0}, {-1.0, -1.0, 5.0, -1.0}});
    // ties: the first index; NaN: the first NaN (PyTorch's rules)
    BOOST_TEST(xg::argmax(x, 1) == I({1, 0, 2}), tt::per_element());
    BOOST_TEST(xg::argmin(x, 1) == I({3, 0, 0}), tt::per_element());
    BOOST_TEST(xg::argmax(x, -2, true) == I({{1, 0, 1, 0}}), tt::per_element());
    BOOST_TEST(xg::argmin(x, 0) == I({1, 2, 1, 1}), tt::per_element());
    BOOST_TEST(xg::argmax(x)() == 4);  // the flattened index of the first NaN
    V y(A{{2.0, 7.0}, {7.0, -3.0}});
    BOOST_TEST(xg::argmax(y)() == 1);
    BOOST_TEST(xg::argmin(y)() == 3);
    BOOST_TEST(xg::argmax(y).dimension() == 0u);
    xg::Variable<float> f(xg::Array<float>{1.f, 4.f, 4.f});
    BOOST_TEST(xg::argmax(f, 0)() == 1);
}

BOOST_AUTO_TEST_CASE(squeeze_unsqueeze_flatten) {
    V x = zeros({1, 3, 1, 2});
    BOOST_TEST(same_shape(xg::squeeze(x), {3, 2}));
    BOOST_TEST(same_shape(xg::squeeze(x, 2), {1, 3, 2}));
    BOOST_TEST(same_shape(xg::squeeze(x, 1), {1, 3, 1, 2}));  // not of size 1: unchanged, as torch
    BOOST_TEST(same_shape(xg::unsqueeze(x, 4), {1, 3, 1, 2, 1}));
    BOOST_TEST(same_shape(xg::unsqueeze(x, -5), {1, 1, 3, 1, 2}));
    BOOST_TEST(same_shape(xg::flatten(x), {6}));
    BOOST_TEST(same_shape(xg::flatten(x, 1, -2), {1, 3, 2}));
    BOOST_TEST(same_shape(xg::flatten(zeros({2, 0, 3}), 1), {2, 0}));
    BOOST_TEST(same_shape(xg::flatten(V(A(4.0))), {1}));
    BOOST_TEST(same_shape(xg::squeeze(V(A(4.0)), -1), {}));
    xg::nn::Flatten<double> layer;
    BOOST_TEST(same_shape(layer(zeros({2, 3, 4})), {2, 12}));
    BOOST_TEST(layer.repr() == "Flatten(start_dim=1, end_dim=-1)");
    BOOST_TEST(same_shape(xg::nn::Flatten<double>(0, 1)(zeros({2, 3, 4})), {6, 4}));
    xg::nn::Sequential<double> net(std::make_shared<xg::nn::Flatten<double>>(),
                                   std::make_shared<xg::nn::Linear<double>>(12, 2));
    BOOST_TEST(same_shape(net(zeros({5, 3, 4})), {5, 2}));
}

BOOST_AUTO_TEST_CASE(stack_split_chunk) {
    V a(A{{1.0, 2.0}, {3.0, 4.0}}), b(A{{5.0, 6.0}, {7.0, 8.0}});
    BOOST_TEST(xg::stack<double>({a, b}, 1).data() == A({{{1, 2}, {5, 6}}, {{3, 4}, {7, 8}}}), tt::per_element());
    BOOST_TEST(xg::stack<double>({a, b}, -1).data() == A({{{1, 5}, {2, 6}}, {{3, 7}, {4, 8}}}), tt::per_element());
    V x(A{0.0, 1.0, 2.0, 3.0, 4.0});
    auto p = xg::split(x, 2);  // torch.split: the last piece is smaller
    BOOST_TEST(p.size() == 3u);
    BOOST_TEST(p[2].data() == A({4.0}), tt::per_element());
    auto q = xg::split(x, {1, 0, 4});  // sizes, a 0 included
    BOOST_TEST(q.size() == 3u);
    BOOST_TEST(q[1].size() == 0u);
    BOOST_TEST(q[2].data() == A({1.0, 2.0, 3.0, 4.0}), tt::per_element());
    BOOST_TEST(xg::split(x, 7).size() == 1u);
    BOOST_TEST(xg::split(zeros({0, 2}), 3).size() == 1u);  // torch: one empty piece
    auto c = xg::chunk(V(A::from_shape({6})), 4);  // torch.chunk: pieces of 2, so only 3
    BOOST_TEST(c.size() == 3u);
    BOOST_TEST(xg::chunk(x, 6).size() == 5u);
    BOOST_TEST(xg::chunk(zeros({0}), 3).size() == 3u);  // torch: `chunks` empty pieces
}

BOOST_AUTO_TEST_CASE(pad_flip_repeat_expand) {
    V x(A{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    BOOST_TEST(xg::pad(x, {{1, 0}, {0, 1}}, -1.0).data() == A({{-1, -1, -1, -1}, {1, 2, 3, -1}, {4, 5, 6, -1}}),
               tt::per_element());
    BOOST_TEST(xg::pad(x, {{0, -1}, {-1, 2}}).data() == A({{2, 3, 0, 0}}), tt::per_element());
    BOOST_TEST(same_shape(xg::pad(x, {{-2, 0}, {0, 0}}), {0, 3}));  // cropped to nothing: allowed
    BOOST_TEST(same_shape(xg::pad(zeros({0, 2}), {{1, 1}, {0, 0}}), {2, 2}));
    BOOST_TEST(xg::pad(V(A{1.0}), {{2, 0}}, 7.0).data() == A({7, 7, 1}), tt::per_element());
    BOOST_TEST(xg::flip(x, {0, 1}).data() == A({{6, 5, 4}, {3, 2, 1}}), tt::per_element());
    BOOST_TEST(xg::flip(x, {-1}).data() == A({{3, 2, 1}, {6, 5, 4}}), tt::per_element());
    BOOST_TEST(xg::flip(x, {}).data() == x.data(), tt::per_element());
    V r(A{1.0, 2.0});
    BOOST_TEST(xg::repeat(r, {2, 2}).data() == A({{1, 2, 1, 2}, {1, 2, 1, 2}}), tt::per_element());
    BOOST_TEST(same_shape(xg::repeat(x, {2, 1, 2}), {2, 2, 6}));
    BOOST_TEST(same_shape(xg::repeat(x, {0, 3}), {0, 9}));
    BOOST_TEST(same_shape(xg::tile(x, {2}), {2, 6}));
    BOOST_TEST(xg::tile(x, {2, 1}).data() == A({{1, 2, 3}, {4, 5, 6}, {1, 2, 3}, {4, 5, 6}}), tt::per_element());
    V p = param(A{{1.0, 2.0}});
    BOOST_TEST(grad_of(xg::repeat(p, {3, 2}), p) == A({{6.0, 6.0}}), tt::per_element());
    BOOST_TEST(same_shape(xg::permute(zeros({2, 3, 4}), {2, -3, 1}), {4, 2, 3}));
    BOOST_TEST(same_shape(xg::expand(zeros({3, 1}), {2, -1, 4}), {2, 3, 4}));
    BOOST_TEST(same_shape(xg::expand(zeros({3, 1}), {3, 0}), {3, 0}));
}

// transpose's own loop (merged axes, runs, 32 x 32 blocks) against xtensor's strided view, for
// every permutation of shapes with size-1 axes, partial blocks and no elements.
BOOST_AUTO_TEST_CASE(transpose_agrees_with_xtensor_for_every_permutation) {
    const std::vector<xg::Shape> shapes{{2, 3, 4, 5}, {1, 3, 1, 5}, {33, 1, 40, 2}, {0, 3, 2, 2},
                                        {2, 1, 64, 33}, {70, 45, 1, 1}, {1, 1, 1, 1}};
    for (const xg::Shape& shape : shapes) {
        A x = A::from_shape(shape);
        for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<double>(i);
        std::vector<std::size_t> perm{0, 1, 2, 3};
        do {
            const A got = xg::transpose(V(x), perm).data();
            const A want = xt::transpose(x, perm);
            BOOST_TEST((got.shape() == want.shape() && got == want), xg::shape_str(shape) << " by " << perm[0]
                                                                         << perm[1] << perm[2] << perm[3]);
        } while (std::next_permutation(perm.begin(), perm.end()));
    }
    const A m = xt::reshape_view(xt::arange<double>(70.0 * 45.0), {70, 45});
    BOOST_TEST(xg::transpose(V(m)).data() == A(xt::transpose(m)));
}

BOOST_AUTO_TEST_SUITE_END()
