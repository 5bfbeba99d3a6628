// Robustness of the graph, optimizers and modules under misuse: arrays changed in place after an
// op saved them, deep graphs, overflowing shapes, state from another optimizer, gradients of the
// wrong shape, reference cycles, null modules, hostile names, threads. Each case failed (or
// crashed) before its fix.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "expect_error.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::expect_error;
namespace optim = xg::optim;
namespace nn = xg::nn;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::size_t deep = 1'000'000;  // the sanitizers' shadow memory makes 10M ops take minutes
#else
constexpr std::size_t deep = 10'000'000;
#endif

std::shared_ptr<xg::Node<double>> weak_target(const V& v) { return v.node_ptr(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(robustness)
BOOST_AUTO_TEST_SUITE(graph)

BOOST_AUTO_TEST_CASE(changing_a_saved_input_in_place_throws_naming_the_op) {
    V x(A{1.0, 2.0}, true), w(A{3.0, 4.0}, true);
    V y = xg::sum(x * w);
    w.mutable_data()(0) = 10.0;  // after mul saved w for x's gradient
    expect_error<xg::GraphError>([&] { y.backward(); }, {"mul", "input 1", "changed in place", "(2,)"});
    BOOST_TEST(!x.has_grad());

    // An op that saved its output (exp's gradient is its output) checks that too.
    V z(A{0.5}, true);
    V e = xg::exp(z);
    V loss = xg::sum(e * 2.0);
    e.mutable_data()(0) = 0.0;
    expect_error<xg::GraphError>([&] { loss.backward(); }, {"exp", "its output", "changed in place"});

    // set_data is a change too; reading through data() is not.
    V a(A{1.0}, true);
    V b = xg::sum(a * a);
    const double read = a.data()(0);
    BOOST_TEST(read == 1.0);
    b.backward({.retain_graph = true});
    a.set_data(A{2.0});
    expect_error<xg::GraphError>([&] { b.backward(); }, {"mul"});
}

BOOST_AUTO_TEST_CASE(deep_graphs_are_freed_and_walked_without_recursion) {
    {  // x = x * 1.0000001, 10 million times (1 million under sanitizers), then dropped
        V x = xg::scalar(1.0, true);
        V y = x;
        for (std::size_t i = 0; i < deep; ++i) y = y * 1.0000001;
        BOOST_TEST(y.item() == std::pow(1.0000001, static_cast<double>(deep)), boost::test_tools::tolerance(1e-9));
    }
    {  // total = total + loss over 100k steps, then backward through all of it, then dropped
        V w = xg::scalar(0.5, true);
        V total = xg::scalar(0.0);
        for (int step = 0; step < 100'000; ++step) total = total + w * w;
        total.backward();
        BOOST_TEST(w.grad().item() == 100'000.0, boost::test_tools::tolerance(1e-12));
    }
    {  // the backward pass of a deep chain, recorded (create_graph): a second deep graph
        V x = xg::scalar(0.5, true);
        V y = x;
        for (int i = 0; i < 200'000; ++i) y = xg::tanh(y);
        const V g = xg::grad(y, {x}, {}, {.create_graph = true})[0];
        BOOST_TEST((g.item() > 0 && g.item() < 1));
        BOOST_TEST(xg::to_dot(g).size() > 200'000u);  // to_dot walks it too
    }
}

BOOST_AUTO_TEST_CASE(shapes_whose_element_count_overflows_are_refused) {
    const V x(A::from_shape({6, 7}));
    expect_error<xg::ResourceError>([&] { xg::reshape(x, {6, 7, 7905747460161236407L}); }, {"reshape"});
    expect_error<xg::ResourceError>([&] { xg::reshape(x, {-1, 7905747460161236407L, 4}); }, {"reshape"});
    const xg::Shape huge{std::size_t{1} << 31, std::size_t{1} << 30};
    expect_error<xg::ResourceError>([&] { xg::broadcast_to(V(A{1.0}), huge); }, {"broadcast_to"});
    expect_error<xg::ResourceError>(
        [&] { V(A::from_shape({std::size_t{1} << 40, 1, 0})) + V(A::from_shape({1, std::size_t{1} << 40, 0})); },
        {"add", "(1099511627776, 1, 0)"});
    expect_error<xg::ResourceError>(
        [&] { xg::matmul(V(A::from_shape({std::size_t{1} << 40, 0})), V(A::from_shape({0, std::size_t{1} << 40}))); },
        {"matmul"});
    // A shape that fits the element limit but not the machine: ResourceError, never bad_alloc.
    expect_error<xg::ResourceError>([&] { xg::broadcast_to(V(A{1.0}), xg::Shape{std::size_t{1} << 50}); },
                                    {"broadcast_to", "out of memory"});
}

BOOST_AUTO_TEST_CASE(grad_of_an_input_the_output_does_not_depend_on) {
    V x(A{1.0, 2.0}, true), unused(A{3.0}, true), only_selects(A{1.0, -1.0}, true);
    const V y = xg::sum(x * x);
    expect_error<xg::GraphError>([&] { xg::grad(y, {x, unused}, {}, {.retain_graph = true}); },
                                 {"grad", "input 1", "not reached"});
    const auto g = xg::grad(y, {x, unused}, {}, {.retain_graph = true, .allow_unused = true});
    BOOST_TEST(g[0].data() == A({2.0, 4.0}), boost::test_tools::per_element());
    BOOST_TEST(!g[1].defined());
    // Reached but given no gradient (it only selects): zeros, not an error.
    const V z = xg::sum(xg::leaky_relu_grad(x, only_selects, 0.0));
    const auto gz = xg::grad(z, {only_selects});
    BOOST_TEST(gz[0].data() == A({0.0, 0.0}), boost::test_tools::per_element());
    expect_error<xg::GraphError>([&] { xg::grad(y, {V(A{1.0})}); }, {"does not require grad"});
}

BOOST_AUTO_TEST_CASE(create_graph_cycle_is_broken_by_zero_grad_and_absent_from_grad) {
    // backward(create_graph) stores in x.grad() a gradient whose graph holds x: a cycle, as in
    // PyTorch. zero_grad() (or the optimizer's) breaks it; xg::grad makes none.
    std::weak_ptr<xg::Node<double>> node;
    {
        V x(A{1.5}, true);
        node = weak_target(x);
        xg::sum(x * x * x).backward({.create_graph = true});
        BOOST_TEST(x.grad().creator() != nullptr);
        x.zero_grad();
    }
    BOOST_TEST(node.expired());
    {
        V x(A{1.5}, true);
        node = weak_target(x);
        const V g = xg::grad(xg::sum(x * x * x), {x}, {}, {.create_graph = true})[0];
        BOOST_TEST(g.item() == 3 * 1.5 * 1.5);
    }
    BOOST_TEST(node.expired());
}

BOOST_AUTO_TEST_CASE(to_dot_escapes_every_name) {
    V x(A{1.0}, true, "a \"quoted\" name\\\nnext line");
    const std::string dot = xg::to_dot(xg::exp(x));
    BOOST_TEST(dot.find("a \\\"quoted\\\" name\\\\\\nnext line") != std::string::npos, dot);
    // Every line has an even number of unescaped quotes: each label string is closed.
    std::size_t start = 0;
    while (start < dot.size()) {
        const std::size_t end = dot.find('\n', start);
        int quotes = 0;
        for (std::size_t i = start; i < end; ++i)
            if (dot[i] == '"' && (i == 0 || dot[i - 1] != '\\' || (i >= 2 && dot[i - 2] == '\\'))) ++quotes;
        BOOST_TEST(quotes % 2 == 0, dot.substr(start, end - start));
        start = end + 1;
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(optim_state)

namespace {
struct Model {
    V w{A{{0.5, -0.25}, {1.0, 2.0}}, true};
    V b{A{0.1, -0.1}, true};
    std::vector<V> params() const { return {w, b}; }
    void make_grads() const {
        w.zero_grad();
        b.zero_grad();
        xg::sum(xg::linear(V(A{{1.0, 2.0}}), w, b) * xg::linear(V(A{{1.0, 2.0}}), w, b)).backward();
    }
};

template <class Opt, class Options>
xg::StateDict<double> trained_state(Options options) {
    Model m;
    Opt opt(m.params(), options);
    for (int i = 0; i < 3; ++i) {
        m.make_grads();
        opt.step();
    }
    return opt.state_dict();
}

// Loading `state` must throw E and leave `opt` exactly as it was.
template <class E>
void refused_unchanged(optim::Optimizer<double>& opt, const xg::StateDict<double>& state,
                       std::initializer_list<std::string> fragments) {
    const xg::StateDict<double> before = opt.state_dict();
    expect_error<E>([&] { opt.load_state_dict(state); }, fragments);
    const xg::StateDict<double> after = opt.state_dict();
    BOOST_TEST_REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
        BOOST_TEST(after[i].first == before[i].first);
        BOOST_TEST(after[i].second == before[i].second);
    }
}

xg::StateDict<double> with(xg::StateDict<double> state, const std::string& key, A value) {
    for (auto& [k, v] : state)
        if (k == key) v = std::move(value);
    return state;
}
}  // namespace

BOOST_AUTO_TEST_CASE(state_of_another_rule_is_refused_and_changes_nothing) {
    const auto momentum = trained_state<optim::Momentum<double>>(optim::MomentumOptions{});
    const auto adam = trained_state<optim::Adam<double>>(optim::AdamOptions{});
    Model m;
    optim::Adam<double> into_adam(m.params());
    m.make_grads();
    into_adam.step();  // some state of its own, which must survive
    refused_unchanged<xg::ValueError>(into_adam, momentum, {"Adam", "velocity", "exp_avg"});
    optim::AdaGrad<double> into_adagrad(m.params());
    refused_unchanged<xg::ValueError>(into_adagrad, adam, {"AdaGrad", "exp_avg"});
    optim::SGD<double> into_sgd(m.params());
    refused_unchanged<xg::ValueError>(into_sgd, adam, {"SGD", "exp_avg"});
    optim::RMSProp<double> into_rmsprop(m.params());
    refused_unchanged<xg::ValueError>(into_rmsprop, trained_state<optim::AdaGrad<double>>(optim::AdaGradOptions{}),
                                      {"RMSProp", "sum"});
    // SGD's state (steps only) into Adam: Adam's arrays are missing.
    refused_unchanged<xg::ValueError>(into_adam, trained_state<optim::SGD<double>>(optim::SGDOptions{}),
                                      {"exp_avg", "missing"});
    // Then a step still works (the crash was a use-after-free in Adam's update).
    m.make_grads();
    into_adam.step();
}

BOOST_AUTO_TEST_CASE(bad_step_counts_values_and_shapes_are_refused) {
    const auto adam = trained_state<optim::Adam<double>>(optim::AdamOptions{});
    Model m;
    optim::Adam<double> opt(m.params());
    for (double steps : {std::numeric_limits<double>::quiet_NaN(), -1.0, 0.0, 1.5, 1e300})
        refused_unchanged<xg::ValueError>(opt, with(adam, "0.steps", A(steps)), {"0.steps"});
    refused_unchanged<xg::ValueError>(opt, with(adam, "1.exp_avg_sq", A{1.0, -1.0}), {"1.exp_avg_sq", ">= 0"});
    refused_unchanged<xg::ValueError>(
        opt, with(adam, "1.exp_avg", A{std::numeric_limits<double>::infinity(), 0.0}), {"1.exp_avg", "finite"});
    refused_unchanged<xg::ShapeError>(opt, with(adam, "1.exp_avg", A{1.0, 2.0, 3.0}), {"1.exp_avg", "(3,)", "(2,)"});
    refused_unchanged<xg::ValueError>(opt, with(adam, "lr", A(-1.0)), {"lr"});
    auto extra = adam;
    extra.emplace_back("7.steps", A(1.0));
    refused_unchanged<xg::ValueError>(opt, extra, {"parameter 7", "2 parameters"});
    auto twice = adam;
    twice.push_back(adam[1]);
    refused_unchanged<xg::ValueError>(opt, twice, {"twice"});
    opt.load_state_dict(adam);  // the good one loads
    BOOST_TEST(opt.state_dict().size() == adam.size());
}

BOOST_AUTO_TEST_CASE(step_checks_every_gradient_shape_before_changing_anything) {
    Model m;
    optim::SGD<double> opt(m.params(), {.lr = 0.1});
    m.make_grads();
    m.b.grad().mutable_data() = A{1.0, 2.0, 3.0};  // a gradient of the wrong shape
    const A w_before = m.w.data();
    expect_error<xg::ShapeError>([&] { opt.step(); }, {"SGD", "parameter 1", "(2,)", "(3,)"});
    BOOST_TEST(m.w.data() == w_before, boost::test_tools::per_element());
    expect_error<xg::ValueError>([&] { optim::SGD<double>({m.w, m.b, m.w}); }, {"parameters 0 and 2"});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(modules)

namespace {
struct BadName : nn::Module<double> {
    BadName() { register_parameter("a.b", V(A{1.0})); }  // throws from the constructor
    std::string repr() const override { return "BadName(" + *detail + ")"; }
    std::unique_ptr<std::string> detail = std::make_unique<std::string>("x");
};
}  // namespace

BOOST_AUTO_TEST_CASE(null_modules_and_constructor_errors) {
    nn::Sequential<double> seq;
    expect_error<xg::ValueError>([&] { seq.push_back(std::shared_ptr<nn::Linear<double>>()); },
                                 {"Sequential", "null"});
    BOOST_TEST(seq.size() == 0u);
    // The error names the class without calling the not-yet-constructed repr().
    expect_error<xg::ValueError>([] { BadName m; }, {"BadName", "a.b"});
}

BOOST_AUTO_TEST_CASE(threads_build_layers_concurrently_from_their_own_generators) {
    std::vector<A> weights(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < weights.size(); ++t)
        threads.emplace_back([&weights, t] {
            nn::manual_seed(7);
            for (int i = 0; i < 50; ++i) nn::Linear<double> layer(16, 16);
            weights[t] = nn::Linear<double>(16, 16).weight().data();
        });
    for (auto& th : threads) th.join();
    for (std::size_t t = 1; t < weights.size(); ++t) BOOST_TEST(weights[t] == weights[0], boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
BOOST_AUTO_TEST_SUITE_END()

