// The convolutional layers (nn/conv.hpp): parameters, shapes and names, initialisation with
// torch's fans, state_dict and checkpoint round trips of a small ConvNet, BatchNorm2d against a
// direct computation in training and evaluation (and its running statistics), errors and
// printing.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

namespace nn = xg::nn;
using V = xg::Variable<double>;
using A = xg::Array<double>;
namespace tt = boost::test_tools;
using xgt::expect_error;

namespace {

using xgt::close;
using xgt::random_array;

double max_abs(const A& w) {
    double m = 0;
    for (double v : w) m = std::max(m, std::abs(v));
    return m;
}

// The sample mean and standard deviation of a weight's entries.
std::pair<double, double> mean_std(const A& w) {
    double s = 0, s2 = 0;
    for (double v : w) s += v;
    const double m = s / double(w.size());
    for (double v : w) s2 += (v - m) * (v - m);
    return {m, std::sqrt(s2 / double(w.size()))};
}

// Sequential(Conv2d(2 -> 4, 3x3, pad 1), BatchNorm2d(4), ReLU, MaxPool2d(2), Flatten, Linear(36 -> 5))
// for inputs (N, 2, 6, 6).
std::shared_ptr<nn::Sequential<double>> small_convnet(std::uint64_t seed) {
    nn::Generator gen(seed);
    auto net = std::make_shared<nn::Sequential<double>>();
    net->push_back(std::make_shared<nn::Conv2d<double>>(2, 4, 3, nn::Conv2dLayerOptions{.padding = 1, .generator = &gen}));
    net->push_back(std::make_shared<nn::BatchNorm2d<double>>(4));
    net->push_back(std::make_shared<nn::ReLU<double>>());
    net->push_back(std::make_shared<nn::MaxPool2d<double>>(xg::Pool2dOptions{2}));
    net->push_back(std::make_shared<nn::Flatten<double>>());
    net->push_back(std::make_shared<nn::Linear<double>>(36, 5, nn::LinearOptions{.generator = &gen}));
    return net;
}

// BatchNorm2d by its definition, per channel over (N, H, W), with the biased variance.
struct BatchStats {
    A y, mean, var;
};
BatchStats batch_norm_reference(const A& x, const A& gamma, const A& beta, double eps) {
    const std::size_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
    BatchStats r{A::from_shape(x.shape()), A::from_shape({c}), A::from_shape({c})};
    const double count = double(n * h * w);
    for (std::size_t ch = 0; ch < c; ++ch) {
        double s = 0, s2 = 0;
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t i = 0; i < h; ++i)
                for (std::size_t j = 0; j < w; ++j) s += x(b, ch, i, j);
        const double m = s / count;
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t i = 0; i < h; ++i)
                for (std::size_t j = 0; j < w; ++j) s2 += (x(b, ch, i, j) - m) * (x(b, ch, i, j) - m);
        const double var = s2 / count;
        r.mean(ch) = m;
        r.var(ch) = var;
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t i = 0; i < h; ++i)
                for (std::size_t j = 0; j < w; ++j)
                    r.y(b, ch, i, j) = (x(b, ch, i, j) - m) / std::sqrt(var + eps) * gamma(ch) + beta(ch);
    }
    return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conv_nn)

BOOST_AUTO_TEST_CASE(conv_layers_parameters_shapes_and_names) {
    nn::Conv2d<double> conv(3, 8, 3, {.padding = 1});
    BOOST_TEST(xgt::names_and_shapes(conv.named_parameters()) == (std::vector<std::string>{"weight (8, 3, 3, 3)", "bias (8,)"}),
               tt::per_element());
    BOOST_TEST(conv.decayed_parameters().size() == 1u);  // the weight, as Linear's
    BOOST_TEST(conv.decayed_parameters()[0].node() == conv.weight().node());
    BOOST_TEST(xt::all(xt::equal(conv.bias().data(), 0.0)));
    BOOST_TEST(conv.named_buffers().empty());

    nn::Conv2d<double> grouped(4, 6, {3, 2}, {.groups = 2, .bias = false});
    BOOST_TEST(xgt::names_and_shapes(grouped.named_parameters()) == (std::vector<std::string>{"weight (6, 2, 3, 2)"}), tt::per_element());
    BOOST_TEST(!grouped.bias().defined());

    nn::ConvTranspose2d<double> up(4, 6, 3, {.stride = 2, .groups = 2});
    BOOST_TEST(xgt::names_and_shapes(up.named_parameters()) == (std::vector<std::string>{"weight (4, 3, 3, 3)", "bias (6,)"}),
               tt::per_element());
    BOOST_TEST(up.decayed_parameters().size() == 1u);

    const nn::MaxPool2d<double> maxpool(xg::Pool2dOptions{2});
    const nn::AvgPool2d<double> avgpool(xg::Pool2dOptions{3, 2, 1});
    const nn::AdaptiveAvgPool2d<double> adaptive(xg::Size2(3, 3));
    for (const nn::Module<double>* m : {static_cast<const nn::Module<double>*>(&maxpool),
                                        static_cast<const nn::Module<double>*>(&avgpool),
                                        static_cast<const nn::Module<double>*>(&adaptive)}) {
        BOOST_TEST(m->parameters().empty());
        BOOST_TEST(m->named_buffers().empty());
    }

    nn::BatchNorm2d<double> bn(5);
    BOOST_TEST(xgt::names_and_shapes(bn.named_parameters()) == (std::vector<std::string>{"weight (5,)", "bias (5,)"}), tt::per_element());
    BOOST_TEST(xgt::names_and_shapes(bn.named_buffers()) == (std::vector<std::string>{"running_mean (5,)", "running_var (5,)"}),
               tt::per_element());
    BOOST_TEST(bn.decayed_parameters().empty());
}

BOOST_AUTO_TEST_CASE(forward_is_the_op) {
    nn::Conv2d<double> conv(4, 6, {3, 2}, {.stride = {2, 1}, .padding = 1, .groups = 2});
    conv.bias().mutable_data() = random_array({6}, 1);
    const V x(random_array({2, 4, 7, 5}, 2));
    const V y = conv(x);
    BOOST_TEST(xg::shape_str(y.shape()) == "(2, 6, 4, 6)");
    BOOST_TEST(close(y.data(), xg::conv2d(x, conv.weight(), conv.bias(), {{2, 1}, 1, 1, 2}).data()));

    nn::ConvTranspose2d<double> up(4, 6, 3, {.stride = 2, .padding = 1, .output_padding = 1, .groups = 2});
    const V z = up(x);
    BOOST_TEST(xg::shape_str(z.shape()) == "(2, 6, 14, 10)");
    BOOST_TEST(close(z.data(), xg::conv_transpose2d(x, up.weight(), up.bias(), {2, 1, 1, 2}).data()));

    BOOST_TEST(close(nn::MaxPool2d<double>({3, 2, 1})(x).data(), xg::max_pool2d(x, {3, 2, 1}).data(), 0));
    BOOST_TEST(close(nn::AvgPool2d<double>({3, 2, 1}, false)(x).data(), xg::avg_pool2d(x, {3, 2, 1}, false).data(), 0));
    BOOST_TEST(close(nn::AdaptiveAvgPool2d<double>({3, 2})(x).data(), xg::adaptive_avg_pool2d(x, {3, 2}).data(), 0));
}

namespace {
struct DerivedConv2d : nn::Conv2d<float> {
    using nn::Conv2d<float>::Conv2d;
};
}  // namespace

// Sequential runs a Conv2d then a ReLU as one conv2d_relu op. The output, relu's output and the
// input and weight gradients must be the very bits of the two layers run one by one (float, 13
// pixels per row and 7 channels leave SIMD tails); the bias gradient sums the same numbers in
// another order (per image, then over images), so it agrees to rounding.
BOOST_AUTO_TEST_CASE(sequential_fuses_conv2d_relu) {
    using F = xg::Variable<float>;
    using FA = xg::Array<float>;
    nn::Generator gen(5);
    auto conv = std::make_shared<nn::Conv2d<float>>(3, 7, 3, nn::Conv2dLayerOptions{.padding = 1, .generator = &gen});
    conv->bias().mutable_data() = xt::cast<float>(random_array({7}, 4, -0.5, 0.5));
    auto head = std::make_shared<nn::Linear<float>>(7 * 5 * 6, 3, nn::LinearOptions{.generator = &gen});
    // a 3x3 pool of stride 2: not the 2x2 pool that conv2d_relu_max_pool2d fuses
    const xg::Pool2dOptions pool{.kernel = 3, .stride = 2};
    nn::Sequential<float> net(conv, std::make_shared<nn::ReLU<float>>(), std::make_shared<nn::MaxPool2d<float>>(pool),
                              std::make_shared<nn::Flatten<float>>(), head);
    const FA xa = xt::cast<float>(random_array({4, 3, 11, 13}, 5));
    xg::Labels t = xg::Labels::from_shape({4});
    for (std::size_t i = 0; i < t.size(); ++i) t(i) = static_cast<std::int64_t>(i % 3);

    auto run = [&](bool fused) {
        for (const F& p : net.parameters()) p.zero_grad();
        const F x(xa, true);
        F hidden;
        F y;
        if (fused) {
            y = net(x);
            // head <- flatten <- max_pool2d <- conv2d_relu
            hidden = y.creator()->inputs()[0].creator()->inputs()[0].creator()->inputs()[0];
        } else {
            hidden = xg::relu(conv->forward(x));
            y = head->forward(xg::flatten(xg::max_pool2d(hidden, pool), 1));
        }
        BOOST_TEST(hidden.creator()->name() == (fused ? "conv2d_relu" : "relu"));
        xg::softmax_cross_entropy(y, t).backward();
        return std::vector<FA>{y.data(), hidden.data(), x.grad().data(), conv->weight().grad().data(),
                               head->weight().grad().data(), conv->bias().grad().data()};
    };
    const std::vector<FA> fused = run(true), apart = run(false);
    const std::size_t zeros = xt::sum(xt::equal(fused[1], 0.0f))();
    BOOST_TEST((zeros > 200u && zeros < fused[1].size() - 200u));  // relu's mask is at work
    for (std::size_t i = 0; i + 1 < fused.size(); ++i) {
        BOOST_TEST_CONTEXT("array " << i) { BOOST_TEST(fused[i] == apart[i], tt::per_element()); }
    }
    BOOST_TEST(close(xt::cast<double>(fused.back()), xt::cast<double>(apart.back()), 1e-5));
    {
        xg::NoGradGuard no_grad;
        BOOST_TEST(net(F(xa)).data() == fused[0], tt::per_element());
    }
    // create_graph records the backward from ops: the same gradients again, differentiable
    for (const F& p : net.parameters()) p.zero_grad();
    const F x(xa, true);
    const std::vector<F> g = xg::grad(xg::softmax_cross_entropy(net(x), t), {x, conv->weight()}, F(), {.create_graph = true});
    BOOST_TEST(g[0].data() == fused[2], tt::per_element());
    BOOST_TEST(g[1].data() == fused[3], tt::per_element());
    BOOST_TEST(g[0].requires_grad());

    // Only the library's own Conv2d and ReLU fuse: a subclass may override forward().
    const auto first_op = [&](auto first, auto second) {
        return nn::Sequential<float>(first, second)(F(xa)).creator()->name();
    };
    BOOST_TEST(first_op(conv, std::make_shared<nn::ActivationLayer<float>>(nn::Activation::relu)) == "conv2d_relu");
    BOOST_TEST(first_op(std::make_shared<DerivedConv2d>(3, 2, 3), std::make_shared<nn::ReLU<float>>()) == "relu");
    BOOST_TEST(first_op(conv, std::make_shared<nn::LeakyReLU<float>>()) == "leaky_relu");
    // the fused layer still names itself on a wrong channel count
    expect_error<xg::ShapeError>([&] { net(F(FA(xt::zeros<float>({1, 4, 11, 13})))); },
                                 {"Conv2d(3, 7", "(1, 4, 11, 13)"});
}

// Sequential runs a Conv2d, a ReLU, a MaxPool2d(2) and a Flatten as one conv2d_relu_max_pool2d op
// (flat output): the output and the input and weight gradients are the bits of the four layers
// run one by one
// (float, odd sizes, a batch of several chunks of the weight gradient); the bias gradient sums
// in another order (per image, then over images), so it agrees to rounding.
BOOST_AUTO_TEST_CASE(sequential_fuses_conv2d_relu_max_pool2d) {
    using F = xg::Variable<float>;
    using FA = xg::Array<float>;
    nn::Generator gen(6);
    auto conv = std::make_shared<nn::Conv2d<float>>(3, 6, 3, nn::Conv2dLayerOptions{.padding = 1, .generator = &gen});
    conv->bias().mutable_data() = xt::cast<float>(random_array({6}, 4, -0.5, 0.5));
    auto pool = std::make_shared<nn::MaxPool2d<float>>(xg::Pool2dOptions{.kernel = 2});
    auto head = std::make_shared<nn::Linear<float>>(6 * 5 * 6, 3, nn::LinearOptions{.generator = &gen});
    nn::Sequential<float> net(conv, std::make_shared<nn::ReLU<float>>(), pool, std::make_shared<nn::Flatten<float>>(), head);
    const FA xa = xt::cast<float>(random_array({21, 3, 11, 13}, 5));
    xg::Labels t = xg::Labels::from_shape({21});
    for (std::size_t i = 0; i < t.size(); ++i) t(i) = static_cast<std::int64_t>(i % 3);

    auto run = [&](bool fused) {
        for (const F& p : net.parameters()) p.zero_grad();
        const F x(xa, true);
        F pooled, y;  // pooled: flattened
        if (fused) {
            y = net(x);
            pooled = y.creator()->inputs()[0];  // head <- the fused op, flat
            BOOST_TEST(std::string(pooled.creator()->name()) == "conv2d_relu_max_pool2d");
        } else {
            pooled = xg::flatten(pool->forward(xg::relu(conv->forward(x))), 1);
            y = head->forward(pooled);
        }
        xg::softmax_cross_entropy(y, t).backward();
        return std::vector<FA>{y.data(), pooled.data(), x.grad().data(), conv->weight().grad().data(),
                               head->weight().grad().data(), conv->bias().grad().data()};
    };
    const std::vector<FA> fused = run(true), apart = run(false);
    for (std::size_t i = 0; i + 1 < fused.size(); ++i) {
        BOOST_TEST_CONTEXT("array " << i) { BOOST_TEST(fused[i] == apart[i], tt::per_element()); }
    }
    BOOST_TEST(close(xt::cast<double>(fused.back()), xt::cast<double>(apart.back()), 1e-5));
    // The pool joins only a fused Conv2d and ReLU, and only the library's own MaxPool2d.
    const auto op_under_flatten = [&](auto third) {
        return std::string(nn::Sequential<float>(conv, std::make_shared<nn::ReLU<float>>(), third)(F(xa)).creator()->name());
    };
    BOOST_TEST(op_under_flatten(pool) == "conv2d_relu_max_pool2d");
    BOOST_TEST(op_under_flatten(std::make_shared<nn::AvgPool2d<float>>(xg::Pool2dOptions{.kernel = 2})) == "avg_pool2d");
    BOOST_TEST(std::string(nn::Sequential<float>(conv, pool)(F(xa)).creator()->name()) == "max_pool2d");
    // The Flatten joins only as flatten(1, -1) (or (1, 3)); any other runs after the fused op.
    const auto flattened = [&](long start, long end) {
        return nn::Sequential<float>(conv, std::make_shared<nn::ReLU<float>>(), pool,
                                     std::make_shared<nn::Flatten<float>>(start, end))(F(xa));
    };
    const F joined = flattened(1, -1);
    BOOST_TEST(std::string(joined.creator()->name()) == "conv2d_relu_max_pool2d");
    BOOST_TEST(joined.shape() == xg::Shape({21, 180}), tt::per_element());
    BOOST_TEST(std::string(flattened(1, 3).creator()->name()) == "conv2d_relu_max_pool2d");
    const F other = flattened(2, -1);
    BOOST_TEST(std::string(other.creator()->name()) != "conv2d_relu_max_pool2d");
    BOOST_TEST(other.shape() == xg::Shape({21, 6, 30}), tt::per_element());
    xg::Array<float> joined_3d = joined.data();
    joined_3d.reshape({21, 6, 30});
    BOOST_TEST(other.data() == joined_3d, tt::per_element());
}

BOOST_AUTO_TEST_CASE(init_uses_torch_fans) {
    // He: std sqrt(2 / fan_in) with fan_in = in / groups * kh * kw; 73728 draws estimate it within
    // about 0.3% (one sigma), so 2% is far outside chance.
    nn::Generator gen(7);
    const nn::Conv2d<double> conv(64, 128, 3, {.generator = &gen});
    auto [m, s] = mean_std(conv.weight().data());
    BOOST_TEST(std::abs(m) < 0.002);
    BOOST_TEST(s == std::sqrt(2.0 / (64 * 9)), tt::tolerance(0.02));

    const nn::Conv2d<double> grouped(64, 128, 3, {.groups = 4, .generator = &gen});
    BOOST_TEST(mean_std(grouped.weight().data()).second == std::sqrt(2.0 / (16 * 9)), tt::tolerance(0.02));

    const nn::Conv2d<double> rect(32, 64, {5, 3}, {.init = nn::Init::xavier(), .generator = &gen});
    BOOST_TEST(mean_std(rect.weight().data()).second == std::sqrt(1.0 / (32 * 15)), tt::tolerance(0.02));

    // he_uniform: U(-a, a), a = sqrt(6 / fan_in): every draw inside, the extremes near a
    const nn::Conv2d<double> uni(16, 64, 3, {.init = nn::Init::he_uniform(), .generator = &gen});
    const double a = std::sqrt(6.0 / (16 * 9));
    BOOST_TEST(max_abs(uni.weight().data()) <= a);
    BOOST_TEST(max_abs(uni.weight().data()) > 0.99 * a);

    // ConvTranspose2d: weight (in, out / groups, kh, kw), torch's fan_in = out / groups * kh * kw
    const nn::ConvTranspose2d<double> up(64, 32, 4, {.generator = &gen});
    BOOST_TEST(mean_std(up.weight().data()).second == std::sqrt(2.0 / (32 * 16)), tt::tolerance(0.02));

    // glorot_uniform: a = sqrt(6 / (fan_in + fan_out)), fan_out = out * kh * kw
    const nn::Conv2d<double> glorot(16, 32, 3, {.init = nn::Init::glorot_uniform(), .generator = &gen});
    const double g = std::sqrt(6.0 / (16 * 9 + 32 * 9));
    BOOST_TEST(max_abs(glorot.weight().data()) <= g);
    BOOST_TEST(max_abs(glorot.weight().data()) > 0.99 * g);

    // the fan rules themselves; Linear's (in, out) weights keep theirs
    const nn::Fan cf = nn::conv_fan({128, 16, 3, 5});
    BOOST_TEST(cf.in == 16u * 15);
    BOOST_TEST(cf.out == 128u * 15);
    const nn::Fan lf = nn::linear_fan({300, 200}, "test");
    BOOST_TEST(lf.in == 300u);
    BOOST_TEST(lf.out == 200u);
    for (const nn::Init init : {nn::Init::he(), nn::Init::xavier(), nn::Init::glorot_uniform(), nn::Init::he_uniform()}) {
        V w1(A::from_shape({30, 20})), w2(A::from_shape({30, 20}));
        nn::Generator g1(3), g2(3);
        init.apply(w1, g1);
        init.apply(w2, g2, nn::linear_fan(w2.shape(), "test"));
        BOOST_TEST(xt::all(xt::equal(w1.data(), w2.data())), init.str());  // the same draws
    }
    const nn::Linear<double> lin(300, 200, {.generator = &gen});
    BOOST_TEST(mean_std(lin.weight().data()).second == std::sqrt(2.0 / 300), tt::tolerance(0.02));
    V w(A::from_shape({2, 0, 3, 3}));
    expect_error<xg::ValueError>([&] { nn::Init::he().apply(w, gen, nn::conv_fan(w.shape())); },
                                 {"he", "fan_in", "(2, 0, 3, 3)"});
}

BOOST_AUTO_TEST_CASE(batchnorm2d_training_matches_direct_computation) {
    nn::BatchNorm2d<double> bn(3, {.eps = 1e-3, .momentum = 0.2});
    const A gamma = {1.5, -0.5, 2.0}, beta = {0.25, 0.0, -1.0};
    bn.gamma().mutable_data() = gamma;
    bn.beta().mutable_data() = beta;
    A rm = xg::full<double>({3}, 0.0), rv = xg::full<double>({3}, 1.0);
    for (unsigned step = 0; step < 3; ++step) {
        // offsets and scales per channel, so the statistics differ
        A x = random_array({4, 3, 5, 3}, 10 + step);
        for (std::size_t b = 0; b < 4; ++b)
            for (std::size_t c = 0; c < 3; ++c)
                for (std::size_t i = 0; i < 5; ++i)
                    for (std::size_t j = 0; j < 3; ++j) x(b, c, i, j) = x(b, c, i, j) * double(c + 1) + double(c) * 3.0;
        const BatchStats want = batch_norm_reference(x, gamma, beta, 1e-3);
        BOOST_TEST(close(bn(V(x)).data(), want.y));
        rm = 0.8 * rm + 0.2 * want.mean;
        rv = 0.8 * rv + 0.2 * want.var;  // the biased batch variance, as BatchNorm1d
        BOOST_TEST(close(bn.running_mean().data(), rm));
        BOOST_TEST(close(bn.running_var().data(), rv));
    }
    // evaluation: the running statistics, and they stay put
    bn.eval();
    const A kept = bn.running_mean().data();
    const A x = random_array({2, 3, 4, 4}, 20);
    const A y = bn(V(x)).data();
    for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t c = 0; c < 3; ++c)
            for (std::size_t i = 0; i < 4; ++i)
                for (std::size_t j = 0; j < 4; ++j)
                    BOOST_TEST(y(b, c, i, j) == (x(b, c, i, j) - rm(c)) / std::sqrt(rv(c) + 1e-3) * gamma(c) + beta(c),
                               tt::tolerance(1e-12));
    BOOST_TEST(xt::all(xt::equal(bn.running_mean().data(), kept)));
    BOOST_TEST(close(bn(V(A::from_shape({0, 3, 4, 4}))).data(), A::from_shape({0, 3, 4, 4})));  // N = 0 in eval
    bn.train();
    // a single value per channel has no batch variance (torch refuses it too)
    expect_error<xg::ValueError>([&] { bn(V(A::from_shape({1, 3, 1, 1}))); },
                                 {"BatchNorm2d(3", "more than one value", "(1, 3, 1, 1)"});
    BOOST_CHECK_NO_THROW(bn(V(random_array({1, 3, 1, 2}, 3))));  // two values per channel are enough
}

BOOST_AUTO_TEST_CASE(batchnorm2d_gradients) {
    nn::BatchNorm2d<double> bn(3);
    bn.gamma().mutable_data() = A{1.5, -0.5, 2.0};
    bn.beta().mutable_data() = A{0.1, 0.2, -0.3};
    const V x(random_array({3, 3, 4, 5}, 9), true);
    const V w(random_array({3, 3, 4, 5}, 10));
    const auto r = xg::gradcheck_params<double>([&] { return xg::sum(xg::tanh(bn(x)) * w); }, {x, bn.gamma(), bn.beta()},
                                                1e-6, 1e-7, 1e-5);
    BOOST_TEST(r.ok, r.str());
    bn.eval();
    const auto e = xg::gradcheck_params<double>([&] { return xg::sum(xg::tanh(bn(x)) * w); }, {x, bn.gamma(), bn.beta()},
                                                1e-6, 1e-7, 1e-5);
    BOOST_TEST(e.ok, e.str());
}

BOOST_AUTO_TEST_CASE(convnet_state_dict_and_checkpoint_round_trip) {
    const auto net = small_convnet(1);
    BOOST_TEST(xgt::names_and_shapes(net->named_parameters()) ==
                   (std::vector<std::string>{"0.weight (4, 2, 3, 3)", "0.bias (4,)", "1.weight (4,)", "1.bias (4,)",
                                             "5.weight (36, 5)", "5.bias (5,)"}),
               tt::per_element());
    BOOST_TEST(xgt::names_and_shapes(net->named_buffers()) == (std::vector<std::string>{"1.running_mean (4,)", "1.running_var (4,)"}),
               tt::per_element());
    const A xa = random_array({3, 2, 6, 6}, 4);
    const V x(xa);
    // a few training steps move the weights and the running statistics
    xg::optim::SGD<double> opt(net->parameters(), {.lr = 0.1});
    for (int step = 0; step < 3; ++step) {
        net->zero_grad();
        xg::softmax_cross_entropy((*net)(x), xg::Labels{0, 3, 1}).backward();
        opt.step();
    }
    BOOST_TEST(!xt::all(xt::equal(net->named_buffers()[0].second.data(), 0.0)));
    net->eval();
    const A before = (*net)(x).data();
    BOOST_TEST(xg::shape_str(before.shape()) == "(3, 5)");

    const auto other = small_convnet(2);
    other->eval();
    BOOST_TEST(!close((*other)(x).data(), before));
    other->load_state_dict(net->state_dict());
    BOOST_TEST(xt::all(xt::equal((*other)(x).data(), before)));

    xgt::TempDir dir{"conv-nn"};
    nn::save(dir / "convnet.npz", *net);
    const auto fresh = small_convnet(3);
    fresh->eval();
    nn::load(dir / "convnet.npz", *fresh);
    BOOST_TEST(xt::all(xt::equal((*fresh)(x).data(), before)));  // bit for bit, running statistics included

    // float: the same layers train
    nn::Sequential<float> fnet(std::make_shared<nn::Conv2d<float>>(2, 3, 3), std::make_shared<nn::BatchNorm2d<float>>(3),
                               std::make_shared<nn::ReLU<float>>(), std::make_shared<nn::AvgPool2d<float>>(xg::Pool2dOptions{2}),
                               std::make_shared<nn::AdaptiveAvgPool2d<float>>(1), std::make_shared<nn::Flatten<float>>());
    const xg::Variable<float> xf(xt::cast<float>(xa));
    xg::sum(fnet(xf)).backward();
    for (const auto& p : fnet.parameters()) BOOST_TEST(p.has_grad());
    BOOST_TEST(xg::shape_str(fnet(xf).shape()) == "(3, 3)");

    // a checkpoint of another architecture is refused, naming the entry
    nn::Sequential<double> wrong(std::make_shared<nn::Conv2d<double>>(2, 5, 3));
    expect_error<xg::Error>([&] { nn::load(dir / "convnet.npz", wrong); }, {});
}

BOOST_AUTO_TEST_CASE(errors_name_the_layer) {
    nn::Conv2d<double> conv(3, 8, 3);
    expect_error<xg::ShapeError>([&] { conv(V(A::from_shape({2, 4, 5, 5}))); },
                                 {"Conv2d(3, 8, kernel_size=(3, 3)", "(N, 3, H, W)", "(2, 4, 5, 5)"});
    expect_error<xg::ShapeError>([&] { conv(V(A::from_shape({3, 5, 5}))); }, {"Conv2d(3, 8", "(3, 5, 5)"});
    nn::ConvTranspose2d<double> up(3, 8, 3);
    expect_error<xg::ShapeError>([&] { up(V(A::from_shape({2, 8, 5, 5}))); }, {"ConvTranspose2d(3, 8", "(2, 8, 5, 5)"});
    nn::BatchNorm2d<double> bn(4);
    expect_error<xg::ShapeError>([&] { bn(V(A::from_shape({2, 3, 5, 5}))); },
                                 {"BatchNorm2d(4", "(N, 4, H, W)", "(2, 3, 5, 5)"});
    expect_error<xg::ShapeError>([&] { bn(V(A::from_shape({2, 4}))); }, {"BatchNorm2d(4", "(2, 4)"});

    expect_error<xg::ShapeError>([] { nn::Conv2d<double>(0, 8, 3); }, {"Conv2d", "0 -> 8"});
    expect_error<xg::ValueError>([] { nn::Conv2d<double>(3, 8, 0); }, {"Conv2d", "kernel_size", "(0, 0)"});
    expect_error<xg::ValueError>([] { nn::Conv2d<double>(3, 8, 3, {.stride = {1, 0}}); },
                                 {"Conv2d", "stride", "(1, 0)"});
    expect_error<xg::ValueError>([] { nn::Conv2d<double>(3, 8, 3, {.padding = -1}); }, {"Conv2d", "padding"});
    expect_error<xg::ValueError>([] { nn::Conv2d<double>(3, 8, 3, {.dilation = 0}); }, {"Conv2d", "dilation"});
    expect_error<xg::ShapeError>([] { nn::Conv2d<double>(4, 6, 3, {.groups = 4}); }, {"Conv2d", "groups 4", "4", "6"});
    expect_error<xg::ValueError>([] { nn::Conv2d<double>(4, 6, 3, {.groups = 0}); }, {"Conv2d", "groups"});
    expect_error<xg::ValueError>([] { nn::ConvTranspose2d<double>(4, 6, 3, {.stride = 2, .output_padding = 2}); },
                                 {"ConvTranspose2d", "output_padding", "(2, 2)"});
    expect_error<xg::ResourceError>([] { nn::Conv2d<float>(1L << 20, 1L << 20, 1L << 10); },
                                    {"Conv2d(1048576, 1048576"});
    expect_error<xg::ValueError>([] { nn::MaxPool2d<double>({0}); }, {"MaxPool2d", "kernel_size"});
    expect_error<xg::ValueError>([] { nn::MaxPool2d<double>({3, 1, 2}); }, {"MaxPool2d", "padding", "half"});
    expect_error<xg::ValueError>([] { nn::AvgPool2d<double>({2, xg::Size2(1, -1)}); },
                                 {"AvgPool2d", "stride", "(1, -1)"});
    expect_error<xg::ValueError>([] { nn::AdaptiveAvgPool2d<double>({0, 3}); }, {"AdaptiveAvgPool2d", "(0, 3)"});
    expect_error<xg::ShapeError>([] { nn::BatchNorm2d<double>(0); }, {"BatchNorm2d", "channels"});
    expect_error<xg::ValueError>([] { nn::BatchNorm2d<double>(3, {.eps = 0}); }, {"BatchNorm2d", "eps"});
    expect_error<xg::ValueError>([] { nn::BatchNorm2d<double>(3, {.momentum = 1.5}); }, {"BatchNorm2d", "momentum"});
}

BOOST_AUTO_TEST_CASE(printing) {
    BOOST_TEST(nn::Conv2d<double>(1, 30, 5).repr() == "Conv2d(1, 30, kernel_size=(5, 5), stride=(1, 1), init=he)");
    BOOST_TEST(nn::Conv2d<double>(4, 6, {3, 2}, {.stride = 2, .padding = {1, 0}, .dilation = 2, .groups = 2, .bias = false,
                                                  .init = nn::Init::xavier()})
                   .repr() == "Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 2), padding=(1, 0), dilation=(2, 2), "
                              "groups=2, bias=False, init=xavier)");
    BOOST_TEST(nn::ConvTranspose2d<double>(16, 8, 3, {.stride = 2, .padding = 1, .output_padding = 1}).repr() ==
               "ConvTranspose2d(16, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), init=he)");
    BOOST_TEST(nn::MaxPool2d<double>({2}).repr() == "MaxPool2d(kernel_size=2, stride=2, padding=0)");
    BOOST_TEST(nn::MaxPool2d<double>({{3, 2}, 1, {1, 0}}).repr() == "MaxPool2d(kernel_size=(3, 2), stride=1, padding=(1, 0))");
    BOOST_TEST(nn::AvgPool2d<double>({3, 2, 1}).repr() == "AvgPool2d(kernel_size=3, stride=2, padding=1)");
    BOOST_TEST(nn::AvgPool2d<double>({2}, false).repr() == "AvgPool2d(kernel_size=2, stride=2, padding=0, count_include_pad=False)");
    BOOST_TEST(nn::AdaptiveAvgPool2d<double>({5, 7}).repr() == "AdaptiveAvgPool2d(output_size=(5, 7))");
    BOOST_TEST(nn::AdaptiveAvgPool2d<double>(1).repr() == "AdaptiveAvgPool2d(output_size=1)");
    BOOST_TEST(nn::BatchNorm2d<double>(16).repr() == "BatchNorm2d(16, eps=1e-05, momentum=0.1)");
    const std::string s = small_convnet(1)->str();
    BOOST_TEST(s == "Sequential\n"
                    "  (0): Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), init=he)\n"
                    "  (1): BatchNorm2d(4, eps=1e-05, momentum=0.1)\n"
                    "  (2): ReLU\n"
                    "  (3): MaxPool2d(kernel_size=2, stride=2, padding=0)\n"
                    "  (4): Flatten(start_dim=1, end_dim=-1)\n"
                    "  (5): Linear(36 -> 5, init=he)\n",
               s);
}

BOOST_AUTO_TEST_SUITE_END()
