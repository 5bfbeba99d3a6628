// Robustness, wrong results: ops at edge values (zeros, NaN, tails, empty dimensions), soft
// targets, and gradcheck refusing to pass vacuously. Each case failed before its fix.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "expect_error.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::expect_error;

namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

// 11 elements: enough for the SIMD body and a scalar tail at every vector width.
constexpr std::size_t n_lanes = 11;

A filled(double v, std::size_t n = n_lanes) {
    A a = A::from_shape({n});
    a.fill(v);
    return a;
}

// A copy of a variable's values, safe to loop over (a range-for over xg::f(x).data() would read
// the array of a temporary destroyed before the loop body).
template <class T>
xg::Array<T> values(const xg::Variable<T>& v) {
    return v.data();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(robustness)
BOOST_AUTO_TEST_SUITE(ops)

BOOST_AUTO_TEST_CASE(soft_target_cross_entropy_gradient_is_softmax_times_row_sum_minus_target) {
    // t = [[1, 1, 0]], x = 0: d/dx = -t + softmax(x) * sum(t) = [[-1/3, -1/3, 2/3]].
    V x(A{{0.0, 0.0, 0.0}}, true);
    V t(A{{1.0, 1.0, 0.0}}, true);
    xg::softmax_cross_entropy(x, t).backward();
    const A want{{-1.0 / 3, -1.0 / 3, 2.0 / 3}};
    BOOST_TEST(x.grad().data() == want, boost::test_tools::tolerance(1e-12) << boost::test_tools::per_element());
    BOOST_TEST(t.grad().data() == A(xt::full_like(want, std::log(3.0))),
               boost::test_tools::tolerance(1e-12) << boost::test_tools::per_element());

    // Random non-negative targets whose rows do not sum to 1, for every reduction; both inputs.
    for (auto r : {xg::Reduction::mean, xg::Reduction::sum, xg::Reduction::none}) {
        auto f = [r](const std::vector<V>& in) { return xg::softmax_cross_entropy(in[0], in[1], r); };
        const std::vector<V> inputs{V(A{{0.3, -1.2, 2.0, 0.1}, {1.5, 0.2, -0.7, 0.0}}),
                                    V(A{{0.5, 1.7, 0.0, 0.2}, {0.0, 0.3, 0.1, 2.5}})};
        const auto report = xg::gradcheck<double>(f, inputs);
        BOOST_TEST(report.ok, report.str());
        const auto second = xg::gradgradcheck<double>(f, inputs);
        BOOST_TEST(second.ok, second.str());
    }
}

BOOST_AUTO_TEST_CASE(pow_at_zero_gives_the_same_answer_in_every_lane) {
    const V zero(filled(0.0));
    BOOST_TEST(xg::pow(zero, 0.0).data() == filled(1.0), boost::test_tools::per_element());
    BOOST_TEST(xg::pow(zero, -1.0).data() == filled(inf), boost::test_tools::per_element());
    BOOST_TEST(xg::pow(zero, -2.5).data() == filled(inf), boost::test_tools::per_element());
    BOOST_TEST(xg::pow(zero, 0.5).data() == filled(0.0), boost::test_tools::per_element());
    BOOST_TEST(xg::pow(V(filled(-0.0)), -1.0).data() == filled(-inf), boost::test_tools::per_element());
    // Derivatives at 0 as PyTorch's: 0 for c = 0 and c = 2, 1 for c = 1, inf for c = 0.5.
    for (const auto& [c, want] : {std::pair{0.0, 0.0}, {1.0, 1.0}, {2.0, 0.0}, {3.0, 0.0}, {0.5, inf}}) {
        V x(filled(0.0), true);
        xg::sum(xg::pow(x, c)).backward();
        const A g = x.has_grad() ? x.grad().data() : A(xt::zeros<double>({n_lanes}));
        BOOST_TEST(g == filled(want), "c = " << c << boost::test_tools::per_element());
    }
    // Float lanes too (twice as many per vector).
    const xg::Variable<float> zf(xg::Array<float>(xt::zeros<float>({n_lanes})));
    for (float v : values(xg::pow(zf, 0.0f))) BOOST_TEST(v == 1.0f);
}

BOOST_AUTO_TEST_CASE(sigmoid_keeps_relative_precision_in_its_tail) {
    const double x = -40, want = 4.248354255291589e-18;  // 1 / (1 + e^40)
    const V y = xg::sigmoid(V(filled(x)));
    for (double v : y.data()) BOOST_TEST(v == want, boost::test_tools::tolerance(1e-14));
    for (double v : values(xg::log(y))) BOOST_TEST(v == -40.0, boost::test_tools::tolerance(1e-14));
    const xg::Variable<float> yf = xg::sigmoid(xg::Variable<float>(xg::Array<float>(xt::full_like(filled(x), -40.0))));
    for (float v : yf.data()) BOOST_TEST(v == 4.2483543e-18f, boost::test_tools::tolerance(1e-5f));
    // softplus's gradient is sigmoid: it keeps the tail too; and large inputs saturate cleanly.
    V z(filled(x), true);
    xg::sum(xg::softplus(z)).backward();
    for (double v : z.grad().data()) BOOST_TEST(v == want, boost::test_tools::tolerance(1e-14));
    for (double v : values(xg::sigmoid(V(filled(800.0))))) BOOST_TEST(v == 1.0);
    for (double v : values(xg::sigmoid(V(filled(-800.0))))) BOOST_TEST(v == 0.0);
    for (double v : values(xg::sigmoid(V(filled(NaN))))) BOOST_TEST(std::isnan(v));
}

BOOST_AUTO_TEST_CASE(matmul_with_an_empty_inner_dimension_is_zeros) {
    for (int round = 0; round < 20; ++round) {
        { const A garbage = filled(NaN, 64); }  // freed memory full of NaN, likely reused below
        const V a(A::from_shape({8, 0})), b(A::from_shape({0, 8}));
        BOOST_TEST(xg::matmul(a, b).data() == A(xt::zeros<double>({8, 8})), boost::test_tools::per_element());
        BOOST_TEST(xg::linear(a, b, V(filled(2.0, 8))).data() == A(xt::full_like(A::from_shape({8, 8}), 2.0)),
                   boost::test_tools::per_element());
    }
    V a(A::from_shape({3, 0}), true), b(A::from_shape({0, 2}), true);
    xg::sum(xg::matmul(a, b)).backward();  // gradients of empty shapes, no crash
    BOOST_TEST(a.grad().shape() == xg::Shape({3, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(max_propagates_nan_from_every_position) {
    for (std::size_t at = 0; at < n_lanes; ++at) {
        A a = xt::arange<double>(static_cast<double>(n_lanes));
        a(at) = NaN;
        BOOST_TEST(std::isnan(xg::max(V(a)).item()), "NaN at " << at);
        const A rows = xt::stack(xt::xtuple(a, a));
        for (double v : values(xg::max(V(rows), 1))) BOOST_TEST(std::isnan(v), "NaN at " << at);
        const V cols = xg::max(V(A(xt::transpose(rows))), 0);
        for (double v : cols.data()) BOOST_TEST(std::isnan(v), "NaN at " << at);
        xg::AnomalyGuard anomaly;
        expect_error<xg::ValueError>([&] { xg::max(V(a)); }, {"max", "NaN"});
    }
    // Ties split the gradient; -inf is an ordinary value.
    V x(A{{1.0, 3.0, 3.0}, {-inf, -inf, -inf}}, true);
    xg::sum(xg::max(x, 1)).backward();
    BOOST_TEST(x.grad().data() == A({{0.0, 0.5, 0.5}, {1.0 / 3, 1.0 / 3, 1.0 / 3}}),
               boost::test_tools::tolerance(1e-15) << boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unary_ops_give_the_scalar_functions_values_at_edges_in_every_lane) {
    // Each edge value fills a whole array, so the SIMD body and the tail must agree.
    struct Case {
        const char* name;
        V (*op)(const V&);
        double (*ref)(double);
    };
    const Case cases[] = {
        {"exp", [](const V& x) { return xg::exp(x); }, [](double v) { return std::exp(v); }},
        {"log", [](const V& x) { return xg::log(x); }, [](double v) { return std::log(v); }},
        {"sqrt", [](const V& x) { return xg::sqrt(x); }, [](double v) { return std::sqrt(v); }},
        {"abs", [](const V& x) { return xg::abs(x); }, [](double v) { return std::abs(v); }},
        {"tanh", [](const V& x) { return xg::tanh(x); }, [](double v) { return std::tanh(v); }},
        {"relu", [](const V& x) { return xg::relu(x); }, [](double v) { return std::isnan(v) ? v : std::max(v, 0.0); }},
        {"softplus", [](const V& x) { return xg::softplus(x); },
         [](double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v))); }},
    };
    for (const Case& c : cases)
        for (double v : {0.0, -0.0, 1.0, -1.0, 1e-300, 700.0, -700.0, 1e308, inf, -inf, NaN}) {
            const double want = c.ref(v);
            for (double got : values(c.op(V(filled(v))))) {
                const bool same = (std::isnan(want) && std::isnan(got)) || got == want ||
                                  std::abs(got - want) <= 1e-15 * std::abs(want);
                BOOST_TEST(same, c.name << "(" << v << ") = " << got << ", expected " << want);
            }
        }
}

BOOST_AUTO_TEST_CASE(gradcheck_never_passes_vacuously) {
    auto log_sum = [](const std::vector<V>& in) { return xg::sum(xg::log(in[0])); };
    const std::vector<V> near_zero{V(A{1e-8, 2e-8})};
    for (double eps : {0.0, -1e-6, NaN, inf})
        expect_error<xg::ValueError>([&] { xg::gradcheck<double>(log_sum, near_zero, eps); }, {"gradcheck", "eps"});
    expect_error<xg::ValueError>([&] { xg::gradcheck<double>(log_sum, near_zero, 1e-6, NaN); }, {"atol"});
    expect_error<xg::ValueError>([&] { xg::gradcheck<double>(log_sum, near_zero, 1e-6, 1e-5, NaN); }, {"rtol"});

    // eps larger than x: log of a negative number, a NaN numeric derivative.
    const auto report = xg::gradcheck<double>(log_sum, near_zero, 1e-6);
    BOOST_TEST(!report.ok);
    BOOST_TEST(std::isnan(report.inputs[0].max_abs_error));
    BOOST_TEST(report.str().find("nan") != std::string::npos, report.str());
    BOOST_TEST(report.str().find("not finite") != std::string::npos, report.str());

    // An infinite analytic gradient fails too (sqrt at 0), even when the numeric one is finite.
    auto sqrt_sum = [](const std::vector<V>& in) { return xg::sum(xg::sqrt(in[0])); };
    const auto at_zero = xg::gradcheck<double>(sqrt_sum, {V(A{0.0, 1.0})}, 1e-6);
    BOOST_TEST(!at_zero.ok, at_zero.str());
    BOOST_TEST(at_zero.inputs[0].worst_element == 0u);

    // An eps that cannot move an element in the array's precision is refused, not divided by.
    auto sum_f = [](const std::vector<xg::Variable<float>>& in) { return xg::sum(in[0]); };
    expect_error<xg::ValueError>(
        [&] { xg::gradcheck<float>(sum_f, {xg::Variable<float>(xg::Array<float>{1e8f})}, 1e-6); },
        {"eps", "does not move"});
}

BOOST_AUTO_TEST_CASE(sum_to_and_reductions_of_empty_arrays) {
    // (UBSan flagged a null-pointer offset here: xtensor's reducer on an empty array.)
    const V e(A::from_shape({0, 3}), true);
    BOOST_TEST(xg::sum_to(e, xg::Shape{3}).data() == A(xt::zeros<double>({3})), boost::test_tools::per_element());
    BOOST_TEST(xg::sum_to(e, xg::Shape{1, 3}).data() == A(xt::zeros<double>({1, 3})), boost::test_tools::per_element());
    BOOST_TEST(xg::sum(e).item() == 0.0);
    BOOST_TEST(xg::sum(e, 0).data() == A(xt::zeros<double>({3})), boost::test_tools::per_element());
    BOOST_TEST(xg::sum(e, 1).shape() == xg::Shape({0}), boost::test_tools::per_element());
    xg::sum(xg::sum_to(e * 2.0, xg::Shape{3})).backward();
    BOOST_TEST(e.grad().shape() == xg::Shape({0, 3}), boost::test_tools::per_element());
    expect_error<xg::ShapeError>([&] { xg::max(e); }, {"max", "(0, 3)"});
    // sum_to over several axes and leading ones at once equals summing them one by one.
    const A x = xt::arange<double>(2.0 * 3 * 4).reshape({2, 3, 4});
    const A want = xt::sum(x, {0, 2}, xt::keep_dims);
    BOOST_TEST(xg::sum_to(V(x), xg::Shape{3, 1}).data() == A(xt::reshape_view(want, {3, 1})),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
BOOST_AUTO_TEST_SUITE_END()
