// A user-defined op, outside the library: derive Function, forward on arrays, backward with ops.
// This is the README's example, verbatim.
#include <boost/test/unit_test.hpp>

#include <xtensor/xmath.hpp>

#include "xgrad.hpp"

// swish(x) = x * sigmoid(x); swish'(x) = s + x * s * (1 - s).
template <class T>
struct Swish : xg::Function<T> {
    std::string_view name() const override { return "swish"; }
    xg::Array<T> forward(const xg::ArrayRefs<T>& xs) override {
        return xs[0] / (T(1) + xt::exp(-xs[0]));
    }
    std::vector<xg::Variable<T>> backward(const xg::Variable<T>& gy) override {
        const xg::Variable<T>& x = this->input(0);
        const xg::Variable<T> s = xg::sigmoid(x);
        return {gy * (s + x * s * (T(1) - s))};
    }
};

template <class T>
xg::Variable<T> swish(const xg::Variable<T>& x) {
    return xg::apply<Swish<T>>({x});
}

// The same op with a deliberately wrong derivative: gradcheck must catch it.
template <class T>
struct BrokenSwish : Swish<T> {
    std::vector<xg::Variable<T>> backward(const xg::Variable<T>& gy) override {
        return {gy * xg::sigmoid(this->input(0))};  // forgets the x * s * (1 - s) term
    }
};

using V = xg::Variable<double>;
using A = xg::Array<double>;

// An identity op that notes, each time its backward runs, whether that backward is recorded.
struct Probe : xg::Function<double> {
    std::vector<bool>* seen = nullptr;
    explicit Probe(std::vector<bool>* s) : seen(s) {}
    std::string_view name() const override { return "probe"; }
    xg::Array<double> forward(const xg::ArrayRefs<double>& xs) override { return xs[0]; }
    std::vector<V> backward(const V& gy) override {
        seen->push_back(xg::recording_backward());
        return {gy};
    }
};

BOOST_AUTO_TEST_SUITE(extension)

BOOST_AUTO_TEST_CASE(user_op_swish_passes_gradcheck_and_gradgradcheck) {
    V x(A{{-2.0, -0.5, 0.3}, {1.0, 2.5, -1.2}}, true);
    auto f = [](const std::vector<V>& in) { return swish(in[0]); };
    const auto first = xg::gradcheck<double>(f, {x});
    BOOST_TEST(first.ok, first.str());
    const auto second = xg::gradgradcheck<double>(f, {x});
    BOOST_TEST(second.ok, second.str());
    BOOST_TEST(swish(V(A{0.0})).item() == 0.0);
    BOOST_TEST(swish(x).creator()->name() == "swish");
}

BOOST_AUTO_TEST_CASE(gradcheck_catches_a_wrong_backward) {
    V x(A{-1.0, 0.5, 2.0}, true);
    const auto report = xg::gradcheck<double>([](const auto& in) { return xg::apply<BrokenSwish<double>>({in[0]}); }, {x});
    BOOST_TEST(!report.ok);
    BOOST_TEST(report.str().find("FAILED") != std::string::npos);
    BOOST_TEST(report.inputs[0].max_abs_error > 0.1);
}

BOOST_AUTO_TEST_CASE(shared_pointer_apply_and_no_grad) {
    V x(A{1.0, 2.0}, true);
    V y = xg::apply(std::make_shared<Swish<double>>(), {x});
    BOOST_TEST(y.requires_grad());
    xg::NoGradGuard guard;
    V z = swish(x);
    BOOST_TEST(z.is_leaf());
    BOOST_TEST(z.data()(1) == y.data()(1));
}

BOOST_AUTO_TEST_CASE(recording_backward_is_true_only_in_a_recorded_backward) {
    BOOST_TEST(!xg::recording_backward());  // outside any backward, although grad mode is on
    std::vector<bool> seen;
    V x(A{1.0, 2.0}, true);
    auto f = [&] { return xg::sum(xg::apply<Probe>({x}, &seen) * x); };
    f().backward();
    f().backward({.create_graph = true});
    (void)xg::grad(f(), {x});
    (void)xg::grad(f(), {x}, {}, {.create_graph = true});
    BOOST_TEST((seen == std::vector<bool>{false, true, false, true}));
    BOOST_TEST(!xg::recording_backward());
    x.zero_grad();  // breaks the cycle the create_graph backward left in x.grad()
}

BOOST_AUTO_TEST_CASE(numerical_gradient_of_scalar_function) {
    V x(A{1.0, 2.0, 3.0});
    const auto g = xg::numerical_gradient<double>([](const auto& in) { return xg::sum(in[0] * in[0]); }, {x});
    BOOST_TEST(g[0] == A({2.0, 4.0, 6.0}), boost::test_tools::tolerance(1e-8) << boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
