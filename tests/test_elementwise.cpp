// Elementwise, activation and selection ops beyond their gradchecks (op_cases.cpp): the documented
// tie and boundary gradients, precision and overflow at extreme inputs, NaN and infinities, empty
// shapes, functional and module dropout, and every op's errors.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "expect_error.hpp"
#include "ops/vector_math.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
namespace tt = boost::test_tools;
namespace nn = xg::nn;
using xgt::expect_error;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Every element equal (NaN equal to NaN), in row-major order.
void expect_values(const A& got, const std::vector<double>& want, double rel = 0.0) {
    BOOST_TEST_REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double g = got.data()[i], w = want[i];
        if (std::isnan(w))
            BOOST_TEST(std::isnan(g), "element " << i << ": " << g << ", expected NaN");
        else if (rel == 0.0 || std::isinf(w) || w == 0.0)
            BOOST_TEST(g == w, "element " << i << ": " << g << ", expected " << w);
        else
            BOOST_TEST(g == w, "element " << i << tt::tolerance(rel));
    }
}

void expect_mask(const xg::Mask& got, const std::vector<bool>& want) {
    BOOST_TEST_REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) BOOST_TEST(got.data()[i] == want[i], "element " << i);
}

// d sum(f(x)) / dx.
A grad_of(const std::function<V(const V&)>& f, const A& x) {
    V v(x, true);
    xg::sum(f(v)).backward();
    return v.grad().data();
}

// d^2 sum(f(x)) / dx^2 (the diagonal: f is elementwise).
A second_grad_of(const std::function<V(const V&)>& f, const A& x) {
    V v(x, true);
    const V g = xg::grad(xg::sum(f(v)), {v}, V(), {.create_graph = true})[0];
    if (!g.requires_grad()) return xg::full(x.shape(), 0.0);  // piecewise linear: no graph left
    xg::sum(g).backward();
    return v.grad().data();
}

V undefined() { return V(); }
A column(std::initializer_list<double> values) {  // shape (n, 1); A{{1.0}, {2.0}} is ambiguous
    A a = A::from_shape({values.size(), 1});
    std::copy(values.begin(), values.end(), a.begin());
    return a;
}
V zeros(std::initializer_list<std::size_t> shape) { return V(xg::full(xg::Shape(shape), 0.0), true); }

// The one-input ops of this file (the name is the one their errors give).
using UnaryFn = std::function<V(const V&)>;
std::vector<std::pair<const char*, UnaryFn>> unary_ops() {
    return {
        {"sin", [](const V& v) { return xg::sin(v); }},
        {"cos", [](const V& v) { return xg::cos(v); }},
        {"log1p", [](const V& v) { return xg::log1p(v); }},
        {"expm1", [](const V& v) { return xg::expm1(v); }},
        {"square", [](const V& v) { return xg::square(v); }},
        {"reciprocal", [](const V& v) { return xg::reciprocal(v); }},
        {"rsqrt", [](const V& v) { return xg::rsqrt(v); }},
        {"clamp", [](const V& v) { return xg::clamp(v, -1.0, 1.0); }},
        {"gelu", [](const V& v) { return xg::gelu(v); }},
        {"gelu", [](const V& v) { return xg::gelu(v, xg::GeluApproximate::tanh); }},
        {"silu", [](const V& v) { return xg::silu(v); }},
        {"elu", [](const V& v) { return xg::elu(v); }},
        {"hardtanh", [](const V& v) { return xg::hardtanh(v); }},
        {"softsign", [](const V& v) { return xg::softsign(v); }},
    };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(elementwise)

BOOST_AUTO_TEST_CASE(maximum_minimum_ties_split_the_gradient) {
    const A a{1.0, 2.0, 3.0}, b{1.0, 1.0, 4.0};
    V va(a, true), vb(b, true);
    V y = xg::maximum(va, vb);
    expect_values(y.data(), {1.0, 2.0, 4.0});
    xg::sum(y).backward();
    expect_values(va.grad().data(), {0.5, 1.0, 0.0});
    expect_values(vb.grad().data(), {0.5, 0.0, 1.0});

    V ma(a, true), mb(b, true);
    V z = xg::minimum(ma, mb);
    expect_values(z.data(), {1.0, 1.0, 3.0});
    xg::sum(z).backward();
    expect_values(ma.grad().data(), {0.5, 0.0, 1.0});
    expect_values(mb.grad().data(), {0.5, 1.0, 0.0});
}

BOOST_AUTO_TEST_CASE(maximum_ties_with_broadcasting_sum_the_halves) {
    V a(column({1.0, 2.0}), true);  // (2, 1)
    V b(A{1.0, 1.0, 1.0}, true); // (3,)
    V y = xg::maximum(a, b);
    BOOST_TEST(y.shape() == xg::Shape({2, 3}), tt::per_element());
    xg::sum(y).backward();
    expect_values(a.grad().data(), {1.5, 3.0});
    expect_values(b.grad().data(), {0.5, 0.5, 0.5});
}

BOOST_AUTO_TEST_CASE(maximum_minimum_propagate_nan_and_pass_the_gradient_to_both) {
    V a(A{kNaN, 1.0}, true), b(A{1.0, kNaN}, true);
    V y = xg::maximum(a, b);
    expect_values(y.data(), {kNaN, kNaN});
    expect_values(xg::minimum(a, b).data(), {kNaN, kNaN});
    xg::sum(y).backward();
    expect_values(a.grad().data(), {1.0, 1.0});
    expect_values(b.grad().data(), {1.0, 1.0});
    expect_values(xg::maximum(V(A{-kInf, kInf}), V(A{0.0, 0.0})).data(), {0.0, kInf});
}

BOOST_AUTO_TEST_CASE(clamp_gradient_includes_the_bounds_hardtanh_excludes_them) {
    const A x{-1.0, 0.0, 1.0, 2.0, 3.0, kNaN};
    expect_values(xg::clamp(V(x), 0.0, 2.0).data(), {0.0, 0.0, 1.0, 2.0, 2.0, kNaN});
    expect_values(grad_of([](const V& v) { return xg::clamp(v, 0.0, 2.0); }, x), {0, 1, 1, 1, 0, 0});
    expect_values(xg::hardtanh(V(x), 0.0, 2.0).data(), {0.0, 0.0, 1.0, 2.0, 2.0, kNaN});
    expect_values(grad_of([](const V& v) { return xg::hardtanh(v, 0.0, 2.0); }, x), {0, 0, 1, 0, 0, 1});
    expect_values(xg::hardtanh(V(A{-2.0, -1.0, 0.5, 1.0, 2.0})).data(), {-1.0, -1.0, 0.5, 1.0, 1.0});
}

BOOST_AUTO_TEST_CASE(clamp_open_sides_and_crossed_bounds) {
    const A x{-1e300, -1.0, 5.0, 1e300};
    expect_values(xg::clamp(V(x), 0.0, kInf).data(), {0.0, 0.0, 5.0, 1e300});
    expect_values(xg::clamp(V(x), -kInf, 0.0).data(), {-1e300, -1.0, 0.0, 0.0});
    // lo > hi: hi everywhere, gradient 0 (torch.clamp's min(max(x, lo), hi)).
    expect_values(xg::clamp(V(x), 2.0, 1.0).data(), {1.0, 1.0, 1.0, 1.0});
    expect_values(grad_of([](const V& v) { return xg::clamp(v, 2.0, 1.0); }, x), {0, 0, 0, 0});
}

BOOST_AUTO_TEST_CASE(log1p_expm1_keep_small_x_exact) {
    const A x{1e-10, -1e-10, 1e-300, 0.0};
    // log1p(x) = x - x^2/2 and expm1(x) = x + x^2/2 to double precision here.
    expect_values(xg::log1p(V(x)).data(), {1e-10 - 5e-21, -1e-10 - 5e-21, 1e-300, 0.0}, 1e-15);
    expect_values(xg::expm1(V(x)).data(), {1e-10 + 5e-21, -1e-10 + 5e-21, 1e-300, 0.0}, 1e-15);
    // The naive forms lose six digits at 1e-10.
    BOOST_TEST(std::abs(std::exp(1e-10) - 1.0 - 1e-10) > 1e-18);
    const xg::Variable<float> xf(xg::Array<float>{1e-7f});
    BOOST_TEST(xg::expm1(xf).data()(0) == 1e-7f, tt::tolerance(1e-6f));
    BOOST_TEST(xg::log1p(xf).data()(0) == 1e-7f, tt::tolerance(1e-6f));
    // expm1's gradient is e^x itself, not expm1(x) + 1 (0 below x = -37.5).
    expect_values(grad_of([](const V& v) { return xg::expm1(v); }, A{-40.0}), {std::exp(-40.0)}, 1e-15);
    expect_values(xg::log1p(V(A{-1.0, -2.0})).data(), {-kInf, kNaN});
}

BOOST_AUTO_TEST_CASE(unary_values) {
    const A x{0.5, 2.0, 4.0};
    expect_values(xg::sin(V(x)).data(), {std::sin(0.5), std::sin(2.0), std::sin(4.0)}, 1e-15);
    expect_values(xg::cos(V(x)).data(), {std::cos(0.5), std::cos(2.0), std::cos(4.0)}, 1e-15);
    expect_values(xg::square(V(x)).data(), {0.25, 4.0, 16.0});
    expect_values(xg::reciprocal(V(x)).data(), {2.0, 0.5, 0.25});
    expect_values(xg::rsqrt(V(x)).data(), {1.0 / std::sqrt(0.5), 1.0 / std::sqrt(2.0), 0.5});
    expect_values(grad_of([](const V& v) { return xg::rsqrt(v); }, x),
                  {-0.5 * std::pow(0.5, -1.5), -0.5 * std::pow(2.0, -1.5), -1.0 / 16}, 1e-15);
    expect_values(grad_of([](const V& v) { return xg::reciprocal(v); }, x), {-4.0, -0.25, -1.0 / 16});
    expect_values(xg::reciprocal(V(A{0.0, -0.0})).data(), {kInf, -kInf});
    expect_values(xg::rsqrt(V(A{0.0, -1.0, kInf})).data(), {kInf, kNaN, 0.0});
    expect_values(xg::softsign(V(A{-3.0, 0.0, 1.0})).data(), {-0.75, 0.0, 0.5});
    expect_values(grad_of([](const V& v) { return xg::softsign(v); }, A{-3.0, 0.0, 1.0}), {1.0 / 16, 1.0, 0.25});
}

BOOST_AUTO_TEST_CASE(gelu_exact_keeps_the_negative_tail) {
    // x Phi(x): Phi(-10) = 7.619853024160527e-24 (erfc(10 / sqrt 2) / 2).
    // (xsimd's erfc, in the SIMD lanes, is within 2e-13 of it there; PyTorch's 1 + erf form gives -0.)
    expect_values(xg::gelu(V(A{-10.0, 0.0, 1.0})).data(), {-7.619853024160526e-23, 0.0, 0.8413447460685429}, 1e-12);
    // tanh form at 1: 0.5 (1 + tanh(sqrt(2/pi) 1.044715)).
    const double t = 0.5 * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * 1.044715));
    expect_values(xg::gelu(V(A{1.0}), xg::GeluApproximate::tanh).data(), {t}, 1e-15);
    // gelu'(0) = 1/2 in both forms.
    expect_values(grad_of([](const V& v) { return xg::gelu(v); }, A{0.0}), {0.5});
    expect_values(grad_of([](const V& v) { return xg::gelu(v, xg::GeluApproximate::tanh); }, A{0.0}), {0.5});
}

BOOST_AUTO_TEST_CASE(activations_stay_finite_at_large_magnitudes) {
    const A x{-1e4, 1e4};
    using Fn = std::function<V(const V&)>;
    const std::vector<std::pair<const char*, Fn>> fns = {
        {"gelu", [](const V& v) { return xg::gelu(v); }},
        {"gelu_tanh", [](const V& v) { return xg::gelu(v, xg::GeluApproximate::tanh); }},
        {"silu", [](const V& v) { return xg::silu(v); }},
        {"elu", [](const V& v) { return xg::elu(v, 0.5); }},
        {"softsign", [](const V& v) { return xg::softsign(v); }},
        {"hardtanh", [](const V& v) { return xg::hardtanh(v); }},
    };
    for (const auto& [name, f] : fns) {
        BOOST_TEST_CONTEXT(name) {
            const A y = f(V(x)).data();
            const A g = grad_of(f, x);
            const A gg = second_grad_of(f, x);
            for (std::size_t i = 0; i < 2; ++i) {
                BOOST_TEST(std::isfinite(y(i)));
                BOOST_TEST(std::isfinite(g(i)));
                BOOST_TEST(std::isfinite(gg(i)));
            }
        }
    }
    expect_values(xg::gelu(V(x)).data(), {-0.0, 1e4});
    expect_values(grad_of([](const V& v) { return xg::gelu(v); }, x), {0.0, 1.0});
    expect_values(xg::gelu(V(x), xg::GeluApproximate::tanh).data(), {-0.0, 1e4});
    expect_values(grad_of([](const V& v) { return xg::gelu(v, xg::GeluApproximate::tanh); }, x), {0.0, 1.0});
    expect_values(xg::silu(V(x)).data(), {-0.0, 1e4});
    expect_values(grad_of([](const V& v) { return xg::silu(v); }, x), {0.0, 1.0});
    expect_values(xg::elu(V(x), 0.5).data(), {-0.5, 1e4});
    expect_values(grad_of([](const V& v) { return xg::elu(v, 0.5); }, x), {0.0, 1.0});
    // float: the tanh form's x^3 overflows to kInf at 1e13 and x^2 at 1e20; still finite.
    using Vf = xg::Variable<float>;
    const xg::Array<float> xf{-1e20f, -1e13f, 1e13f, 1e20f};
    for (auto approx : {xg::GeluApproximate::none, xg::GeluApproximate::tanh}) {
        Vf v(xf, true);
        const Vf y = xg::gelu(v, approx);
        xg::sum(y).backward();
        for (std::size_t i = 0; i < 4; ++i) {
            BOOST_TEST(std::isfinite(y.data()(i)));
            BOOST_TEST(v.grad().data()(i) == (i < 2 ? 0.0f : 1.0f));
        }
    }
}

BOOST_AUTO_TEST_CASE(elu_and_silu_values) {
    const A x{-1.0, 0.0, 2.0};
    expect_values(xg::elu(V(x)).data(), {std::expm1(-1.0), 0.0, 2.0}, 1e-15);
    // At 0 the negative side's derivative alpha (PyTorch's split: x <= 0).
    expect_values(grad_of([](const V& v) { return xg::elu(v, 0.5); }, x), {0.5 * std::exp(-1.0), 0.5, 1.0}, 1e-15);
    const double s = 1.0 / (1.0 + std::exp(1.0));
    expect_values(xg::silu(V(x)).data(), {-s, 0.0, 2.0 / (1.0 + std::exp(-2.0))}, 1e-15);
    expect_values(xg::elu(V(A{kNaN})).data(), {kNaN});
}

BOOST_AUTO_TEST_CASE(empty_shapes) {
    std::vector<std::pair<const char*, UnaryFn>> fns = unary_ops();
    fns.insert(fns.end(), {
        {"maximum", [](const V& v) { return xg::maximum(v, V(A{1.0, 2.0, 3.0})); }},
        {"minimum", [](const V& v) { return xg::minimum(V(A{1.0, 2.0, 3.0}), v); }},
        {"where", [](const V& v) { return xg::where(xg::Mask{true, false, true}, v, 0.0); }},
        {"masked_fill", [](const V& v) { return xg::masked_fill(v, xg::Mask{true, false, true}, 1.0); }},
        {"dropout", [](const V& v) {
             std::mt19937_64 gen(1);
             return xg::dropout(v, 0.5, true, gen);
         }},
    });
    for (const auto& [name, f] : fns) {
        BOOST_TEST_CONTEXT(name) {
            V x(xg::full(xg::Shape{0, 3}, 0.0), true);
            const V y = f(x);
            BOOST_TEST(y.shape() == xg::Shape({0, 3}), tt::per_element());
            xg::sum(y).backward();
            BOOST_TEST(x.grad().shape() == xg::Shape({0, 3}), tt::per_element());
        }
    }
    const V e(xg::full(xg::Shape{0, 3}, 0.0));
    BOOST_TEST(xg::lt(e, V(A{1.0, 2.0, 3.0})).shape() == xg::Shape({0, 3}), tt::per_element());
    BOOST_TEST(xg::isfinite(e).size() == 0u);
    BOOST_TEST(xg::eq(e, 0.0).size() == 0u);
}

BOOST_AUTO_TEST_CASE(module_errors) {
    expect_error<xg::ShapeError>([] { xg::maximum(zeros({2, 3}), zeros({4})); }, {"maximum", "(2, 3)", "(4,)"});
    expect_error<xg::ShapeError>([] { xg::minimum(zeros({2, 3}), zeros({3, 2})); }, {"minimum", "(2, 3)", "(3, 2)"});
    expect_error<xg::ValueError>([] { xg::clamp(zeros({2}), kNaN, 1.0); }, {"clamp", "NaN", "nan"});
    expect_error<xg::ValueError>([] { xg::hardtanh(zeros({2}), -1.0, kNaN); }, {"hardtanh", "NaN", "nan"});
    std::vector<std::pair<const char*, UnaryFn>> fns = unary_ops();
    fns.insert(fns.end(), {
        {"maximum", [](const V& v) { return xg::maximum(v, v); }},
        {"minimum", [](const V& v) { return xg::minimum(v, v); }},
    });
    for (const auto& [name, f] : fns)
        expect_error<xg::GraphError>([&f = f] { f(undefined()); }, {name, "undefined"});
}

// One build of ops/vector_math.inc, as function pointers (the namespace's float or double overloads).
template <class T>
struct VectorMathBuild {
    const char* name;
    void (*sigmoid)(const T*, const T*, T*, std::size_t);
    void (*tanh)(const T*, const T*, T*, std::size_t);
    void (*gelu)(const T*, T*, std::size_t, bool);
    void (*gelu_grad)(const T*, const T*, T*, std::size_t, bool);
    void (*gelu_with_grad)(const T*, T*, T*, std::size_t, bool);
    void (*exp_shifted)(T*, T, std::size_t);
};
#define XGT_VECTOR_MATH_BUILD(ns, T)                                                                       \
    VectorMathBuild<T> {                                                                                   \
        #ns, xg::vmath::ns::sigmoid, xg::vmath::ns::tanh, xg::vmath::ns::gelu, xg::vmath::ns::gelu_grad,   \
            xg::vmath::ns::gelu_with_grad, xg::vmath::ns::exp_shifted                                      \
    }

// sigmoid, tanh, gelu and the softmax's exp run ops/vector_math.inc compiled three times, for the
// baseline instruction set, AVX2 and AVX-512, dispatched on the CPU: each wide build gives the
// baseline's bits, at edge values (signed
// zeros, infinities, NaN, denormals, the largest finite) and at 20000 points of [-30, 30], over a
// length that leaves a tail after the last full batch of either build.
template <class T>
void check_vector_math_builds_agree(const VectorMathBuild<T>& wide) {
    std::vector<T> x{T(0), -T(0), std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity(),
                     std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::denorm_min(),
                     -std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), -std::numeric_limits<T>::max(),
                     T(1e-30), T(-1e-30), T(88.7), T(-88.7), T(-103.5), T(710), T(-745)};
    for (int i = 0; i < 20000; ++i) x.push_back(T(-30 + 60.0 * i / 19999.0));
    x.push_back(T(0.5));  // 20017 elements: a tail of 1 after batches of 2, 4, 8 or 16
    std::vector<T> g(x.size());
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = T(std::sin(double(i)));
    const std::size_t n = x.size();
    std::vector<T> a(n), b(n);
    // The same bits, or NaN in both (a NaN's sign and payload are not specified: AVX-512's
    // instructions return other NaN bits than SSE2's for the same NaN input).
    const auto same = [&](const char* what) {
        std::size_t first = 0;
        while (first < n && (std::memcmp(&a[first], &b[first], sizeof(T)) == 0 ||
                             (std::isnan(a[first]) && std::isnan(b[first]))))
            ++first;
        BOOST_TEST(first == n, what << " (" << wide.name << ", " << sizeof(T) << "-byte): first difference at x = "
                                    << (first < n ? double(x[first]) : 0.0) << ": " << (first < n ? double(a[first]) : 0.0)
                                    << " against " << (first < n ? double(b[first]) : 0.0));
    };
    namespace vm = xg::vmath;
    vm::baseline::sigmoid(x.data(), nullptr, a.data(), n), wide.sigmoid(x.data(), nullptr, b.data(), n);
    same("sigmoid");
    vm::baseline::sigmoid(x.data(), g.data(), a.data(), n), wide.sigmoid(x.data(), g.data(), b.data(), n);
    same("sigmoid of a sum");
    vm::baseline::tanh(x.data(), nullptr, a.data(), n), wide.tanh(x.data(), nullptr, b.data(), n);
    same("tanh");
    vm::baseline::tanh(x.data(), g.data(), a.data(), n), wide.tanh(x.data(), g.data(), b.data(), n);
    same("tanh of a sum");
    for (bool tanh_form : {false, true}) {
        vm::baseline::gelu(x.data(), a.data(), n, tanh_form), wide.gelu(x.data(), b.data(), n, tanh_form);
        same(tanh_form ? "gelu (tanh form)" : "gelu");
        vm::baseline::gelu_grad(g.data(), x.data(), a.data(), n, tanh_form);
        wide.gelu_grad(g.data(), x.data(), b.data(), n, tanh_form);
        same(tanh_form ? "gelu_grad (tanh form)" : "gelu_grad");
        std::vector<T> da(n), db(n);
        vm::baseline::gelu_with_grad(x.data(), a.data(), da.data(), n, tanh_form);
        wide.gelu_with_grad(x.data(), b.data(), db.data(), n, tanh_form);
        same(tanh_form ? "gelu_with_grad's gelu (tanh form)" : "gelu_with_grad's gelu");
        a.swap(da), b.swap(db);
        same(tanh_form ? "gelu_with_grad's derivative (tanh form)" : "gelu_with_grad's derivative");
    }
    a = x;
    b = x;
    vm::baseline::exp_shifted(a.data(), T(1.5), n), wide.exp_shifted(b.data(), T(1.5), n);
    same("exp_shifted");
    // a short array: only the padded tail
    vm::baseline::sigmoid(x.data(), nullptr, a.data(), 3), wide.sigmoid(x.data(), nullptr, b.data(), 3);
    BOOST_TEST(std::memcmp(a.data(), b.data(), 3 * sizeof(T)) == 0);
}

// A recorded gelu keeps gelu'(x) from its forward pass; its unrecorded backward, gy * gelu'(x),
// gives the bits of the recorded backward (create_graph: the gelu_grad op, which evaluates
// erfc and exp again), and its value the bits of an unrecorded gelu, at the edge values and over
// a tail.
template <class T>
void check_gelu_kept_derivative() {
    std::vector<T> xs{T(0), -T(0), std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity(),
                      std::numeric_limits<T>::denorm_min(), std::numeric_limits<T>::max(),
                      -std::numeric_limits<T>::max(), T(-8.5), T(-40), T(5.5), T(1e-20)};
    for (int i = 0; i < 1001; ++i) xs.push_back(T(-12 + 24.0 * i / 1000.0));
    xg::Array<T> xa = xg::Array<T>::from_shape({xs.size()}), ga = xg::Array<T>::from_shape({xs.size()});
    for (std::size_t i = 0; i < xs.size(); ++i) xa(i) = xs[i], ga(i) = T(std::cos(3.0 * double(i)) * 7);
    const auto bits_equal = [](const xg::Array<T>& a, const xg::Array<T>& b) {
        return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
    };
    for (auto form : {xg::GeluApproximate::none, xg::GeluApproximate::tanh}) {
        xg::Variable<T> x(xa, true);
        xg::Variable<T> y = xg::gelu(x, form);
        xg::Variable<T> plain;
        {
            xg::NoGradGuard no_grad;
            plain = xg::gelu(xg::Variable<T>(xa), form);
        }
        BOOST_TEST(bits_equal(y.data(), plain.data()));
        y.backward(xg::Variable<T>(ga));
        // xg::grad, not backward(): a recorded gradient kept in x2.grad() would hold x2 (a cycle).
        const xg::Variable<T> x2(xa, true);
        const xg::Variable<T> recorded =
            xg::grad(xg::gelu(x2, form), {x2}, xg::Variable<T>(ga), {.create_graph = true})[0];
        BOOST_TEST(recorded.creator() != nullptr);  // recorded: the gelu_grad op
        BOOST_TEST(bits_equal(x.grad().data(), recorded.data()), "gelu's backward from its kept derivative ("
                                                                     << sizeof(T) << "-byte)");
        // The first backward writes its product over the kept derivative; a second one through the
        // retained graph recomputes it, and both give the same bits.
        const xg::Variable<T> x3(xa, true);
        const xg::Variable<T> y3 = xg::gelu(x3, form);
        for (int pass = 0; pass < 3; ++pass) {
            x3.zero_grad();
            y3.backward(xg::Variable<T>(ga), {.retain_graph = true});
            BOOST_TEST(bits_equal(x3.grad().data(), recorded.data()), "backward pass " << pass);
        }
    }
}

BOOST_AUTO_TEST_CASE(gelu_kept_derivative_gives_gelu_grads_bits) {
    check_gelu_kept_derivative<float>();
    check_gelu_kept_derivative<double>();
}

BOOST_AUTO_TEST_CASE(vector_math_builds_give_the_same_bits) {
    if (xg::vmath::avx2_available()) {
        check_vector_math_builds_agree(XGT_VECTOR_MATH_BUILD(avx2, float));
        check_vector_math_builds_agree(XGT_VECTOR_MATH_BUILD(avx2, double));
    } else {
        BOOST_TEST_MESSAGE("no AVX2 build or CPU: not compared");
    }
    if (xg::vmath::avx512_available()) {
        check_vector_math_builds_agree(XGT_VECTOR_MATH_BUILD(avx512, float));
        check_vector_math_builds_agree(XGT_VECTOR_MATH_BUILD(avx512, double));
    } else {
        BOOST_TEST_MESSAGE("no AVX-512 build or CPU: not compared");
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(selection)

BOOST_AUTO_TEST_CASE(comparisons_broadcast_and_follow_ieee) {
    V a(column({1.0, 2.0}));  // (2, 1)
    V b(A{1.0, 2.0, 3.0});  // (3,)
    expect_mask(xg::eq(a, b), {true, false, false, false, true, false});
    expect_mask(xg::ne(a, b), {false, true, true, true, false, true});
    expect_mask(xg::lt(a, b), {false, true, true, false, false, true});
    expect_mask(xg::le(a, b), {true, true, true, false, true, true});
    expect_mask(xg::gt(a, b), {false, false, false, true, false, false});
    expect_mask(xg::ge(a, b), {true, false, false, true, true, false});
    BOOST_TEST(xg::eq(a, b).shape() == xg::Shape({2, 3}), tt::per_element());
    V n(A{kNaN, 1.0, kInf});
    expect_mask(xg::eq(n, n), {false, true, true});
    expect_mask(xg::ne(n, n), {true, false, false});
    expect_mask(xg::lt(n, 2.0), {false, true, false});
    expect_mask(xg::ge(n, 1.0), {false, true, true});
    expect_mask(xg::gt(n, 1.0), {false, false, true});
    expect_mask(xg::le(n, 1.0), {false, true, false});
    expect_mask(xg::eq(n, 1.0), {false, true, false});
    expect_mask(xg::ne(n, 1.0), {true, false, true});
    expect_mask(xg::isfinite(V(A{1.0, kInf, -kInf, kNaN, 0.0, -1e308})), {true, false, false, false, true, true});
    expect_mask(xg::isfinite(xg::Variable<float>(xg::Array<float>{1e38f, std::numeric_limits<float>::infinity()})),
                {true, false});
    // A 0-d variable against a vector.
    expect_mask(xg::lt(V(xg::full(xg::Shape{}, 1.5)), b), {false, true, true});
}

BOOST_AUTO_TEST_CASE(where_values_and_gradients_broadcast) {
    const xg::Mask mask{true, false, true};  // (3,)
    V a(column({1.0, 2.0}), true);               // (2, 1)
    V b(A{10.0, 20.0, 30.0}, true);           // (3,)
    V y = xg::where(mask, a, b);
    BOOST_TEST(y.shape() == xg::Shape({2, 3}), tt::per_element());
    expect_values(y.data(), {1.0, 20.0, 1.0, 2.0, 20.0, 2.0});
    xg::sum(y * V(A{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}})).backward();
    expect_values(a.grad().data(), {4.0, 10.0});
    expect_values(b.grad().data(), {0.0, 7.0, 0.0});
    // A NaN or kInf in the branch not taken reaches neither the value nor the gradient.
    V x(A{kNaN, 2.0, kInf}, true);
    V z = xg::where(xg::isfinite(x), x, 0.0);
    expect_values(z.data(), {0.0, 2.0, 0.0});
    xg::sum(z).backward();
    expect_values(x.grad().data(), {0.0, 1.0, 0.0});
    expect_values(xg::where(mask, -1.0, V(A{5.0, 6.0, 7.0})).data(), {-1.0, 6.0, -1.0});
}

BOOST_AUTO_TEST_CASE(masked_fill_values_and_gradients) {
    V x(A{1.0, 2.0, 3.0}, true);
    xg::Mask mask = xg::Mask::from_shape({2, 1});
    mask(0, 0) = false;
    mask(1, 0) = true;
    V y = xg::masked_fill(x, mask, -kInf);
    BOOST_TEST(y.shape() == xg::Shape({2, 3}), tt::per_element());
    expect_values(y.data(), {1.0, 2.0, 3.0, -kInf, -kInf, -kInf});
    xg::sum(xg::masked_fill(x, mask, 0.0)).backward();
    expect_values(x.grad().data(), {1.0, 1.0, 1.0});
    // The usual attention mask: -kInf where masked, then softmax.
    V s = xg::softmax(xg::masked_fill(V(A{{1.0, 2.0, 3.0}}), xg::Mask{{false, false, true}}, -kInf));
    expect_values(s.data(), {1.0 / (1.0 + std::exp(1.0)), std::exp(1.0) / (1.0 + std::exp(1.0)), 0.0}, 1e-15);
}

BOOST_AUTO_TEST_CASE(selection_errors) {
    expect_error<xg::ShapeError>([] { xg::lt(zeros({2, 3}), zeros({4})); }, {"lt", "(2, 3)", "(4,)"});
    expect_error<xg::ShapeError>([] { xg::eq(zeros({2}), zeros({3})); }, {"eq", "(2,)", "(3,)"});
    expect_error<xg::GraphError>([] { xg::ge(undefined(), zeros({2})); }, {"ge", "undefined"});
    expect_error<xg::GraphError>([] { xg::ne(undefined(), 1.0); }, {"ne", "undefined"});
    expect_error<xg::GraphError>([] { xg::isfinite(undefined()); }, {"isfinite", "undefined"});
    expect_error<xg::ShapeError>([] { xg::where(xg::Mask{true, false, true, true}, zeros({2, 3}), zeros({3})); },
                                 {"where", "mask (4,)", "a (2, 3)", "b (3,)"});
    expect_error<xg::ShapeError>([] { xg::where(xg::Mask{true, false, true}, zeros({3}), zeros({2})); },
                                 {"where", "mask (3,)", "a (3,)", "b (2,)"});
    expect_error<xg::ShapeError>([] { xg::where(xg::Mask{true, false}, zeros({3}), 0.0); }, {"where", "mask (2,)"});
    expect_error<xg::GraphError>([] { xg::where(xg::Mask{true}, undefined(), zeros({1})); }, {"where", "undefined"});
    expect_error<xg::ShapeError>([] { xg::masked_fill(zeros({2, 3}), xg::Mask{true, false}, 0.0); },
                                 {"masked_fill", "(2,)", "(2, 3)"});
    expect_error<xg::GraphError>([] { xg::masked_fill(undefined(), xg::Mask{true}, 0.0); }, {"masked_fill", "undefined"});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(dropout)

BOOST_AUTO_TEST_CASE(functional_dropout_draws_the_masks_nn_dropout_always_drew) {
    const V x(A(xt::ones<double>({7, 9})) * 3.0, true);
    std::mt19937_64 gen(42);
    const V y = xg::dropout(x, 0.3, true, gen);
    // nn::Dropout's loop before it used the op: one Bernoulli(1 - p) per element, row-major.
    std::mt19937_64 ref(42);
    std::bernoulli_distribution keep(0.7);
    const double scale = 1.0 / 0.7;
    for (std::size_t i = 0; i < x.size(); ++i)
        BOOST_TEST(y.data().data()[i] == 3.0 * (keep(ref) ? scale : 0.0));
    // The module with the same seed gives the same values, and training/eval select the op's mode.
    nn::Dropout<double> drop(0.3, 42);
    BOOST_TEST(drop(x).data() == y.data(), tt::per_element());
    drop.eval();
    BOOST_TEST(drop(x).node() == x.node());
    xg::sum(y).backward();
    for (std::size_t i = 0; i < x.size(); ++i)
        BOOST_TEST(x.grad().data().data()[i] == (y.data().data()[i] == 0.0 ? 0.0 : scale));
}

BOOST_AUTO_TEST_CASE(identity_when_not_training_or_p_zero_and_zeros_at_p_one) {
    V x(A{1.0, -2.0, 3.0}, true);
    std::mt19937_64 gen(1);
    const std::mt19937_64 before = gen;
    BOOST_TEST(xg::dropout(x, 0.5, false, gen).node() == x.node());
    BOOST_TEST(xg::dropout(x, 0.0, true, gen).node() == x.node());
    V z = xg::dropout(x, 1.0, true, gen);
    expect_values(z.data(), {0.0, 0.0, 0.0});
    BOOST_TEST((gen == before));  // nothing drawn for any of them
    xg::sum(z).backward();
    expect_values(x.grad().data(), {0.0, 0.0, 0.0});
}

BOOST_AUTO_TEST_CASE(dropout_errors) {
    std::mt19937_64 gen(1);
    expect_error<xg::ValueError>([&] { xg::dropout(zeros({2}), 1.5, true, gen); }, {"dropout", "[0, 1]", "1.5"});
    expect_error<xg::ValueError>([&] { xg::dropout(zeros({2}), -0.1, false, gen); }, {"dropout", "-0.1"});
    expect_error<xg::ValueError>([&] { xg::dropout(zeros({2}), kNaN, true, gen); }, {"dropout", "nan"});
    expect_error<xg::GraphError>([&] { xg::dropout(undefined(), 0.5, true, gen); }, {"dropout", "undefined"});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nn_activation_modules)

BOOST_AUTO_TEST_CASE(gelu_silu_elu_identity_modules) {
    const V x(A{-1.5, -0.2, 0.0, 0.7, 2.0});
    nn::GELU<double> gelu;
    nn::GELU<double> gelu_tanh(xg::GeluApproximate::tanh);
    nn::SiLU<double> silu;
    nn::ELU<double> elu(0.5);
    nn::Identity<double> identity;
    BOOST_TEST(gelu(x).data() == xg::gelu(x).data(), tt::per_element());
    BOOST_TEST(gelu_tanh(x).data() == xg::gelu(x, xg::GeluApproximate::tanh).data(), tt::per_element());
    BOOST_TEST(silu(x).data() == xg::silu(x).data(), tt::per_element());
    BOOST_TEST(elu(x).data() == xg::elu(x, 0.5).data(), tt::per_element());
    BOOST_TEST(identity(x).node() == x.node());
    BOOST_TEST(gelu.repr() == "GELU");
    BOOST_TEST(gelu_tanh.repr() == "GELU(approximate=tanh)");
    BOOST_TEST(silu.repr() == "SiLU");
    BOOST_TEST(elu.repr() == "ELU(alpha=0.5)");
    BOOST_TEST(identity.repr() == "Identity");
    BOOST_TEST(gelu.parameters().empty());
    // In a Sequential, as any other layer.
    nn::Sequential<double> net;
    net.push_back(std::make_shared<nn::Linear<double>>(5, 3));
    net.push_back(std::make_shared<nn::GELU<double>>());
    net.push_back(std::make_shared<nn::Identity<double>>());
    BOOST_TEST(net(V(A{{1.0, 2.0, 3.0, 4.0, 5.0}})).shape() == xg::Shape({1, 3}), tt::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
