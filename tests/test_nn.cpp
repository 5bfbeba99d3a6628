// nn: module registration and naming, modes, layers against hand numbers, initialisers'
// statistics, the symmetry of equal weights, weight decay, and MultiLayerNet's gradients.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numeric>

#include <xtensor/xmath.hpp>
#include <xtensor/xrandom.hpp>
#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "xgrad.hpp"

namespace nn = xg::nn;
namespace tt = boost::test_tools;
using V = xg::Variable<double>;
using A = xg::Array<double>;

namespace {

A random_normal(std::vector<std::size_t> shape, unsigned seed) {
    xt::random::seed(seed);
    return xt::random::randn<double>(shape);
}

nn::MultiLayerNetOptions small_net(bool batchnorm, double dropout, double weight_decay) {
    return {.input_size = 5, .hidden_sizes = {4, 3}, .output_size = 3, .activation = nn::Activation::tanh,
            .init = nn::Init::xavier(), .use_batchnorm = batchnorm, .dropout = dropout,
            .weight_decay = weight_decay, .seed = 7};
}

// Every parameter of `net` checked against central differences of its loss on a fixed batch.
void check_net_gradients(nn::MultiLayerNet<double>& net) {
    const V x(random_normal({6, 5}, 3));
    const xg::Labels t = {0, 2, 1, 1, 0, 2};
    auto loss = [&] {
        for (const auto& layer : net.layers())  // the same dropout masks at every evaluation
            if (auto* d = dynamic_cast<nn::Dropout<double>*>(layer.get())) d->seed(11);
        return net.loss(x, t);
    };
    const xg::GradcheckReport r = xg::gradcheck_params<double>(loss, net.parameters(), 1e-6, 1e-7, 1e-5);
    BOOST_TEST(r.ok, r.str());
    BOOST_TEST(r.inputs.size() == net.parameters().size());
}

double std_of(const A& a) {
    double sum = 0, squares = 0;
    for (const double v : a) sum += v;
    const double mean = sum / static_cast<double>(a.size());
    for (const double v : a) squares += (v - mean) * (v - mean);
    return std::sqrt(squares / static_cast<double>(a.size()));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nn_module)

BOOST_AUTO_TEST_CASE(named_parameters_are_dotted_and_ordered) {
    nn::MultiLayerNet<float> net({.input_size = 4, .hidden_sizes = {3}, .output_size = 2, .use_batchnorm = true});
    std::vector<std::string> names;
    for (const auto& [name, p] : net.named_parameters()) names.push_back(name);
    const std::vector<std::string> want = {"layers.0.weight", "layers.0.bias", "layers.1.weight",
                                           "layers.1.bias",   "layers.3.weight", "layers.3.bias"};
    BOOST_TEST(names == want, tt::per_element());
    std::vector<std::string> buffers;
    for (const auto& [name, b] : net.named_buffers()) buffers.push_back(name);
    BOOST_TEST(buffers == (std::vector<std::string>{"layers.1.running_mean", "layers.1.running_var"}),
               tt::per_element());
    BOOST_TEST(net.parameters().size() == 6u);
    for (const auto& p : net.parameters()) BOOST_TEST(p.requires_grad());
    // Weight decay applies to the affine weights only: not biases, not batch norm's gamma.
    const auto decayed = net.decayed_parameters();
    BOOST_REQUIRE(decayed.size() == 2u);
    BOOST_TEST(decayed[0].shape() == (xg::Shape{4, 3}));
    BOOST_TEST(decayed[1].shape() == (xg::Shape{3, 2}));
    BOOST_TEST(net.str().find("BatchNorm1d(3") != std::string::npos, net.str());
}

BOOST_AUTO_TEST_CASE(train_and_eval_propagate_to_children) {
    nn::MultiLayerNet<float> net({.input_size = 4, .hidden_sizes = {3, 3}, .output_size = 2, .dropout = 0.5});
    BOOST_TEST(net.is_training());
    net.eval();
    for (const auto& layer : net.layers()) BOOST_TEST(!layer->is_training());
    net.train();
    for (const auto& layer : net.layers()) BOOST_TEST(layer->is_training());
}

BOOST_AUTO_TEST_CASE(shared_parameter_listed_once_and_zero_grad) {
    auto a = std::make_shared<nn::Linear<double>>(2, 2);
    nn::Sequential<double> seq(a, std::make_shared<nn::Tanh<double>>(), a);  // the same layer twice
    BOOST_TEST(seq.parameters().size() == 2u);
    V y = xg::sum(seq(V(A{{1.0, -1.0}})));
    y.backward();
    BOOST_TEST(a->weight().has_grad());
    seq.zero_grad();
    BOOST_TEST(!a->weight().has_grad());
}

BOOST_AUTO_TEST_CASE(bad_names_and_sizes_throw) {
    xgt::expect_error<xg::ShapeError>([&] { nn::Linear<float>(0, 3); }, {});
    xgt::expect_error<xg::ValueError>([&] { nn::Dropout<float>(1.0); }, {});
    xgt::expect_error<xg::ValueError>([&] { nn::Dropout<float>(-0.1); }, {});
    xgt::expect_error<xg::ValueError>([&] { nn::Init::parse("bogus"); }, {});
    xgt::expect_error<xg::ValueError>([&] { nn::parse_activation("swishy"); }, {});
    BOOST_TEST(nn::Init::parse("0.01").value == 0.01);
    BOOST_TEST(nn::Init::parse("he").str() == "he");
    nn::MultiLayerNet<float> net({.input_size = 4, .hidden_sizes = {3}, .output_size = 2});
    BOOST_CHECK_EXCEPTION(net(xg::Variable<float>(xg::Array<float>::from_shape({2, 5}))), xg::ShapeError,
                          [](const xg::ShapeError& e) { return std::string(e.what()).find("(2, 5)") != std::string::npos; });
    xgt::expect_error<xg::ValueError>(
        [&] { net.accuracy(xg::Array<float>::from_shape({0, 4}), xg::Labels::from_shape({0})); }, {});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nn_layers)

BOOST_AUTO_TEST_CASE(linear_is_x_w_plus_b) {
    nn::Linear<double> lin(2, 3, {.init = nn::Init::constant(0.5)});
    lin.bias().mutable_data() = A{1.0, 2.0, 3.0};
    const V y = lin(V(A{{1.0, 2.0}, {-1.0, 0.0}}));
    const A want = {{2.5, 3.5, 4.5}, {0.5, 1.5, 2.5}};
    BOOST_TEST(xt::allclose(y.data(), want));
    BOOST_TEST(lin.repr() == "Linear(2 -> 3, init=constant(0.5))");
}

namespace {
struct DerivedLinear : nn::Linear<float> {
    using nn::Linear<float>::Linear;
};
}  // namespace

// Sequential runs a Linear then a ReLU as one linear_relu op. The output and every gradient must
// be the very bits of the two layers run one by one (in float, where any change of rounding shows;
// 37 columns leave a SIMD tail).
BOOST_AUTO_TEST_CASE(sequential_fuses_linear_relu_bit_for_bit) {
    using F = xg::Variable<float>;
    using FA = xg::Array<float>;
    nn::Generator gen(5);
    auto l1 = std::make_shared<nn::Linear<float>>(50, 37, nn::LinearOptions{.generator = &gen});
    auto l2 = std::make_shared<nn::Linear<float>>(37, 3, nn::LinearOptions{.generator = &gen});
    l1->bias().mutable_data() = xt::cast<float>(random_normal({37}, 4));
    nn::Sequential<float> net(l1, std::make_shared<nn::ReLU<float>>(), l2);
    const FA xa = xt::cast<float>(random_normal({29, 50}, 5));
    xg::Labels t = xg::Labels::from_shape({29});
    for (std::size_t i = 0; i < t.size(); ++i) t(i) = static_cast<std::int64_t>(i % 3);

    auto run = [&](bool fused) {
        for (const F& p : net.parameters()) p.zero_grad();
        const F x(xa, true);
        const F y = fused ? net(x) : l2->forward(xg::relu(l1->forward(x)));
        const F hidden = y.creator()->inputs()[0];
        BOOST_TEST(hidden.creator()->name() == (fused ? "linear_relu" : "relu"));
        xg::softmax_cross_entropy(y, t).backward();
        std::vector<FA> out = {y.data(), hidden.data(), x.grad().data()};
        for (const F& p : net.parameters()) out.push_back(p.grad().data());
        return out;
    };
    const std::vector<FA> fused = run(true), apart = run(false);
    const std::size_t zeros = xt::sum(xt::equal(fused[1], 0.0f))();
    BOOST_TEST((zeros > 100u && zeros < 29u * 37u - 100u));  // relu's mask is at work
    for (std::size_t i = 0; i < fused.size(); ++i) {
        BOOST_TEST_CONTEXT("array " << i) { BOOST_TEST(fused[i] == apart[i], tt::per_element()); }
    }
    {
        xg::NoGradGuard no_grad;
        BOOST_TEST(net(F(xa)).data() == fused[0], tt::per_element());
    }

    // Only the library's own Linear and ReLU fuse: a subclass may override forward().
    const F x(xa);
    const auto relu_of = [&](auto first, auto second) {
        return nn::Sequential<float>(first, second)(x).creator()->name();
    };
    BOOST_TEST(relu_of(l1, std::make_shared<nn::ActivationLayer<float>>(nn::Activation::relu)) == "linear_relu");
    BOOST_TEST(relu_of(std::make_shared<DerivedLinear>(50, 4), std::make_shared<nn::ReLU<float>>()) == "relu");
    BOOST_TEST(relu_of(l1, std::make_shared<nn::LeakyReLU<float>>()) == "leaky_relu");
    BOOST_TEST(relu_of(l1, std::make_shared<nn::Sigmoid<float>>()) == "sigmoid");
}

BOOST_AUTO_TEST_CASE(batchnorm_training_uses_batch_statistics) {
    nn::BatchNorm1d<double> bn(2, {.eps = 1e-5, .momentum = 0.1});
    bn.gamma().mutable_data() = A{2.0, 1.0};
    bn.beta().mutable_data() = A{0.5, -1.0};
    // Column 0: mean 2, biased var 2/3; column 1: mean 20, var 200/3.
    const A x = {{1.0, 10.0}, {2.0, 20.0}, {3.0, 30.0}};
    const V y = bn(V(x));
    const double s0 = std::sqrt(2.0 / 3 + 1e-5), s1 = std::sqrt(200.0 / 3 + 1e-5);
    const A want = {{2 * -1 / s0 + 0.5, -10 / s1 - 1}, {0.5, -1.0}, {2 * 1 / s0 + 0.5, 10 / s1 - 1}};
    BOOST_TEST(xt::allclose(y.data(), want, 1e-12, 1e-12));
    // running = 0.9 * running + 0.1 * batch, from running_mean 0 and running_var 1.
    BOOST_TEST(xt::allclose(bn.running_mean().data(), A{0.2, 2.0}, 1e-12, 1e-12));
    BOOST_TEST(xt::allclose(bn.running_var().data(), A{0.9 + 0.1 * 2.0 / 3, 0.9 + 0.1 * 200.0 / 3}, 1e-12, 1e-12));
}

BOOST_AUTO_TEST_CASE(batchnorm_eval_uses_running_statistics) {
    nn::BatchNorm1d<double> bn(2);
    bn.running_mean().mutable_data() = A{1.0, -2.0};
    bn.running_var().mutable_data() = A{4.0, 0.25};
    bn.gamma().mutable_data() = A{3.0, 1.0};
    bn.beta().mutable_data() = A{0.0, 1.0};
    bn.eval();
    const V y = bn(V(A{{3.0, -1.0}}));  // a single row is fine in eval
    const double eps = 1e-5;
    BOOST_TEST(y.data()(0, 0) == 3.0 * 2.0 / std::sqrt(4.0 + eps), tt::tolerance(1e-12));
    BOOST_TEST(y.data()(0, 1) == 1.0 / std::sqrt(0.25 + eps) + 1.0, tt::tolerance(1e-12));
    BOOST_TEST(xt::allclose(bn.running_mean().data(), A{1.0, -2.0}));  // eval leaves them alone
    bn.train();
    xgt::expect_error<xg::ValueError>([&] { bn(V(A{{3.0, -1.0}})); }, {});  // one row has no batch variance
    xgt::expect_error<xg::ShapeError>([&] { bn(V(A{{3.0, -1.0, 2.0}})); }, {});
}

BOOST_AUTO_TEST_CASE(batchnorm_gradients_match_numerical) {
    nn::BatchNorm1d<double> bn(3);
    bn.gamma().mutable_data() = A{1.5, -0.5, 2.0};
    bn.beta().mutable_data() = A{0.1, 0.2, -0.3};
    const V x(random_normal({5, 3}, 9), true);
    const auto r = xg::gradcheck_params<double>([&] { return xg::sum(xg::tanh(bn(x))); },
                                                {x, bn.gamma(), bn.beta()}, 1e-6, 1e-7, 1e-5);
    BOOST_TEST(r.ok, r.str());
}

BOOST_AUTO_TEST_CASE(dropout_keeps_about_one_minus_ratio_and_scales) {
    nn::Dropout<double> drop(0.3, 123);
    const V x(A(xt::ones<double>({200, 100})));
    const A y = drop(x).data();
    const double kept = static_cast<double>(xt::sum(xt::not_equal(y, 0.0))());
    BOOST_TEST(kept / 20000.0 == 0.7, tt::tolerance(0.02));  // 4 sigma is about 0.013
    for (double v : y) BOOST_TEST((v == 0.0 || std::abs(v - 1.0 / 0.7) < 1e-12));
    BOOST_TEST(xt::mean(y)() == 1.0, tt::tolerance(0.03));  // inverted dropout keeps the mean
    drop.eval();
    BOOST_TEST(xt::allclose(drop(x).data(), x.data()));
    // The same seed draws the same masks.
    nn::Dropout<double> a(0.5, 5), b(0.5, 5);
    BOOST_TEST(xt::allclose(a(x).data(), b(x).data()));
}

BOOST_AUTO_TEST_CASE(dropout_gradient_is_the_mask) {
    nn::Dropout<double> drop(0.5, 1);
    const V x(random_normal({4, 6}, 2), true);
    const V y = drop(x);
    xg::sum(y).backward();
    for (std::size_t i = 0; i < y.size(); ++i)
        BOOST_TEST(x.grad().data().flat(i) == (y.data().flat(i) == 0.0 ? 0.0 : 2.0));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nn_init)

BOOST_AUTO_TEST_CASE(he_and_xavier_keep_activation_std) {
    // Input N(0,1) through one 400 -> 400 layer: Xavier keeps the linear output's std near 1,
    // He keeps the ReLU output's second moment near 1 (its std is sqrt(1 - 1/pi) ~ 0.826).
    nn::Generator gen(42);
    xg::Variable<double> x(random_normal({500, 400}, 5));
    nn::Linear<double> xavier(400, 400, {.init = nn::Init::xavier(), .generator = &gen});
    nn::Linear<double> he(400, 400, {.init = nn::Init::he(), .generator = &gen});
    BOOST_TEST(std_of(xavier.weight().data()) == std::sqrt(1.0 / 400), tt::tolerance(0.02));
    BOOST_TEST(std_of(he.weight().data()) == std::sqrt(2.0 / 400), tt::tolerance(0.02));
    BOOST_TEST(std_of(xavier(x).data()) == 1.0, tt::tolerance(0.05));
    const A relu_out = xg::relu(he(x)).data();
    double squares = 0;
    for (const double v : relu_out) squares += v * v;
    const double rms = std::sqrt(squares / static_cast<double>(relu_out.size()));
    BOOST_TEST(rms == 1.0, tt::tolerance(0.05));
    BOOST_TEST(std_of(relu_out) == std::sqrt(1.0 - 1.0 / M_PI), tt::tolerance(0.05));
}

BOOST_AUTO_TEST_CASE(uniform_variants_have_their_limits) {
    nn::Generator gen(1);
    xg::Variable<double> w(A::from_shape({300, 200}));
    nn::init::glorot_uniform_(w, gen);
    const double a = std::sqrt(6.0 / 500);
    BOOST_TEST(xt::amax(xt::abs(w.data()))() <= a);
    BOOST_TEST(std_of(w.data()) == a / std::sqrt(3.0), tt::tolerance(0.02));
    nn::init::he_uniform_(w, gen);
    BOOST_TEST(std_of(w.data()) == std::sqrt(6.0 / 300) / std::sqrt(3.0), tt::tolerance(0.02));
    nn::init::zeros_(w);
    BOOST_TEST(xt::amax(xt::abs(w.data()))() == 0.0);
}

BOOST_AUTO_TEST_CASE(same_seed_same_weights) {
    nn::MultiLayerNet<float> a({.seed = 3}), b({.seed = 3}), c({.seed = 4});
    BOOST_TEST(xt::allclose(a.parameters()[0].data(), b.parameters()[0].data()));
    BOOST_TEST(!xt::allclose(a.parameters()[0].data(), c.parameters()[0].data()));
    nn::manual_seed(9);
    nn::Linear<float> d(3, 3);
    nn::manual_seed(9);
    nn::Linear<float> e(3, 3);
    BOOST_TEST(xt::allclose(d.weight().data(), e.weight().data()));
}

BOOST_AUTO_TEST_CASE(equal_initial_weights_give_every_hidden_unit_the_same_gradient) {
    // The seeds' warning: with zero or equal weights every hidden unit computes the same thing
    // and gets the same update, so the units stay identical.
    for (const nn::Init init : {nn::Init::zeros(), nn::Init::constant(0.3)}) {
        nn::MultiLayerNet<double> net({.input_size = 4, .hidden_sizes = {5}, .output_size = 3,
                                       .activation = nn::Activation::sigmoid, .init = init});
        net.loss(V(random_normal({8, 4}, 4)), xg::Labels{0, 1, 2, 0, 1, 2, 0, 1}).backward();
        const A g = net.parameters()[0].grad().data();  // (4, 5): column j is hidden unit j
        for (std::size_t j = 1; j < 5; ++j)
            BOOST_TEST(xt::allclose(xt::view(g, xt::all(), j), xt::view(g, xt::all(), 0), 0.0, 1e-15),
                       "unit " << j << " under " << init.str());
        const A gb = net.parameters()[1].grad().data();
        BOOST_TEST(xt::allclose(gb, gb(0) * xt::ones<double>({5}), 0.0, 1e-15));
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nn_multilayer_net)

BOOST_AUTO_TEST_CASE(gradcheck_plain) {
    nn::MultiLayerNet<double> net(small_net(false, 0, 0));
    check_net_gradients(net);
}

BOOST_AUTO_TEST_CASE(gradcheck_relu_fused_layers) {
    nn::MultiLayerNetOptions o = small_net(false, 0, 0);
    o.activation = nn::Activation::relu;
    o.init = nn::Init::he();
    nn::MultiLayerNet<double> net(o);
    check_net_gradients(net);
}

BOOST_AUTO_TEST_CASE(gradcheck_batchnorm) {
    nn::MultiLayerNet<double> net(small_net(true, 0, 0));
    check_net_gradients(net);
}

BOOST_AUTO_TEST_CASE(gradcheck_dropout_fixed_seed) {
    nn::MultiLayerNet<double> net(small_net(false, 0.3, 0));
    check_net_gradients(net);
}

BOOST_AUTO_TEST_CASE(gradcheck_weight_decay_and_everything) {
    nn::MultiLayerNet<double> net(small_net(true, 0.2, 0.1));
    check_net_gradients(net);
}

BOOST_AUTO_TEST_CASE(weight_decay_adds_half_lambda_sum_of_squares) {
    nn::MultiLayerNet<double> plain(small_net(false, 0, 0)), decayed(small_net(false, 0, 0.1));
    const V x(random_normal({6, 5}, 3));
    const xg::Labels t = {0, 2, 1, 1, 0, 2};
    double squares = 0;
    for (const auto& w : decayed.decayed_parameters()) squares += xt::sum(xt::square(w.data()))();
    BOOST_TEST(decayed.loss(x, t).item() - plain.loss(x, t).item() == 0.5 * 0.1 * squares, tt::tolerance(1e-12));
    // Its gradient adds lambda * W to the weights and nothing to the biases.
    plain.loss(x, t).backward();
    decayed.loss(x, t).backward();
    const auto pp = plain.parameters(), dp = decayed.parameters();
    BOOST_TEST(xt::allclose(dp[0].grad().data() - pp[0].grad().data(), 0.1 * dp[0].data(), 1e-12, 1e-12));
    BOOST_TEST(xt::allclose(dp[1].grad().data(), pp[1].grad().data(), 1e-12, 1e-12));
}

BOOST_AUTO_TEST_CASE(accuracy_counts_arg_max_hits_and_restores_mode) {
    BOOST_TEST(nn::count_correct(A{{0.1, 0.9}, {2.0, -1.0}, {0.0, 0.5}}, xg::Labels{1, 0, 0}) == 2u);
    nn::MultiLayerNet<double> net(small_net(true, 0.5, 0));
    const A x = random_normal({7, 5}, 8);
    const xg::Labels t = {0, 1, 2, 0, 1, 2, 0};
    const double acc = net.accuracy(x, t, 3);  // three batches: 3 + 3 + 1
    BOOST_TEST(net.is_training());
    net.eval();
    std::size_t hits = nn::count_correct(net(V(x)).data(), t);
    BOOST_TEST(acc == static_cast<double>(hits) / 7.0);
}

BOOST_AUTO_TEST_CASE(xor_is_learned_by_a_2_2_1_sigmoid_net) {
    // The seeds' classic: a 2-2-1 sigmoid network trained by plain gradient descent on MSE.
    nn::Generator gen(1);
    nn::Sequential<double> net(std::make_shared<nn::Linear<double>>(2, 2, nn::LinearOptions{.init = nn::Init::normal(1.0), .generator = &gen}),
                               std::make_shared<nn::Sigmoid<double>>(),
                               std::make_shared<nn::Linear<double>>(2, 1, nn::LinearOptions{.init = nn::Init::normal(1.0), .generator = &gen}),
                               std::make_shared<nn::Sigmoid<double>>());
    const V x(A{{0.0, 0.0}, {0.0, 1.0}, {1.0, 0.0}, {1.0, 1.0}});
    A targets = {0.0, 1.0, 1.0, 0.0};
    targets.reshape({4, 1});
    const V t(targets);
    xg::optim::SGD<double> opt(net.parameters(), {.lr = 2.0});
    nn::MSELoss<double> mse;
    double first = 0, last = 0;
    for (int step = 0; step < 5000; ++step) {
        opt.zero_grad();
        V loss = mse(net(x), t);
        loss.backward();
        opt.step();
        (step == 0 ? first : last) = loss.item();
    }
    BOOST_TEST(last < 0.01 * first);
    const A y = net(x).data();
    BOOST_TEST(y(0, 0) < 0.2);
    BOOST_TEST(y(1, 0) > 0.8);
    BOOST_TEST(y(2, 0) > 0.8);
    BOOST_TEST(y(3, 0) < 0.2);
}

BOOST_AUTO_TEST_SUITE_END()
