// Update rules against hand-computed numbers, convergence on f(x, y) = x^2/20 + y^2 with
// gradients from the graph, weight decay, gradient clipping, schedules and invalid settings.
#include <boost/test/unit_test.hpp>

#include <array>
#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <string>
#include <type_traits>

#include "expect_error.hpp"
#include "xgrad.hpp"

namespace optim = xg::optim;
namespace tt = boost::test_tools;
using V = xg::Variable<double>;
using A = xg::Array<double>;

namespace {

constexpr std::array<double, 3> w0 = {0.5, -1.25, 2.0};
// A different gradient at each of the three steps, so that state (velocity, h, m, v) matters.
constexpr std::array<std::array<double, 3>, 3> grads = {{{0.3, -0.8, 1.5}, {-0.2, 0.4, 0.9}, {1.1, -0.6, -0.05}}};

A to_array(const std::array<double, 3>& a) { return A{a[0], a[1], a[2]}; }

// Three steps of an optimizer made by `make` on a parameter starting at w0, gradients `grads`.
std::array<double, 3> run_three(const std::function<std::unique_ptr<optim::Optimizer<double>>(std::vector<V>)>& make) {
    V w(to_array(w0), true, "w");
    auto opt = make({w});
    for (const auto& g : grads) {
        opt->zero_grad();
        w.set_grad(V(to_array(g)));
        opt->step();
    }
    return {w.data()(0), w.data()(1), w.data()(2)};
}

// Per-element state for the hand formulas.
struct Hand {
    double v = 0, h = 0, m = 0;
    int t = 0;
};

// The same three steps with plain doubles, one element at a time: rule(w, g, state).
std::array<double, 3> hand_three(const std::function<void(double&, double, Hand&)>& rule) {
    std::array<double, 3> out{};
    for (std::size_t i = 0; i < 3; ++i) {
        double w = w0[i];
        Hand s;
        for (const auto& g : grads) rule(w, g[i], s);
        out[i] = w;
    }
    return out;
}

void check_close(const std::array<double, 3>& got, const std::array<double, 3>& want) {
    for (std::size_t i = 0; i < 3; ++i) {
        BOOST_TEST_CONTEXT("element " << i) { BOOST_TEST(got[i] == want[i], tt::tolerance(1e-12)); }
        BOOST_TEST(got[i] != w0[i]);  // the parameter moved
    }
}

template <class Opt, class Options>
std::function<std::unique_ptr<optim::Optimizer<double>>(std::vector<V>)> maker(Options o) {
    return [o](std::vector<V> p) { return std::make_unique<Opt>(std::move(p), o); };
}

// Hand formulas with the L2 weight decay folded into the gradient.
void sgd(double& w, double g, Hand&, double lr) { w -= lr * g; }
void momentum(double& w, double g, Hand& s, double lr, double a) {
    s.v = a * s.v - lr * g;
    w += s.v;
}
void nesterov(double& w, double g, Hand& s, double lr, double a) {
    s.v = a * s.v - lr * g;
    w += a * a * s.v - (1 + a) * lr * g;
}
void adagrad(double& w, double g, Hand& s, double lr) {
    s.h += g * g;
    w -= lr * g / (std::sqrt(s.h) + 1e-7);
}
void rmsprop(double& w, double g, Hand& s, double lr, double r) {
    s.h = r * s.h + (1 - r) * g * g;
    w -= lr * g / (std::sqrt(s.h) + 1e-7);
}
void adam(double& w, double g, Hand& s, double lr, double b1, double b2, double eps) {
    s.t += 1;
    s.m = b1 * s.m + (1 - b1) * g;
    s.v = b2 * s.v + (1 - b2) * g * g;
    const double mhat = s.m / (1 - std::pow(b1, s.t)), vhat = s.v / (1 - std::pow(b2, s.t));
    w -= lr * mhat / (std::sqrt(vhat) + eps);
}

// Runs `steps` updates on f(x, y) = x^2/20 + y^2 from (-7, 2), gradients by backward().
std::array<double, 2> minimise(const std::function<std::unique_ptr<optim::Optimizer<double>>(std::vector<V>)>& make,
                               int steps) {
    V x = xg::scalar(-7.0, true, "x"), y = xg::scalar(2.0, true, "y");
    auto opt = make({x, y});
    for (int i = 0; i < steps; ++i) {
        opt->zero_grad();
        V f = xg::pow(x, 2.0) / 20.0 + y * y;
        f.backward();
        opt->step();
    }
    return {x.item(), y.item()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optim_rules)

BOOST_AUTO_TEST_CASE(sgd_three_steps) {
    check_close(run_three(maker<optim::SGD<double>>(optim::SGDOptions{.lr = 0.1})),
                hand_three([](double& w, double g, Hand& s) { sgd(w, g, s, 0.1); }));
    // The default lr is 0.01.
    check_close(run_three(maker<optim::SGD<double>>(optim::SGDOptions{})),
                hand_three([](double& w, double g, Hand& s) { sgd(w, g, s, 0.01); }));
}

BOOST_AUTO_TEST_CASE(momentum_three_steps) {
    check_close(run_three(maker<optim::Momentum<double>>(optim::MomentumOptions{.lr = 0.1, .momentum = 0.8})),
                hand_three([](double& w, double g, Hand& s) { momentum(w, g, s, 0.1, 0.8); }));
    check_close(run_three(maker<optim::Momentum<double>>(optim::MomentumOptions{})),
                hand_three([](double& w, double g, Hand& s) { momentum(w, g, s, 0.01, 0.9); }));
}

BOOST_AUTO_TEST_CASE(nesterov_three_steps) {
    check_close(run_three(maker<optim::Nesterov<double>>(optim::NesterovOptions{.lr = 0.1, .momentum = 0.8})),
                hand_three([](double& w, double g, Hand& s) { nesterov(w, g, s, 0.1, 0.8); }));
    check_close(run_three(maker<optim::Nesterov<double>>(optim::NesterovOptions{})),
                hand_three([](double& w, double g, Hand& s) { nesterov(w, g, s, 0.01, 0.9); }));
}

BOOST_AUTO_TEST_CASE(adagrad_three_steps) {
    check_close(run_three(maker<optim::AdaGrad<double>>(optim::AdaGradOptions{.lr = 0.5})),
                hand_three([](double& w, double g, Hand& s) { adagrad(w, g, s, 0.5); }));
    check_close(run_three(maker<optim::AdaGrad<double>>(optim::AdaGradOptions{})),
                hand_three([](double& w, double g, Hand& s) { adagrad(w, g, s, 0.01); }));
}

BOOST_AUTO_TEST_CASE(rmsprop_three_steps) {
    check_close(run_three(maker<optim::RMSProp<double>>(optim::RMSPropOptions{.lr = 0.05, .alpha = 0.9})),
                hand_three([](double& w, double g, Hand& s) { rmsprop(w, g, s, 0.05, 0.9); }));
    check_close(run_three(maker<optim::RMSProp<double>>(optim::RMSPropOptions{})),
                hand_three([](double& w, double g, Hand& s) { rmsprop(w, g, s, 0.01, 0.99); }));
}

BOOST_AUTO_TEST_CASE(adam_three_steps) {
    check_close(run_three(maker<optim::Adam<double>>(
                    optim::AdamOptions{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6})),
                hand_three([](double& w, double g, Hand& s) { adam(w, g, s, 0.05, 0.8, 0.95, 1e-6); }));
    check_close(run_three(maker<optim::Adam<double>>(optim::AdamOptions{})),
                hand_three([](double& w, double g, Hand& s) { adam(w, g, s, 1e-3, 0.9, 0.999, 1e-8); }));
}

// The adaptive rules run in SIMD batches (AVX-512 or AVX2 where the CPU has them, then the
// baseline's 2 or 4 lanes; by CPU and dtype) and a scalar loop for the rest. On 39 elements
// cycling through w0 and the three gradients, the widest batches stop before the last three, which
// narrower batches or the scalar loop take: elements with the same residue mod 3 must end bit for
// bit equal to those, and each must match the hand formula.
template <template <class> class Opt, class T, class Options, class Rule>
void simd_paths_match_the_scalar_rule(Options options, Rule hand_rule) {
    constexpr std::size_t n = 39;
    xg::Variable<T> w(xg::Array<T>::from_shape({n}), true);
    for (std::size_t i = 0; i < n; ++i) w.mutable_data()(i) = static_cast<T>(w0[i % 3]);
    Opt<T> opt({w}, options);
    for (const auto& g : grads) {
        xg::Array<T> ga = xg::Array<T>::from_shape({n});
        for (std::size_t i = 0; i < n; ++i) ga(i) = static_cast<T>(g[i % 3]);
        w.set_grad(xg::Variable<T>(ga));
        opt.step();
    }
    const auto want = hand_three(hand_rule);
    const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    for (std::size_t i = 0; i < n; ++i) {
        BOOST_TEST_CONTEXT("element " << i) {
            BOOST_TEST(w.data()(i) == w.data()(n - 3 + i % 3));  // n - 3 + r has residue r
            BOOST_TEST(static_cast<double>(w.data()(i)) == want[i % 3], tt::tolerance(tol));
        }
    }
}

template <class T>
void adam_simd_paths() {
    simd_paths_match_the_scalar_rule<optim::Adam, T>(
        optim::AdamOptions{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6},
        [](double& x, double g, Hand& s) { adam(x, g, s, 0.05, 0.8, 0.95, 1e-6); });
}
template <class T>
void adagrad_simd_paths() {
    simd_paths_match_the_scalar_rule<optim::AdaGrad, T>(optim::AdaGradOptions{.lr = 0.5},
                                                        [](double& x, double g, Hand& s) { adagrad(x, g, s, 0.5); });
}
template <class T>
void rmsprop_simd_paths() {
    simd_paths_match_the_scalar_rule<optim::RMSProp, T>(
        optim::RMSPropOptions{.lr = 0.05, .alpha = 0.9},
        [](double& x, double g, Hand& s) { rmsprop(x, g, s, 0.05, 0.9); });
}

BOOST_AUTO_TEST_CASE(adam_simd_paths_match_the_scalar_rule_float) { adam_simd_paths<float>(); }
BOOST_AUTO_TEST_CASE(adam_simd_paths_match_the_scalar_rule_double) { adam_simd_paths<double>(); }
BOOST_AUTO_TEST_CASE(adagrad_simd_paths_match_the_scalar_rule_float) { adagrad_simd_paths<float>(); }
BOOST_AUTO_TEST_CASE(adagrad_simd_paths_match_the_scalar_rule_double) { adagrad_simd_paths<double>(); }
BOOST_AUTO_TEST_CASE(rmsprop_simd_paths_match_the_scalar_rule_float) { rmsprop_simd_paths<float>(); }
BOOST_AUTO_TEST_CASE(rmsprop_simd_paths_match_the_scalar_rule_double) { rmsprop_simd_paths<double>(); }

BOOST_AUTO_TEST_CASE(adamw_three_steps_with_decoupled_decay) {
    check_close(run_three(maker<optim::AdamW<double>>(optim::AdamWOptions{.lr = 0.05, .weight_decay = 0.1})),
                hand_three([](double& w, double g, Hand& s) {
                    w -= 0.05 * 0.1 * w;  // before the Adam step, and not seen by m or v
                    adam(w, g, s, 0.05, 0.9, 0.999, 1e-8);
                }));
    // The default decay is 0.01: AdamW differs from Adam by default.
    check_close(run_three(maker<optim::AdamW<double>>(optim::AdamWOptions{})),
                hand_three([](double& w, double g, Hand& s) {
                    w -= 1e-3 * 0.01 * w;
                    adam(w, g, s, 1e-3, 0.9, 0.999, 1e-8);
                }));
    const auto plain = run_three(maker<optim::Adam<double>>(optim::AdamOptions{}));
    const auto decayed = run_three(maker<optim::AdamW<double>>(optim::AdamWOptions{}));
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(std::abs(decayed[i] - plain[i]) > 1e-7);
}

BOOST_AUTO_TEST_CASE(l2_weight_decay_adds_to_the_gradient) {
    const double wd = 0.3;
    auto l2 = [wd](auto rule) {
        return [wd, rule](double& w, double g, Hand& s) { rule(w, g + wd * w, s); };
    };
    check_close(run_three(maker<optim::SGD<double>>(optim::SGDOptions{.lr = 0.1, .weight_decay = wd})),
                hand_three(l2([](double& w, double g, Hand& s) { sgd(w, g, s, 0.1); })));
    check_close(run_three(maker<optim::Momentum<double>>(optim::MomentumOptions{.lr = 0.1, .weight_decay = wd})),
                hand_three(l2([](double& w, double g, Hand& s) { momentum(w, g, s, 0.1, 0.9); })));
    check_close(run_three(maker<optim::Nesterov<double>>(optim::NesterovOptions{.lr = 0.1, .weight_decay = wd})),
                hand_three(l2([](double& w, double g, Hand& s) { nesterov(w, g, s, 0.1, 0.9); })));
    check_close(run_three(maker<optim::AdaGrad<double>>(optim::AdaGradOptions{.lr = 0.1, .weight_decay = wd})),
                hand_three(l2([](double& w, double g, Hand& s) { adagrad(w, g, s, 0.1); })));
    check_close(run_three(maker<optim::RMSProp<double>>(optim::RMSPropOptions{.lr = 0.1, .weight_decay = wd})),
                hand_three(l2([](double& w, double g, Hand& s) { rmsprop(w, g, s, 0.1, 0.99); })));
    check_close(run_three(maker<optim::Adam<double>>(optim::AdamOptions{.lr = 0.1, .weight_decay = wd})),
                hand_three(l2([](double& w, double g, Hand& s) { adam(w, g, s, 0.1, 0.9, 0.999, 1e-8); })));
}

BOOST_AUTO_TEST_CASE(parameters_without_gradient_are_skipped) {
    V a(A{1.0, 2.0}, true), b(A{3.0, 4.0}, true);
    optim::Adam<double> opt({a, b}, {.lr = 0.1, .eps = 1e-300});  // eps vanishes next to |g|
    a.set_grad(V(A{0.5, -0.5}));
    opt.step();
    BOOST_TEST(b.data()(0) == 3.0);
    BOOST_TEST(b.data()(1) == 4.0);
    BOOST_TEST(a.data()(0) == 0.9, tt::tolerance(1e-12));  // Adam's first step is lr * sign(g)
    BOOST_TEST(a.data()(1) == 2.1, tt::tolerance(1e-12));
    // b's first update is its own first Adam step (per-parameter t): again lr * sign(g).
    opt.zero_grad();
    BOOST_TEST(!a.has_grad());
    b.set_grad(V(A{2.0, -3.0}));
    opt.step();
    BOOST_TEST(a.data()(0) == 0.9, tt::tolerance(1e-12));
    BOOST_TEST(b.data()(0) == 2.9, tt::tolerance(1e-12));
    BOOST_TEST(b.data()(1) == 4.1, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(float_parameters) {
    using Vf = xg::Variable<float>;
    Vf w(xg::Array<float>{1.0f, -2.0f}, true);
    optim::Adam<float> opt({w}, {.lr = 1e-3});
    optim::StepLR<float> schedule(opt, 1, 0.5);
    w.set_grad(Vf(xg::Array<float>{4.0f, -1.0f}));
    opt.step();
    schedule.step();
    BOOST_TEST(w.data()(0) == 0.999f, tt::tolerance(1e-6f));
    BOOST_TEST(w.data()(1) == -1.999f, tt::tolerance(1e-6f));
    BOOST_TEST(opt.lr() == 5e-4);
    BOOST_TEST(optim::clip_grad_norm<float>({w}, 1.0) == std::sqrt(17.0), tt::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(rules_converge_on_an_elongated_bowl) {
    struct Case {
        std::string name;
        std::function<std::unique_ptr<optim::Optimizer<double>>(std::vector<V>)> make;
        int steps;
    };
    const Case cases[] = {
        {"SGD", maker<optim::SGD<double>>(optim::SGDOptions{.lr = 0.95}), 200},
        {"Momentum", maker<optim::Momentum<double>>(optim::MomentumOptions{.lr = 0.1}), 500},
        {"Nesterov", maker<optim::Nesterov<double>>(optim::NesterovOptions{.lr = 0.1}), 500},
        {"AdaGrad", maker<optim::AdaGrad<double>>(optim::AdaGradOptions{.lr = 1.5}), 200},
        // Not much further: once h underflows, eps dominates and RMSProp starts to oscillate.
        {"RMSProp", maker<optim::RMSProp<double>>(optim::RMSPropOptions{.lr = 0.1}), 200},
        {"Adam", maker<optim::Adam<double>>(optim::AdamOptions{.lr = 0.3}), 500},
        {"AdamW", maker<optim::AdamW<double>>(optim::AdamWOptions{.lr = 0.3}), 500},
    };
    for (const Case& c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            // A few steps do not get there: the bound below means something.
            const auto early = minimise(c.make, 5);
            BOOST_TEST(std::abs(early[0]) > 1e-3);
            const auto [x, y] = minimise(c.make, c.steps);
            BOOST_TEST(std::abs(x) < 1e-6);
            BOOST_TEST(std::abs(y) < 1e-6);
        }
    }
}

// A step flushes state that would fall below the smallest normal number to zero (arithmetic on
// subnormals made Adam's step 4x slower), and only during the step: the thread's mode is restored.
BOOST_AUTO_TEST_CASE(step_flushes_subnormal_results_only_during_the_step) {
    xg::Variable<float> w(xg::Array<float>{1.0f, 2.0f}, true);
    w.set_grad(xg::Variable<float>(xg::Array<float>{1e-38f, 1.0f}));  // normal; 0.1 of it is not
    optim::Adam<float> opt({w});
    opt.step();
    const xg::StateDict<float> state = opt.state_dict();
    const auto at = std::find_if(state.begin(), state.end(), [](const auto& e) { return e.first == "0.exp_avg"; });
    BOOST_REQUIRE(at != state.end());
#if defined(__x86_64__) || defined(__SSE2__)  // where optim/optimizer.cpp sets the flush-to-zero bit
    BOOST_TEST(at->second(0) == 0.0f);  // (1 - 0.9) * 1e-38 = 1e-39, subnormal: flushed
#endif
    BOOST_TEST(at->second(1) == 0.1f, tt::tolerance(1e-6f));
    volatile float tiny = 1e-38f;
    volatile float tenth = 0.1f;
    const float after = tiny * tenth;
    BOOST_TEST(after != 0.0f);  // outside the step, subnormal results are kept
    BOOST_TEST(std::fpclassify(after) == FP_SUBNORMAL);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(optim_tools)

BOOST_AUTO_TEST_CASE(clip_grad_norm_scales_to_max_norm) {
    V a(A{3.0, 0.0}, true), b(A{{1.0, -2.0}}, true), c(A{5.0}, true);  // c has no gradient
    a.set_grad(V(A{3.0, 4.0}));
    b.set_grad(V(A{{12.0, 0.0}}));
    const double norm = optim::clip_grad_norm<double>({a, b, c}, 6.5);
    BOOST_TEST(norm == 13.0, tt::tolerance(1e-15));  // sqrt(9 + 16 + 144)
    BOOST_TEST(a.grad().data()(0) == 1.5, tt::tolerance(1e-15));
    BOOST_TEST(a.grad().data()(1) == 2.0, tt::tolerance(1e-15));
    BOOST_TEST(b.grad().data()(0, 0) == 6.0, tt::tolerance(1e-15));
    BOOST_TEST(b.grad().data()(0, 1) == 0.0);
    BOOST_TEST(!c.has_grad());
    BOOST_TEST(optim::clip_grad_norm<double>({a, b, c}, 100.0) == 6.5, tt::tolerance(1e-15));
    // Under the bound nothing changes.
    BOOST_TEST(a.grad().data()(0) == 1.5, tt::tolerance(1e-15));
    BOOST_TEST(b.grad().data()(0, 0) == 6.0, tt::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(schedules_follow_closed_forms) {
    V w(A{1.0}, true);
    optim::SGD<double> o1({w}, {.lr = 0.2}), o2({w}, {.lr = 0.2}), o3({w}, {.lr = 0.2});
    optim::StepLR<double> step(o1, 3, 0.5);
    optim::ExponentialLR<double> expo(o2, 0.9);
    optim::CosineAnnealingLR<double> cosine(o3, 10, 0.01);
    for (int epoch = 1; epoch <= 12; ++epoch) {
        step.step();
        expo.step();
        cosine.step();
        BOOST_TEST_CONTEXT("epoch " << epoch) {
            BOOST_TEST(step.epoch() == epoch);
            BOOST_TEST(o1.lr() == 0.2 * std::pow(0.5, epoch / 3), tt::tolerance(1e-14));
            BOOST_TEST(o2.lr() == 0.2 * std::pow(0.9, epoch), tt::tolerance(1e-14));
            BOOST_TEST(o3.lr() == 0.01 + 0.19 * (1 + std::cos(std::numbers::pi * epoch / 10)) / 2,
                       tt::tolerance(1e-14));
        }
    }
    BOOST_TEST(step.lr_at(2) == 0.2);
    BOOST_TEST(step.lr_at(3) == 0.1);
    BOOST_TEST(cosine.lr_at(10) == 0.01, tt::tolerance(1e-14));
    BOOST_TEST(cosine.lr_at(5) == 0.105, tt::tolerance(1e-14));
    // Closed form from the initial lr: changing the optimizer's lr in between does not compound.
    o2.set_lr(123.0);
    expo.step();
    BOOST_TEST(o2.lr() == 0.2 * std::pow(0.9, 13), tt::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(invalid_settings_throw) {
    V w(A{1.0}, true);
    const std::vector<V> ps{w};
    xgt::expect_error<xg::ValueError>([&] { optim::SGD<double>(ps, {.lr = -0.1}); }, {"SGD: lr must be"});
    xgt::expect_error<xg::ValueError>([&] { optim::SGD<double>(ps, {.lr = NAN}); }, {"lr"});
    xgt::expect_error<xg::ValueError>([&] { optim::SGD<double>(ps, {.weight_decay = -1}); }, {"weight_decay"});
    xgt::expect_error<xg::ValueError>([&] { optim::Momentum<double>(ps, {.momentum = 1.0}); },
                                      {"Momentum: momentum must be in [0, 1), got 1"});
    xgt::expect_error<xg::ValueError>([&] { optim::Momentum<double>(ps, {.momentum = -0.1}); }, {"momentum"});
    xgt::expect_error<xg::ValueError>([&] { optim::Nesterov<double>(ps, {.momentum = 1.5}); }, {"Nesterov"});
    xgt::expect_error<xg::ValueError>([&] { optim::AdaGrad<double>(ps, {.eps = 0}); }, {"eps"});
    xgt::expect_error<xg::ValueError>([&] { optim::RMSProp<double>(ps, {.alpha = 1.0}); }, {"alpha"});
    xgt::expect_error<xg::ValueError>([&] { optim::Adam<double>(ps, {.beta1 = 1.0}); }, {"beta1"});
    xgt::expect_error<xg::ValueError>([&] { optim::Adam<double>(ps, {.beta2 = -0.5}); }, {"beta2"});
    xgt::expect_error<xg::ValueError>([&] { optim::AdamW<double>(ps, {.weight_decay = -0.01}); },
                                      {"AdamW: weight_decay"});
    xgt::expect_error<xg::ValueError>([&] { optim::SGD<double>({V()}); }, {"parameter 0 is undefined"});

    optim::SGD<double> opt(ps, {.lr = 0.1});
    xgt::expect_error<xg::ValueError>([&] { opt.set_lr(-1); }, {"lr"});
    BOOST_TEST(opt.lr() == 0.1);
    xgt::expect_error<xg::ValueError>([&] { optim::StepLR<double>(opt, 0, 0.5); }, {"step_size"});
    xgt::expect_error<xg::ValueError>([&] { optim::StepLR<double>(opt, 2, 0.0); }, {"gamma"});
    xgt::expect_error<xg::ValueError>([&] { optim::ExponentialLR<double>(opt, -0.9); }, {"gamma"});
    xgt::expect_error<xg::ValueError>([&] { optim::CosineAnnealingLR<double>(opt, 0); }, {"T_max"});
    xgt::expect_error<xg::ValueError>([&] { optim::clip_grad_norm<double>(ps, -1.0); }, {"max_norm"});
    w.set_grad(V(A{INFINITY}));
    xgt::expect_error<xg::ValueError>([&] { optim::clip_grad_norm<double>(ps, 1.0); }, {"not finite"});
}

BOOST_AUTO_TEST_CASE(state_of_a_reshaped_parameter_throws) {
    V w(A{1.0, 2.0}, true);
    optim::Momentum<double> opt({w});
    w.set_grad(V(A{1.0, 1.0}));
    opt.step();
    w.set_data(A{1.0, 2.0, 3.0});
    w.set_grad(V(A{1.0, 1.0, 1.0}));
    xgt::expect_error<xg::ShapeError>([&] { opt.step(); }, {});
}

BOOST_AUTO_TEST_SUITE_END()
