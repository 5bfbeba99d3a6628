// layer_norm's and batch_norm's values at the edges the op list avoids (constant rows and columns,
// large magnitudes, NaN, empty shapes, float), their fused backwards against the recorded ones and
// against the same formulas composed of ops, their errors; batch_norm's statistics and
// nn::BatchNorm1d's running ones; nn::LayerNorm and nn::ModuleList.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <sstream>

#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
namespace tt = boost::test_tools;
using xgt::expect_error;

namespace {

using xgt::close;
using xgt::random_array;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

V param(A a) { return V(std::move(a), true); }

// layer_norm written with ops: what the fused op must compute.
V composed(const V& x, const std::vector<long>& axes, const V& gamma, const V& beta, double eps) {
    const V centred = x - xg::mean(x, axes, true);
    V y = centred * xg::rsqrt(xg::var(x, axes, 0, true) + eps);
    if (gamma.defined()) y = y * gamma;
    if (beta.defined()) y = y + beta;
    return y;
}

// batch_norm written with ops (nn::BatchNorm1d's and BatchNorm2d's code before the fused op): what
// the fused op must compute, over every axis but the channels'.
V composed_batch_norm(const V& x, const V& gamma, const V& beta, double eps) {
    std::vector<long> axes{0}, channel_shape{1, static_cast<long>(x.shape()[1])};
    for (std::size_t a = 2; a < x.ndim(); ++a) {
        axes.push_back(static_cast<long>(a));
        channel_shape.push_back(1);
    }
    const V centred = x - xg::mean(x, axes, true);
    V y = centred / xg::sqrt(xg::mean(centred * centred, axes, true) + eps);
    if (gamma.defined()) y = y * xg::reshape(gamma, channel_shape);
    if (beta.defined()) y = y + xg::reshape(beta, channel_shape);
    return y;
}

// A fused op's values and gradients, with and without create_graph, against the same formula
// composed of ops (relative 1e-12), for x of shape `shape` and, with and without the affine
// parameters, gamma and beta of shape `affine_shape`.
using Norm = std::function<V(const V& x, const V& gamma, const V& beta)>;
void check_fused_against_composed(const xg::Shape& shape, const xg::Shape& affine_shape, const Norm& fused,
                                  const Norm& reference_norm) {
    for (const bool affine : {true, false}) {
        const A xa = random_array(shape, 1, -3.0, 5.0), ga = random_array(affine_shape, 2),
                ba = random_array(affine_shape, 3), gout = random_array(shape, 4);
        auto grads = [&](const Norm& norm, bool create_graph) {
            V x = param(xa), g = affine ? param(ga) : V(), b = affine ? param(ba) : V();
            const V y = norm(x, g, b);
            std::vector<V> in{x};
            if (affine) in.insert(in.end(), {g, b});
            std::vector<A> out{y.data()};
            for (const V& d : xg::grad(xg::sum(y * V(gout)), in, V(), {.create_graph = create_graph}))
                out.push_back(d.data());
            return out;
        };
        const auto fast = grads(fused, false), recorded = grads(fused, true), reference = grads(reference_norm, false);
        BOOST_TEST_REQUIRE(fast.size() == reference.size());
        for (std::size_t i = 0; i < fast.size(); ++i) {
            BOOST_TEST(close(fast[i], reference[i], 1e-12), xg::shape_str(shape) << ", affine " << affine << ", array " << i);
            BOOST_TEST(close(recorded[i], reference[i], 1e-12), xg::shape_str(shape) << ", affine " << affine << ", array " << i);
        }
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(norm)

BOOST_AUTO_TEST_CASE(layer_norm_values) {
    // mean 2.5, biased variance 1.25
    const V x(A{{1.0, 2.0, 3.0, 4.0}, {-2.0, 0.0, 2.0, 4.0}});
    const A y = xg::layer_norm(x, {4}).data();
    const double r0 = 1 / std::sqrt(1.25 + 1e-5), r1 = 1 / std::sqrt(5.0 + 1e-5);
    BOOST_TEST(close(y, A{{-1.5 * r0, -0.5 * r0, 0.5 * r0, 1.5 * r0}, {-3 * r1, -r1, r1, 3 * r1}}, 1e-15));
    const V g(A{2.0, 1.0, 0.5, -1.0}), b(A{0.0, 1.0, -1.0, 0.5});
    const A ya = xg::layer_norm(x, {4}, g, b).data();
    BOOST_TEST(close(ya, A(y * g.data() + b.data()), 1e-15));
    // over two axes: the whole (2, 4) block is one row
    const A y2 = xg::layer_norm(x, {2, 4}).data();
    BOOST_TEST(close(y2, composed(x, {0, 1}, V(), V(), 1e-5).data(), 1e-14));
}

BOOST_AUTO_TEST_CASE(layer_norm_constant_row_large_magnitudes_and_nan) {
    // variance 0: the output is beta exactly, and eps sets the gradient's scale
    const V g(A{1.5, -0.5, 2.0}), b(A{0.25, 0.0, -1.0});
    V x = param(A{{7.0, 7.0, 7.0}});
    BOOST_TEST(xg::layer_norm(x, {3}, g, b, 1e-2).data() == A({{0.25, 0.0, -1.0}}), tt::per_element());
    xg::sum(xg::layer_norm(x, {3}, g, b, 1e-2) * V(A{{1.0, 0.0, 0.0}})).backward();
    // d/dx of g0 * (x0 - mean) / sqrt(eps) at a constant row: g0 * (1 - 1/3, -1/3, -1/3) * 10
    BOOST_TEST(close(x.grad().data(), A{{10.0, -5.0, -5.0}}, 1e-14));
    // an offset of 1e12 loses nothing (the variance is taken from centred values)
    const A big = xg::layer_norm(V(A{{1e12 + 1, 1e12 + 2, 1e12 + 3, 1e12 + 4}}), {4}).data();
    const A small = xg::layer_norm(V(A{{1.0, 2.0, 3.0, 4.0}}), {4}).data();
    BOOST_TEST(close(big, small, 1e-12));
    // scale 1e150: the squares stay finite, the result is the scale-free one (eps negligible)
    const A huge = xg::layer_norm(V(A{{1e150, 2e150, 3e150, 4e150}}), {4}).data();
    BOOST_TEST(close(huge, xg::layer_norm(V(A{{1.0, 2.0, 3.0, 4.0}}), {4}, {}, {}, 1e-300).data(), 1e-14));
    // float: the same in single precision, offsets included
    const xg::Array<float> yf =
        xg::layer_norm(xg::Variable<float>(xg::Array<float>{{1e4f + 1, 1e4f + 2, 1e4f + 3, 1e4f + 4}}), {4}).data();
    for (std::size_t j = 0; j < 4; ++j) BOOST_TEST(std::abs(yf(0, j) - static_cast<float>(small(0, j))) < 1e-5f);
    // a NaN spoils its own row only
    const A yn = xg::layer_norm(V(A{{1.0, kNaN, 3.0}, {1.0, 2.0, 3.0}}), {3}).data();
    for (std::size_t j = 0; j < 3; ++j) BOOST_TEST(std::isnan(yn(0, j)));
    const A clean = xg::layer_norm(V(A{{1.0, 2.0, 3.0}}), {3}).data();
    for (std::size_t j = 0; j < 3; ++j) BOOST_TEST(yn(1, j) == clean(0, j));
}

BOOST_AUTO_TEST_CASE(layer_norm_empty_shapes) {
    // no rows: an empty output; gamma and beta get zero gradients of their shape
    V x = param(A::from_shape({0, 4})), g = param(A{1.0, 2.0, 3.0, 4.0}), b = param(A{0.0, 0.0, 0.0, 0.0});
    const V y = xg::layer_norm(x, {4}, g, b);
    BOOST_TEST(y.shape() == xg::Shape({0, 4}));
    xg::sum(y).backward();
    BOOST_TEST(x.grad().shape() == xg::Shape({0, 4}));
    BOOST_TEST(g.grad().data() == A({0.0, 0.0, 0.0, 0.0}), tt::per_element());
    BOOST_TEST(b.grad().data() == A({0.0, 0.0, 0.0, 0.0}), tt::per_element());
    // empty rows: three blocks of nothing
    V e = param(A::from_shape({3, 0}));
    const V ye = xg::layer_norm(e, {0});
    BOOST_TEST(ye.shape() == xg::Shape({3, 0}));
    xg::sum(ye).backward();
    BOOST_TEST(e.grad().shape() == xg::Shape({3, 0}));
    // and under create_graph
    V z = param(A::from_shape({0, 2}));
    const V gz = xg::grad(xg::sum(xg::layer_norm(z, {2})), {z}, V(), {.create_graph = true})[0];
    BOOST_TEST(gz.shape() == xg::Shape({0, 2}));
}

BOOST_AUTO_TEST_CASE(layer_norm_fused_backward_matches_recorded_and_composed) {
    // 37 elements per row: SIMD batches and a scalar tail
    check_fused_against_composed(
        {5, 37}, {37}, [](const V& x, const V& g, const V& b) { return xg::layer_norm(x, {37}, g, b, 1e-3); },
        [](const V& x, const V& g, const V& b) { return composed(x, {1}, g, b, 1e-3); });
}

BOOST_AUTO_TEST_CASE(layer_norm_float_matches_double) {
    const A xa = random_array({8, 67}, 5, -50.0, 50.0), ga = random_array({67}, 6), ba = random_array({67}, 7);
    const xg::Array<float> xf = xt::cast<float>(xa), gf = xt::cast<float>(ga), bf = xt::cast<float>(ba);
    xg::Variable<float> x(xf, true), g(gf, true), b(bf, true);
    const xg::Variable<float> y = xg::layer_norm(x, {67}, g, b);
    xg::sum(y * y).backward();
    V xd = param(xt::cast<double>(xf)), gd = param(xt::cast<double>(gf)), bd = param(xt::cast<double>(bf));
    const V yd = xg::layer_norm(xd, {67}, gd, bd);
    xg::sum(yd * yd).backward();
    BOOST_TEST(close(xt::cast<double>(y.data()), yd.data(), 1e-5));
    BOOST_TEST(close(xt::cast<double>(x.grad().data()), xd.grad().data(), 1e-4));
    BOOST_TEST(close(xt::cast<double>(g.grad().data()), gd.grad().data(), 1e-4));
    BOOST_TEST(close(xt::cast<double>(b.grad().data()), bd.grad().data(), 1e-4));
}

BOOST_AUTO_TEST_CASE(layer_norm_errors) {
    const V x(A::from_shape({2, 3, 4}));
    expect_error<xg::ShapeError>([&] { xg::layer_norm(x, {3}); }, {"layer_norm", "(3,)", "(2, 3, 4)"});
    expect_error<xg::ShapeError>([&] { xg::layer_norm(x, {4, 4}); }, {"layer_norm", "(4, 4)", "(2, 3, 4)"});
    expect_error<xg::ShapeError>([&] { xg::layer_norm(x, {1, 2, 3, 4}); }, {"layer_norm", "(1, 2, 3, 4)", "(2, 3, 4)"});
    expect_error<xg::ShapeError>([&] { xg::layer_norm(x, {}); }, {"layer_norm", "normalized_shape", "empty"});
    const V g4(A::from_shape({4})), g3(A::from_shape({3}));
    expect_error<xg::ShapeError>([&] { xg::layer_norm(x, {4}, g3); }, {"layer_norm", "gamma", "(3,)", "(4,)"});
    expect_error<xg::ShapeError>([&] { xg::layer_norm(x, {4}, g4, g3); }, {"layer_norm", "beta", "(3,)", "(4,)"});
    expect_error<xg::ShapeError>([&] { xg::layer_norm(x, {3, 4}, g4); }, {"layer_norm", "gamma", "(4,)", "(3, 4)"});
    expect_error<xg::ValueError>([&] { xg::layer_norm(x, {4}, g4, g4, 0.0); }, {"layer_norm", "eps", "0"});
    expect_error<xg::ValueError>([&] { xg::layer_norm(x, {4}, {}, {}, -1e-5); }, {"layer_norm", "eps", "-1e-05"});
    expect_error<xg::ValueError>([&] { xg::layer_norm(x, {4}, {}, {}, kNaN); }, {"layer_norm", "eps", "nan"});
}

BOOST_AUTO_TEST_CASE(batch_norm_values_and_statistics) {
    // columns: means 2 and 1, biased variances 2/3 and 6
    const V x(A{{1.0, -2.0}, {2.0, 1.0}, {3.0, 4.0}});
    xg::BatchStatistics<double> stats;
    const A y = xg::batch_norm(x, {}, {}, 1e-5, &stats).data();
    BOOST_TEST(close(stats.mean, A{2.0, 1.0}, 1e-15));
    BOOST_TEST(close(stats.var, A{2.0 / 3, 6.0}, 1e-15));
    const double r0 = 1 / std::sqrt(2.0 / 3 + 1e-5), r1 = 1 / std::sqrt(6.0 + 1e-5);
    BOOST_TEST(close(y, A{{-r0, -3 * r1}, {0.0, 0.0}, {r0, 3 * r1}}, 1e-15));
    const V g(A{2.0, -0.5}), b(A{0.5, 1.0});
    BOOST_TEST(close(xg::batch_norm(x, g, b).data(), A(y * g.data() + b.data()), 1e-15));
    // (N, C, H, W): channel c over (N, H, W); the statistics of the channels' own values
    const A img = random_array({3, 4, 5, 6}, 21, -5.0, 5.0);
    xg::BatchStatistics<double> s4;
    xg::batch_norm(V(img), {}, {}, 1e-5, &s4);
    for (std::size_t c = 0; c < 4; ++c) {
        const A ch = xt::view(img, xt::all(), c, xt::all(), xt::all());
        const double m = xt::mean(ch)(), v = xt::mean(xt::square(ch - m))();
        BOOST_TEST(std::abs(s4.mean(c) - m) < 1e-14);
        BOOST_TEST(std::abs(s4.var(c) - v) < 1e-13 * v);
    }
}

BOOST_AUTO_TEST_CASE(batch_norm_constant_columns_large_magnitudes_and_nan) {
    // variance 0: the output is beta exactly, and eps sets the gradient's scale
    const V g(A{1.5, -0.5}), b(A{0.25, 3.0});
    V x = param(A{{7.0, 1.0}, {7.0, 2.0}, {7.0, 4.0}});
    BOOST_TEST(xt::col(xg::batch_norm(x, g, b, 1e-2).data(), 0) == A({0.25, 0.25, 0.25}), tt::per_element());
    xg::sum(xg::batch_norm(x, g, b, 1e-2) * V(A{{1.0, 0.0}, {0.0, 0.0}, {0.0, 0.0}})).backward();
    // d/dx of g0 * (x00 - mean) / sqrt(eps) at a constant column: g0 * (1 - 1/3, -1/3, -1/3) * 10
    BOOST_TEST(close(A(xt::col(x.grad().data(), 0)), A{10.0, -5.0, -5.0}, 1e-14));
    BOOST_TEST(close(A(xt::col(x.grad().data(), 1)), A{0.0, 0.0, 0.0}, 1e-14));
    // an offset of 1e12 loses nothing (the variance is taken from centred values)
    const A small{{1.0, -1.0}, {2.0, 0.5}, {3.0, 4.0}, {4.0, 2.0}};
    const A big = xg::batch_norm(V(A(small + 1e12))).data();
    BOOST_TEST(close(big, xg::batch_norm(V(small)).data(), 1e-3));  // 1e12 + x keeps x to 1e-4
    BOOST_TEST(close(xg::batch_norm(V(A(small + 1e6))).data(), xg::batch_norm(V(small)).data(), 1e-9));
    // scale 1e150: the squares stay finite, the result is the scale-free one (eps negligible)
    const A huge = xg::batch_norm(V(A(small * 1e150))).data();
    BOOST_TEST(close(huge, xg::batch_norm(V(small), {}, {}, 1e-300).data(), 1e-14));
    // float: the same in single precision, offsets included
    const xg::Array<float> yf =
        xg::batch_norm(xg::Variable<float>(xg::Array<float>(xt::cast<float>(small) + 1e4f))).data();
    const A ys = xg::batch_norm(V(small)).data();
    for (std::size_t i = 0; i < ys.size(); ++i) BOOST_TEST(std::abs(yf.data()[i] - ys.data()[i]) < 1e-3);
    // a NaN spoils its own channel only
    const A yn = xg::batch_norm(V(A{{1.0, kNaN}, {2.0, 3.0}, {4.0, 5.0}})).data();
    const A clean = xg::batch_norm(V(A{{1.0, 0.0}, {2.0, 0.0}, {4.0, 0.0}})).data();
    for (std::size_t i = 0; i < 3; ++i) {
        BOOST_TEST(std::isnan(yn(i, 1)));
        BOOST_TEST(yn(i, 0) == clean(i, 0));
    }
}

BOOST_AUTO_TEST_CASE(batch_norm_empty_shapes) {
    // no rows: an empty output, NaN statistics; gamma and beta get zero gradients of their shape
    V x = param(A::from_shape({0, 3})), g = param(A{1.0, 2.0, 3.0}), b = param(A{0.0, 0.0, 0.0});
    xg::BatchStatistics<double> stats;
    const V y = xg::batch_norm(x, g, b, 1e-5, &stats);
    BOOST_TEST(y.shape() == xg::Shape({0, 3}));
    for (std::size_t c = 0; c < 3; ++c) BOOST_TEST((std::isnan(stats.mean(c)) && std::isnan(stats.var(c))));
    xg::sum(y).backward();
    BOOST_TEST(x.grad().shape() == xg::Shape({0, 3}));
    BOOST_TEST(g.grad().data() == A({0.0, 0.0, 0.0}), tt::per_element());
    BOOST_TEST(b.grad().data() == A({0.0, 0.0, 0.0}), tt::per_element());
    // no channels, and channels of empty images
    V e = param(A::from_shape({4, 0}));
    xg::sum(xg::batch_norm(e)).backward();
    BOOST_TEST(e.grad().shape() == xg::Shape({4, 0}));
    V im = param(A::from_shape({2, 3, 0, 4})), gi = param(A{1.0, 2.0, 3.0});
    const V yi = xg::batch_norm(im, gi);
    BOOST_TEST(yi.shape() == xg::Shape({2, 3, 0, 4}));
    xg::sum(yi).backward();
    BOOST_TEST(gi.grad().data() == A({0.0, 0.0, 0.0}), tt::per_element());
    // and under create_graph
    V z = param(A::from_shape({0, 2}));
    const V gz = xg::grad(xg::sum(xg::batch_norm(z)), {z}, V(), {.create_graph = true})[0];
    BOOST_TEST(gz.shape() == xg::Shape({0, 2}));
}

BOOST_AUTO_TEST_CASE(batch_norm_fused_backward_matches_recorded_and_composed) {
    // 37 channels of (N, C) (SIMD batches and a tail), and images whose 21 values a channel holds
    // per image leave a tail too
    for (const xg::Shape& shape : {xg::Shape{5, 37}, xg::Shape{3, 5, 7, 3}, xg::Shape{4, 3, 10}})
        check_fused_against_composed(
            shape, {shape[1]}, [](const V& x, const V& g, const V& b) { return xg::batch_norm(x, g, b, 1e-3); },
            [](const V& x, const V& g, const V& b) { return composed_batch_norm(x, g, b, 1e-3); });
}

BOOST_AUTO_TEST_CASE(batch_norm_float_matches_double) {
    for (const xg::Shape& shape : {xg::Shape{128, 67}, xg::Shape{16, 5, 9, 9}}) {
        const std::size_t c = shape[1];
        const A xa = random_array(shape, 5, -50.0, 50.0), ga = random_array({c}, 6), ba = random_array({c}, 7);
        const xg::Array<float> xf = xt::cast<float>(xa), gf = xt::cast<float>(ga), bf = xt::cast<float>(ba);
        xg::Variable<float> x(xf, true), g(gf, true), b(bf, true);
        const xg::Variable<float> y = xg::batch_norm(x, g, b);
        xg::sum(y * y * y).backward();
        V xd = param(xt::cast<double>(xf)), gd = param(xt::cast<double>(gf)), bd = param(xt::cast<double>(bf));
        const V yd = xg::batch_norm(xd, gd, bd);
        xg::sum(yd * yd * yd).backward();
        BOOST_TEST(close(xt::cast<double>(y.data()), yd.data(), 1e-5));
        BOOST_TEST(close(xt::cast<double>(x.grad().data()), xd.grad().data(), 1e-4));
        BOOST_TEST(close(xt::cast<double>(g.grad().data()), gd.grad().data(), 1e-4));
        BOOST_TEST(close(xt::cast<double>(b.grad().data()), bd.grad().data(), 1e-4));
    }
}

BOOST_AUTO_TEST_CASE(batch_norm_errors) {
    const V x(A::from_shape({2, 3, 4}));
    expect_error<xg::ShapeError>([&] { xg::batch_norm(V(A::from_shape({5}))); }, {"batch_norm", "(N, C, ...)", "(5,)"});
    const V g3(A::from_shape({3})), g4(A::from_shape({4}));
    expect_error<xg::ShapeError>([&] { xg::batch_norm(x, g4); }, {"batch_norm", "gamma", "(4,)", "(2, 3, 4)"});
    expect_error<xg::ShapeError>([&] { xg::batch_norm(x, g3, g4); }, {"batch_norm", "beta", "(4,)", "(2, 3, 4)"});
    expect_error<xg::ShapeError>([&] { xg::batch_norm(x, V(A::from_shape({1, 3}))); }, {"batch_norm", "(1, 3)"});
    expect_error<xg::ValueError>([&] { xg::batch_norm(x, g3, g3, 0.0); }, {"batch_norm", "eps", "0"});
    expect_error<xg::ValueError>([&] { xg::batch_norm(x, {}, {}, kNaN); }, {"batch_norm", "eps", "nan"});
    expect_error<xg::ValueError>([&] { xg::batch_norm(V(A::from_shape({1, 3}))); },
                                 {"batch_norm", "more than one value", "(1, 3)"});
    expect_error<xg::ValueError>([&] { xg::batch_norm(V(A::from_shape({1, 3, 1, 1}))); },
                                 {"batch_norm", "more than one value", "(1, 3, 1, 1)"});
}

BOOST_AUTO_TEST_CASE(batch_norm1d_trains_and_keeps_running_statistics) {
    // the layer in training: the composed formula, and running = 0.8 running + 0.2 batch (biased)
    xg::nn::BatchNorm1d<double> bn(6, {.eps = 1e-3, .momentum = 0.2});
    bn.gamma().mutable_data() = random_array({6}, 31);
    bn.beta().mutable_data() = random_array({6}, 32);
    A rm = xg::full<double>({6}, 0.0), rv = xg::full<double>({6}, 1.0);
    for (unsigned step = 0; step < 3; ++step) {
        const A xa = random_array({9, 6}, 40 + step, -4.0, 6.0);
        const A y = bn(V(xa)).data();
        BOOST_TEST(close(y, composed_batch_norm(V(xa), bn.gamma(), bn.beta(), 1e-3).data(), 1e-13));
        const A m = xt::mean(xa, {0}), v = xt::mean(xt::square(xa - m), {0});
        rm = 0.8 * rm + 0.2 * m;
        rv = 0.8 * rv + 0.2 * v;
        BOOST_TEST(close(bn.running_mean().data(), rm, 1e-14));
        BOOST_TEST(close(bn.running_var().data(), rv, 1e-14));
    }
    // evaluation: the running statistics, not the batch's
    bn.eval();
    const A xa = random_array({4, 6}, 50);
    const A want = (xa - rm) / xt::sqrt(rv + 1e-3) * bn.gamma().data() + bn.beta().data();
    BOOST_TEST(close(bn(V(xa)).data(), want, 1e-13));
}

BOOST_AUTO_TEST_CASE(batch_norm1d_on_sequences) {
    // (N, features, L), as torch.nn.BatchNorm1d takes it: statistics per feature over N and L
    xg::nn::BatchNorm1d<double> bn(4, {.eps = 1e-3, .momentum = 0.2});
    bn.gamma().mutable_data() = random_array({4}, 61);
    bn.beta().mutable_data() = random_array({4}, 62);
    const A xa = random_array({5, 4, 3}, 63, -4.0, 6.0);
    const V x(xa, true);
    const V y = bn(x);
    BOOST_TEST(y.shape() == xa.shape(), tt::per_element());
    const V xr(xa, true);
    const V want = composed_batch_norm(xr, bn.gamma(), bn.beta(), 1e-3);
    BOOST_TEST(close(y.data(), want.data(), 1e-13));
    const A weights = random_array({5, 4, 3}, 64);
    xg::sum(y * V(weights)).backward();
    xg::sum(want * V(weights)).backward();
    BOOST_TEST(close(x.grad().data(), xr.grad().data(), 1e-12));
    const A m = xt::mean(xa, {0, 2}), v = xt::mean(xt::square(xa - xt::view(m, xt::newaxis(), xt::all(), xt::newaxis())), {0, 2});
    BOOST_TEST(close(bn.running_mean().data(), A(0.2 * m), 1e-14));
    BOOST_TEST(close(bn.running_var().data(), A(0.8 + 0.2 * v), 1e-14));
    // one position of one sequence has no variance; two positions of one do
    expect_error<xg::ValueError>([&] { bn(V(A::from_shape({1, 4, 1}))); }, {"BatchNorm1d", "(1, 4, 1)"});
    BOOST_TEST(bn(V(random_array({1, 4, 2}, 65))).shape() == xg::Shape({1, 4, 2}), tt::per_element());
    expect_error<xg::ShapeError>([&] { bn(V(A::from_shape({5, 4, 3, 2}))); },
                                 {"BatchNorm1d", "(N, 4) or (N, 4, L)", "(5, 4, 3, 2)"});
    expect_error<xg::ShapeError>([&] { bn(V(A::from_shape({5, 3, 2}))); }, {"BatchNorm1d", "(5, 3, 2)"});
    // evaluation: the running statistics per feature, broadcast over N and L
    bn.eval();
    const A rm = bn.running_mean().data(), rv = bn.running_var().data();
    const A xe = random_array({2, 4, 5}, 66);
    const auto col = [](const A& a) { return xt::view(a, xt::newaxis(), xt::all(), xt::newaxis()); };
    const A expected = (xe - col(rm)) / xt::sqrt(col(rv) + 1e-3) * col(bn.gamma().data()) + col(bn.beta().data());
    BOOST_TEST(close(bn(V(xe)).data(), expected, 1e-13));
    // and still (N, features) in evaluation
    const A x2 = random_array({3, 4}, 67);
    BOOST_TEST(close(bn(V(x2)).data(), A((x2 - rm) / xt::sqrt(rv + 1e-3) * bn.gamma().data() + bn.beta().data()), 1e-13));
}

BOOST_AUTO_TEST_CASE(layer_norm_module) {
    xg::nn::LayerNorm<double> ln({3, 4});
    BOOST_TEST(ln.parameters().size() == 2u);
    BOOST_TEST(ln.weight().data() == xg::full<double>({3, 4}, 1.0), tt::per_element());
    BOOST_TEST(ln.bias().data() == xg::full<double>({3, 4}, 0.0), tt::per_element());
    const auto names = ln.state_dict();
    BOOST_TEST_REQUIRE(names.size() == 2u);
    BOOST_TEST(names[0].first == "weight");
    BOOST_TEST(names[1].first == "bias");
    BOOST_TEST(ln.repr() == "LayerNorm((3, 4), eps=1e-05, elementwise_affine=true)");
    const V x(random_array({2, 3, 4}, 8));
    BOOST_TEST(ln(x).data() == xg::layer_norm(x, {3, 4}).data(), tt::per_element());
    // state_dict round trip, and through a checkpoint file
    ln.weight().mutable_data() = random_array({3, 4}, 9);
    ln.bias().mutable_data() = random_array({3, 4}, 10);
    xg::nn::LayerNorm<double> copy({3, 4}), from_file({3, 4});
    copy.load_state_dict(ln.state_dict());
    BOOST_TEST(copy(x).data() == ln(x).data(), tt::per_element());
    xgt::TempDir dir("layernorm");
    xg::nn::save(dir / "ln.npz", ln);
    xg::nn::load(dir / "ln.npz", from_file);
    BOOST_TEST(from_file.weight().data() == ln.weight().data(), tt::per_element());
    BOOST_TEST(from_file.bias().data() == ln.bias().data(), tt::per_element());
    // without the affine part: no parameters
    xg::nn::LayerNorm<float> plain({5}, 1e-3, false);
    BOOST_TEST(plain.parameters().empty());
    BOOST_TEST(!plain.weight().defined());
    BOOST_TEST(plain.repr() == "LayerNorm((5,), eps=0.001, elementwise_affine=false)");
    // errors
    expect_error<xg::ShapeError>([] { xg::nn::LayerNorm<float>({}); }, {"LayerNorm", "empty"});
    expect_error<xg::ShapeError>([] { xg::nn::LayerNorm<float>({3, 0}); }, {"LayerNorm", "(3, 0)"});
    expect_error<xg::ValueError>([] { xg::nn::LayerNorm<float>({3}, 0.0); }, {"LayerNorm", "eps", "0"});
    expect_error<xg::ShapeError>([&] { ln(V(A::from_shape({2, 4, 3}))); }, {"layer_norm", "(3, 4)", "(2, 4, 3)"});
}

BOOST_AUTO_TEST_CASE(module_list) {
    using namespace xg::nn;
    auto list = std::make_shared<ModuleList<double>>();
    BOOST_TEST(list->empty());
    auto lin = list->push_back(std::make_shared<Linear<double>>(3, 4));
    list->append(std::make_shared<LayerNorm<double>>(xg::Shape{4}));
    list->push_back(std::make_shared<ReLU<double>>());
    BOOST_TEST(list->size() == 3u);
    BOOST_TEST((*list)[0] == lin);
    BOOST_TEST(list->get<Linear<double>>(0) == lin);
    BOOST_TEST(list->get<Linear<double>>(1) == nullptr);
    BOOST_TEST(list->get<LayerNorm<double>>(1) != nullptr);
    std::size_t n = 0;
    for (const auto& m : *list) n += m != nullptr;
    BOOST_TEST(n == 3u);
    BOOST_TEST(list->parameters().size() == 4u);  // Linear's weight and bias, LayerNorm's
    const auto state = list->state_dict();
    BOOST_TEST_REQUIRE(state.size() == 4u);
    BOOST_TEST(state[0].first == "0.weight");
    BOOST_TEST(state[3].first == "1.bias");
    list->eval();
    for (const auto& m : *list) BOOST_TEST(!m->is_training());
    list->train();
    BOOST_TEST((*list)[2]->is_training());
    const std::string printed = list->str();
    BOOST_TEST(printed.find("ModuleList") == 0u);
    BOOST_TEST(printed.find("(1): LayerNorm((4,)") != std::string::npos, printed);
    // extend shares the modules, also with itself
    ModuleList<double> twice;
    twice.extend(*list);
    twice.extend(twice);
    BOOST_TEST(twice.size() == 6u);
    BOOST_TEST(twice[3] == lin);
    BOOST_TEST(twice.parameters().size() == 4u);  // shared parameters count once
    expect_error<xg::IndexError>([&] { (void)(*list)[3]; }, {"ModuleList", "index 3", "3 modules"});
    expect_error<xg::ValueError>([&] { list->push_back(std::shared_ptr<Linear<double>>()); }, {"ModuleList", "null"});
}

namespace {
// A model holding its layers in a ModuleList: Linear, LayerNorm, tanh, then a last Linear.
struct ListNet : xg::nn::Module<double> {
    std::shared_ptr<xg::nn::ModuleList<double>> blocks;
    ListNet() {
        xg::nn::Generator gen(11);
        const xg::nn::LinearOptions o{.init = xg::nn::Init::xavier(), .generator = &gen};
        blocks = register_module("blocks", std::make_shared<xg::nn::ModuleList<double>>());
        for (std::size_t i = 0; i < 2; ++i) {
            blocks->push_back(std::make_shared<xg::nn::Linear<double>>(i == 0 ? 3 : 8, 8, o));
            blocks->push_back(std::make_shared<xg::nn::LayerNorm<double>>(xg::Shape{8}));
        }
        blocks->push_back(std::make_shared<xg::nn::Linear<double>>(8, 2, o));
    }
    V forward(V x) {
        for (std::size_t i = 0; i + 1 < blocks->size(); i += 2) {
            auto& linear = *blocks->get<xg::nn::Linear<double>>(i);
            auto& norm = *blocks->get<xg::nn::LayerNorm<double>>(i + 1);
            x = xg::tanh(norm(linear(x)));
        }
        return (*blocks->get<xg::nn::Linear<double>>(blocks->size() - 1))(x);
    }
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_model_with_a_module_list_trains) {
    ListNet net;
    BOOST_TEST(net.parameters().size() == 10u);
    BOOST_TEST(net.state_dict()[2].first == "blocks.1.weight");
    const V x(random_array({16, 3}, 12));
    xg::Labels y = xg::Labels::from_shape({16});
    for (std::size_t i = 0; i < 16; ++i) y(i) = x.data()(i, 0) > 0 ? 1 : 0;
    xg::optim::SGD<double> sgd(net.parameters(), {.lr = 0.1});
    auto loss = [&] { return xg::softmax_cross_entropy(net.forward(x), y); };
    const double before = loss().item();
    for (int step = 0; step < 5; ++step) {
        sgd.zero_grad();
        loss().backward();
        for (const V& p : net.parameters()) BOOST_TEST(p.has_grad());
        sgd.step();
    }
    BOOST_TEST(loss().item() < before);
}

BOOST_AUTO_TEST_SUITE_END()
