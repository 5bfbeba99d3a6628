// The graph itself: closed forms, accumulation, DAGs, modes, higher order, memory, DOT.
#include <boost/test/unit_test.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xrandom.hpp>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::mat;

BOOST_AUTO_TEST_SUITE(graph)

BOOST_AUTO_TEST_CASE(cube_first_and_second_derivative) {
    V x = xg::scalar(2.0, true);
    V y = x * x * x;
    y.backward({.create_graph = true});
    BOOST_TEST(y.item() == 8.0);
    BOOST_TEST(x.grad().item() == 12.0);
    V gx = x.grad();
    x.zero_grad();
    gx.backward();
    BOOST_TEST(x.grad().item() == 12.0);  // d2/dx2 x^3 = 6x
}

BOOST_AUTO_TEST_CASE(grad_function_third_derivative) {
    V x = xg::scalar(2.0, true);
    V y = xg::pow(x, 4.0);
    V g1 = xg::grad(y, {x}, {}, {.create_graph = true})[0];
    V g2 = xg::grad(g1, {x}, {}, {.create_graph = true})[0];
    V g3 = xg::grad(g2, {x})[0];
    BOOST_TEST(g1.item() == 32.0, boost::test_tools::tolerance(1e-12));  // 4x^3
    BOOST_TEST(g2.item() == 48.0, boost::test_tools::tolerance(1e-12));  // 12x^2
    BOOST_TEST(g3.item() == 48.0, boost::test_tools::tolerance(1e-12));  // 24x
    BOOST_TEST(!x.has_grad());  // grad() leaves .grad() alone
}

BOOST_AUTO_TEST_CASE(sigmoid_derivative_at_zero) {
    V x = xg::scalar(0.0, true);
    V y = xg::sigmoid(x);
    y.backward();
    BOOST_TEST(y.item() == 0.5);
    BOOST_TEST(x.grad().item() == 0.25, boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(variable_used_twice_accumulates) {
    V x = xg::scalar(3.0, true);
    V y = x * x + x;  // dy/dx = 2x + 1
    y.backward();
    BOOST_TEST(x.grad().item() == 7.0);
    V z = x + x + x;
    x.zero_grad();
    z.backward();
    BOOST_TEST(x.grad().item() == 3.0);
}

BOOST_AUTO_TEST_CASE(dag_with_shared_subexpression) {
    // a = x^2; b = exp(a); y = a*b + b  =>  dy/dx = 2x * (b + a*b + b)
    const double xv = 0.7;
    V x = xg::scalar(xv, true);
    V a = x * x;
    V b = xg::exp(a);
    V y = a * b + b;
    y.backward();
    const double av = xv * xv, bv = std::exp(av);
    BOOST_TEST(x.grad().item() == 2 * xv * (bv + av * bv + bv), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(two_backward_calls_accumulate) {
    V x = xg::scalar(1.5, true);
    V y = xg::pow(x, 2.0);
    y.backward({.retain_graph = true});
    y.backward();
    BOOST_TEST(x.grad().item() == 6.0);  // 2 * 2x
}

BOOST_AUTO_TEST_CASE(second_backward_without_retain_graph_throws) {
    V x = xg::scalar(1.5, true);
    V y = xg::exp(x) * x;
    y.backward();
    BOOST_CHECK_EXCEPTION(y.backward(), xg::GraphError, [](const xg::GraphError& e) {
        return std::string(e.what()).find("retain_graph") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(intermediate_grads_freed_unless_retained) {
    V x(A{1.0, 2.0}, true);
    V h = x * 3.0;
    V k = x * 2.0;
    k.retain_grad();
    V y = xg::sum(h * k);
    y.backward();
    BOOST_TEST(!h.has_grad());
    BOOST_TEST(k.has_grad());
    BOOST_TEST(k.grad().data() == A({3.0, 6.0}), boost::test_tools::per_element());
    BOOST_TEST(x.grad().data() == A({12.0, 24.0}), boost::test_tools::per_element());  // 12x

    V x2(A{1.0, 2.0}, true);
    V h2 = x2 * 3.0;
    xg::sum(h2 * h2).backward({.retain_grad = true});
    BOOST_TEST(h2.has_grad());
    BOOST_TEST(h2.grad().data() == A({6.0, 12.0}), boost::test_tools::per_element());
}


// add's backward hands one gradient to both inputs; each leaf must still own its .grad(), or an
// in-place change of one (clip_grad_norm) changes the other (it used to scale both twice).
BOOST_AUTO_TEST_CASE(leaves_own_their_gradients) {
    V a(A{3.0, 4.0}, true), b(A{1.0, 1.0}, true);
    xg::sum(a + b).backward();
    BOOST_TEST(a.grad().node() != b.grad().node());
    const double norm = xg::optim::clip_grad_norm<double>({a, b}, 1.0);
    BOOST_TEST(norm == 2.0, boost::test_tools::tolerance(1e-15));
    BOOST_TEST(a.grad().data() == A({0.5, 0.5}), boost::test_tools::per_element());
    BOOST_TEST(b.grad().data() == A({0.5, 0.5}), boost::test_tools::per_element());

    // A leaf that is the output: its gradient is not the caller's seed either.
    V s(A{2.0, 2.0}, true);
    V seed(A{1.0, -1.0});
    s.backward(seed);
    s.grad().mutable_data() *= 10.0;
    BOOST_TEST(seed.data() == A({1.0, -1.0}), boost::test_tools::per_element());

    // Retained intermediate gradients are their own arrays too.
    V x(A{1.0, 2.0}, true);
    V h = x * 1.0, k = h + x;
    h.retain_grad();
    k.retain_grad();
    xg::sum(k).backward();
    BOOST_TEST(h.grad().node() != k.grad().node());
    BOOST_TEST(h.grad().node() != x.grad().node());
    BOOST_TEST(x.grad().data() == A({2.0, 2.0}), boost::test_tools::per_element());

    // With create_graph too, and the copies stay differentiable: a + b hands 2(a + b) to both.
    V f(A{1.0, 2.0}, true), g(A{3.0, 4.0}, true);
    const V sum_fg = f + g;
    xg::sum(sum_fg * sum_fg).backward({.create_graph = true});
    BOOST_TEST(f.grad().node() != g.grad().node());
    BOOST_TEST(f.grad().data() == A({8.0, 12.0}), boost::test_tools::per_element());
    BOOST_TEST(g.grad().data() == A({8.0, 12.0}), boost::test_tools::per_element());
    const V gf = f.grad();
    f.zero_grad();
    g.zero_grad();
    xg::sum(gf).backward();
    BOOST_TEST(f.grad().data() == A({2.0, 2.0}), boost::test_tools::per_element());
    BOOST_TEST(g.grad().data() == A({2.0, 2.0}), boost::test_tools::per_element());

    // Later passes add in place into the gradient each leaf owns; a copy held by the caller is left alone.
    const V held = a.grad();
    xg::sum(a + b).backward();
    BOOST_TEST(held.data() == A({0.5, 0.5}), boost::test_tools::per_element());
    BOOST_TEST(a.grad().data() == A({1.5, 1.5}), boost::test_tools::per_element());
    BOOST_TEST(b.grad().data() == A({1.5, 1.5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(no_grad_records_nothing) {
    V x(A{1.0, 2.0}, true);
    {
        xg::NoGradGuard guard;
        V y = xg::exp(x) * 2.0;
        BOOST_TEST(!y.requires_grad());
        BOOST_TEST(y.is_leaf());
        BOOST_TEST(y.data()(1) == 2.0 * std::exp(2.0), boost::test_tools::tolerance(1e-12));
        xgt::expect_error<xg::GraphError>([&] { xg::sum(y).backward(); }, {});
    }
    BOOST_TEST(xg::grad_enabled());
    V z = xg::exp(x);
    BOOST_TEST(z.requires_grad());
    BOOST_TEST(!z.is_leaf());
}

BOOST_AUTO_TEST_CASE(inputs_without_requires_grad_are_not_recorded) {
    V a(A{1.0, 2.0});
    V b(A{3.0, 4.0});
    V c = a * b;
    BOOST_TEST(!c.requires_grad());
    BOOST_TEST(c.is_leaf());
    V w(A{1.0, 1.0}, true);
    V d = xg::sum(c * w);
    d.backward();
    BOOST_TEST(!a.has_grad());
    BOOST_TEST(w.grad().data() == A({3.0, 8.0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(detach_stops_gradients) {
    V x = xg::scalar(2.0, true);
    V y = x * x;
    V z = y.detach() * x;  // d/dx = y = 4, not 3x^2 = 12
    z.backward();
    BOOST_TEST(x.grad().item() == 4.0);
    BOOST_TEST(!y.detach().requires_grad());
}

BOOST_AUTO_TEST_CASE(backward_with_explicit_gradient) {
    V x(A{{1.0, 2.0}, {3.0, 4.0}}, true);
    V y = x * x;
    y.backward(V(A{{1.0, 0.0}, {0.5, 2.0}}));
    BOOST_TEST(x.grad().data() == A({{2.0, 0.0}, {3.0, 16.0}}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(softmax_cross_entropy_gradient_is_softmax_minus_onehot) {
    A logits = {{1.0, 2.0, 0.5}, {-1.0, 0.0, 3.0}};
    V x(logits, true);
    xg::sum(xg::softmax_cross_entropy(x, xg::Labels{2, 0}, xg::Reduction::none)).backward();
    A e = xt::exp(logits);
    A p = e / xt::view(xt::sum(e, {1}), xt::all(), xt::newaxis());
    A onehot = {{0, 0, 1}, {1, 0, 0}};
    BOOST_TEST(x.grad().data() == A(p - onehot), boost::test_tools::tolerance(1e-12) << boost::test_tools::per_element());
    // The default mean reduction divides by the batch size.
    V x2(logits, true);
    xg::softmax_cross_entropy(x2, xg::Labels{2, 0}).backward();
    BOOST_TEST(x2.grad().data() == A((p - onehot) / 2.0), boost::test_tools::tolerance(1e-12) << boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(float32_and_float64_in_one_program) {
    xg::Variable<float> xf(xg::Array<float>{1.0f, 2.0f}, true);
    V xd(A{1.0, 2.0}, true);
    xg::sum(xg::tanh(xf) * 2.0f).backward();
    xg::sum(xg::tanh(xd) * 2.0).backward();
    for (std::size_t i = 0; i < 2; ++i)
        BOOST_TEST(static_cast<double>(xf.grad().data()(i)) == xd.grad().data()(i), boost::test_tools::tolerance(1e-6));
    const auto report = xg::gradcheck<float>([](const auto& in) { return xg::sum(xg::sigmoid(in[0]) * in[0]); },
                                             {xf}, 1e-2, 1e-3, 1e-2);
    BOOST_TEST(report.ok, report.str());
}

BOOST_AUTO_TEST_CASE(graph_is_freed_when_output_dies) {
    std::weak_ptr<xg::Node<double>> hidden;
    std::weak_ptr<xg::Function<double>> fn;
    V x(A{1.0, 2.0}, true);
    {
        V h = xg::exp(x);
        hidden = h.node_ptr();
        V y = xg::sum(h * h);
        fn = y.creator();
        BOOST_TEST(!hidden.expired());
    }
    BOOST_TEST(hidden.expired());  // no reference cycle keeps the graph alive
    BOOST_TEST(fn.expired());
}

BOOST_AUTO_TEST_CASE(backward_releases_saved_inputs) {
    std::weak_ptr<xg::Node<double>> hidden;
    V x(A{1.0, 2.0}, true);
    V y;
    {
        V h = xg::exp(x);
        hidden = h.node_ptr();
        y = xg::sum(h * h);
    }
    BOOST_TEST(!hidden.expired());
    y.backward();
    BOOST_TEST(hidden.expired());  // freed by backward (no retain_graph)
    BOOST_TEST(x.has_grad());
}

BOOST_AUTO_TEST_CASE(generations_order_a_deep_chain) {
    V x = xg::scalar(0.5, true);
    V y = x;
    for (int i = 0; i < 200; ++i) y = y * 1.01 + y * 0.0;  // y = x * 1.01^200
    y.backward();
    BOOST_TEST(x.grad().item() == std::pow(1.01, 200), boost::test_tools::tolerance(1e-10));
}

BOOST_AUTO_TEST_CASE(dot_export_names_ops_and_shapes) {
    V x(A{{1.0, 2.0, 3.0}}, true, "x");
    V W(mat({{1.0}, {2.0}, {3.0}}), true, "W");
    V y = xg::tanh(xg::matmul(x, W)).set_name("y");
    const std::string dot = xg::to_dot(y);
    BOOST_TEST(dot.find("digraph") == 0u);
    BOOST_TEST(dot.find("label=\"matmul\"") != std::string::npos);
    BOOST_TEST(dot.find("label=\"tanh\"") != std::string::npos);
    BOOST_TEST(dot.find("x: (1, 3)") != std::string::npos);
    BOOST_TEST(dot.find("W: (3, 1)") != std::string::npos);
    BOOST_TEST(dot.find("y: (1, 1)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(post_accumulate_grad_hook_runs_when_the_leafs_last_use_is_done) {
    // y = (w h)^2 + x with h = x after a chain of 20 ops: w is used once near the output, so its
    // gradient is complete (and its hook runs) before the pass goes down the chain; that is where
    // DataParallel starts all-reducing. x, used at both ends, gets its hook last, with the whole
    // gradient. dy/dw = 2 w h^2 = 36, dy/dx = 2 w^2 h + 1 = 25.
    V w(A{2.0}, true, "w"), x(A{3.0}, true, "x"), unused(A{1.0}, true);
    std::vector<std::string> order;
    std::vector<double> seen;
    bool x_done_before_w = true;
    w.register_post_accumulate_grad_hook([&](const V& v) {
        order.push_back("w");
        seen.push_back(v.grad().data()(0));
        x_done_before_w = x.has_grad();
    });
    const std::uint64_t xid = x.register_post_accumulate_grad_hook([&](const V& v) {
        order.push_back("x");
        seen.push_back(v.grad().data()(0));
    });
    unused.register_post_accumulate_grad_hook([&](const V&) { order.push_back("unused"); });
    V h = x;
    for (int i = 0; i < 20; ++i) h = h * 1.0;
    const V wh = w * h;
    const V y = wh * wh + x;
    y.backward({.retain_graph = true});
    BOOST_TEST((order == std::vector<std::string>{"w", "x"}));
    BOOST_TEST((seen == std::vector<double>{36.0, 25.0}));
    BOOST_TEST(!x_done_before_w);
    // Accumulation: the second pass's hook sees the sum.
    y.backward();
    BOOST_TEST(seen.back() == 50.0);
    BOOST_TEST(x.remove_hook(xid));
    BOOST_TEST(!x.remove_hook(xid));
    order.clear();
    (x * 2.0).backward();
    BOOST_TEST(order.empty());
    // xg::grad touches no .grad(): no hook.
    (void)xg::grad(xg::sum(w * w), {w});
    BOOST_TEST(order.empty());
    // Only leaves that require grad have hooks.
    xgt::expect_error<xg::GraphError>([&] { wh.register_post_accumulate_grad_hook([](const V&) {}); }, {});
    xgt::expect_error<xg::GraphError>([&] { V(A{1.0}).register_post_accumulate_grad_hook([](const V&) {}); }, {});
    xgt::expect_error<xg::GraphError>([&] { w.register_post_accumulate_grad_hook(nullptr); }, {});
}

BOOST_AUTO_TEST_CASE(post_accumulate_grad_hook_edge_cases) {
    // A leaf that is the root itself; a hook that throws (the exception leaves backward()).
    V a(A{1.0, 2.0}, true);
    int runs = 0;
    a.register_post_accumulate_grad_hook([&](const V&) { ++runs; });
    a.backward(V(A{1.0, 1.0}));
    BOOST_TEST(runs == 1);
    V b(A{1.0}, true);
    b.register_post_accumulate_grad_hook([&](const V&) { throw xg::ValueError("hook failed"); });
    xgt::expect_error<xg::ValueError>([&] { xg::sum(b * b).backward(); }, {});
    // Hooks go with their variable: a freed leaf takes its hooks along.
    { V c(A{1.0}, true); c.register_post_accumulate_grad_hook([](const V&) {}); }
    // A long chain with a hooked leaf at its start: the count is kept without recursion.
    V d(A{1.0}, true);
    int d_runs = 0;
    d.register_post_accumulate_grad_hook([&](const V&) { ++d_runs; });
    V chain = d;
    for (int i = 0; i < 100000; ++i) chain = chain + 1.0;
    chain.backward();
    BOOST_TEST(d_runs == 1);
    BOOST_TEST(d.grad().data()(0) == 1.0);
}

// y = 2 x, whose add_input_grad counts the times the engine offers it a running sum.
struct Twice : xg::Function<double> {
    int* offers;
    explicit Twice(int* offers) : offers(offers) {}
    std::string_view name() const override { return "twice"; }
    A forward(const xg::ArrayRefs<double>& xs) override { return 2.0 * xs[0]; }
    std::vector<V> backward(const V& gy) override {
        if (!needs_input_grad(0)) return {V()};
        return {gy * 2.0};
    }
    bool add_input_grad(std::size_t, const A& gy, A& sum) override {
        ++*offers;
        sum += 2.0 * gy;
        return true;
    }
};

BOOST_AUTO_TEST_CASE(add_input_grad_gets_only_a_running_sum_nothing_else_holds) {
    int offers = 0;
    V x(A{1.0, -2.0, 3.0}, true);
    auto twice = [&](const V& v) { return xg::apply(std::make_shared<Twice>(&offers), {v}); };
    // The first gradient to reach x is a new array: nothing to add into. The second is added.
    xg::sum(twice(x) + twice(x)).backward();
    BOOST_TEST(offers == 1);
    BOOST_TEST(xgt::close(x.grad().data(), A{4.0, 4.0, 4.0}));
    // A recorded backward (create_graph) and anomaly mode take backward(), never the fast path.
    x.zero_grad();
    xg::sum(twice(x) + twice(x)).backward({.create_graph = true});
    {
        xg::AnomalyGuard anomaly;
        xg::sum(twice(x) + twice(x)).backward();
    }
    BOOST_TEST(offers == 1);
    BOOST_TEST(xgt::close(x.grad().data(), A{8.0, 8.0, 8.0}));
    // x's sum shared: grad() keeps w's gradient, which the add handed to x as well. The add runs
    // first (its generation is higher), so when twice's backward runs x's sum is w's too: adding
    // into it would change w's gradient.
    V c(A{0.5, 0.5, 0.5}, true);
    const V w = x + xg::exp(c);
    const V k(A{1.0, 10.0, 100.0});
    const std::vector<V> g = xg::grad(xg::sum(w * k) + xg::sum(twice(x)), {w, x});
    BOOST_TEST(offers == 1);
    BOOST_TEST(xgt::close(g[0].data(), k.data()));
    BOOST_TEST(xgt::close(g[1].data(), A{3.0, 12.0, 102.0}));
}

// The library's ops with add_input_grad (slice; matmul, for either operand and every transpose
// flag) against the same graph's backward() path (anomaly mode turns the fast path off).
BOOST_AUTO_TEST_CASE(added_gradients_equal_those_of_backward) {
    const A x0 = xgt::random_array({6, 8}, 3);
    const A w0 = xgt::random_array({8, 8}, 4, -0.5, 0.5);
    auto leaf_grads = [&](bool fast) {
        V x(x0, true), w(w0, true);
        xg::AnomalyGuard anomaly(!fast);
        // Slices of one source, overlapping and disjoint, beside a full-size use; w in products
        // at several "steps" with all four transpose flags, and x times itself.
        V h = xg::slice(x, 1, 0, 4) * xg::slice(x, 1, 4, 8) + xg::slice(x, 1, 2, 6) + xg::slice(x, 1, 1, 8, 2);
        const V rows = xg::slice(x, 0, 0, 6, 2) * xg::slice(x, 0, 1, 6, 2);  // strided, along axis 0
        V state = xg::tanh(xg::matmul(x, w, false, true));
        for (int t = 0; t < 3; ++t) {
            state = xg::tanh(xg::matmul(state, w) + xg::matmul(state, w, false, true));
            state = xg::tanh(xg::matmul(w, state, true, true) + xg::matmul(w, state, false, true));
            state = xg::transpose(state);
        }
        const V x3 = xg::reshape(x, {2, 3, 8});  // a product's rows in three dimensions
        const V loss = xg::sum(h * h) + xg::sum(rows) + xg::sum(x * x) +
                       xg::sum(xg::matmul(x3, w, false, true) * xg::matmul(x3, w)) +
                       xg::sum(state * xg::slice(state, 0, 0, 6)) + xg::sum(xg::matmul(x, x, false, true)) +
                       xg::sum(xg::matmul(x, x, true, false));
        loss.backward();
        return std::pair{x.grad().data(), w.grad().data()};
    };
    const auto [fx, fw] = leaf_grads(true);
    const auto [sx, sw] = leaf_grads(false);
    BOOST_TEST(xgt::close(fx, sx, 1e-12));
    BOOST_TEST(xgt::close(fw, sw, 1e-12));
}

// y = x, whose backward sends a new array of 2 gy and notes where that array lives.
struct Source : xg::Function<double> {
    const double** sent;
    explicit Source(const double** sent) : sent(sent) {}
    std::string_view name() const override { return "source"; }
    A forward(const xg::ArrayRefs<double>& xs) override { return xs[0]; }
    std::vector<V> backward(const V& gy) override {
        A g = 2.0 * gy.data();
        *sent = g.data();
        return {V(std::move(g))};
    }
};

// Reshape's backward reuses the gradient's array when the engine hands it over, and never one
// that anything else holds (Function::take_gradient).
BOOST_AUTO_TEST_CASE(a_handed_over_gradient_is_reused_and_a_shared_one_never) {
    const double* sent = nullptr;
    auto source = [&](const V& v) { return xg::apply(std::make_shared<Source>(&sent), {v}); };
    V x(A{{1.0, -2.0, 3.0}, {4.0, 5.0, -6.0}}, true);
    // x -> reshape -> source -> sum: source's gradient goes through reshape to x.grad(), unmoved.
    xg::sum(source(xg::reshape(x, {6}))).backward();
    BOOST_TEST(x.grad().data().data() == sent);
    BOOST_TEST(xgt::close(x.grad().data(), xg::full<double>({2, 3}, 2.0), 0));
    // One gradient sent to two reshapes (add's backward): each gets it whole.
    x.zero_grad();
    xg::sum(source(xg::reshape(x, {6}) + xg::reshape(x, {6}))).backward();
    BOOST_TEST(xgt::close(x.grad().data(), xg::full<double>({2, 3}, 4.0), 0));
    // A caller's seed, a retained gradient and one xg::grad returns stay as they were.
    x.zero_grad();
    const V seed(A{1.0, 2.0, 3.0, 4.0, 5.0, 6.0});
    const V r = xg::reshape(x, {6});
    r.backward(seed);
    BOOST_TEST(xgt::close(seed.data(), A{1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, 0));
    BOOST_TEST(xgt::close(x.grad().data(), A{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, 0));
    x.zero_grad();
    const V kept = xg::reshape(x, {6});
    kept.retain_grad();
    xg::sum(source(kept)).backward();
    BOOST_TEST(xgt::close(kept.grad().data(), xg::full<double>({6}, 2.0), 0));
    BOOST_TEST(xgt::close(x.grad().data(), xg::full<double>({2, 3}, 2.0), 0));
    const V mid = xg::reshape(x, {6});
    const std::vector<V> both = xg::grad(xg::sum(source(mid)), {mid, x});
    BOOST_TEST(xgt::close(both[0].data(), xg::full<double>({6}, 2.0), 0));
    BOOST_TEST(xgt::close(both[1].data(), xg::full<double>({2, 3}, 2.0), 0));
    // Under create_graph the gradient is an op's output: copied, and differentiable.
    x.zero_grad();
    xg::sum(source(xg::reshape(x, {6}))).backward({.create_graph = true});
    BOOST_TEST(x.grad().data().data() != sent);
    BOOST_TEST(xgt::close(x.grad().data(), xg::full<double>({2, 3}, 2.0), 0));
}

// A leaf with a post-accumulate hook (dist::DataParallel's) has its gradient stored when its last
// use has run: the array its op sent, not a copy; one gradient sent to two such leaves (add's
// backward) is still copied for one of them, so each .grad() is its own.
BOOST_AUTO_TEST_CASE(a_hooked_leaf_keeps_the_gradient_its_op_sent) {
    const double* sent = nullptr;
    auto source = [&](const V& v) { return xg::apply(std::make_shared<Source>(&sent), {v}); };
    V x(A{{1.0, -2.0, 3.0}, {4.0, 5.0, -6.0}}, true);
    int hooked = 0;
    x.register_post_accumulate_grad_hook([&](const V&) { ++hooked; });
    xg::sum(source(x)).backward();
    BOOST_TEST(hooked == 1);
    BOOST_TEST(x.grad().data().data() == sent);
    BOOST_TEST(xgt::close(x.grad().data(), xg::full<double>({2, 3}, 2.0), 0));
    V a(A{1.0, 2.0}, true), b(A{3.0, 4.0}, true);
    a.register_post_accumulate_grad_hook([&](const V&) { ++hooked; });
    b.register_post_accumulate_grad_hook([&](const V&) { ++hooked; });
    xg::sum(source(a + b)).backward();
    BOOST_TEST(hooked == 3);
    BOOST_TEST(a.grad().data().data() != b.grad().data().data());
    a.grad().mutable_data()(0) = 7.0;
    BOOST_TEST(xgt::close(b.grad().data(), A{2.0, 2.0}, 0));
}

BOOST_AUTO_TEST_SUITE_END()
