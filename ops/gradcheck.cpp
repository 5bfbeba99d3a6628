#include "ops/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include <fmt/format.h>

#include "ops/instantiate.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

template <class T>
Array<T> random_weights(const Shape& shape, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    Array<T> w = Array<T>::from_shape(shape);
    for (auto& v : w) v = static_cast<T>(u(gen));
    return w;
}

template <class T>
double weighted_sum(const Array<T>& y, const Array<T>& w, std::string_view who) {
    if (y.shape() != w.shape())
        throw ShapeError(fmt::format("{}: the function returned shape {}, then {}", who, shape_str(w.shape()),
                                     shape_str(y.shape())));
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += static_cast<double>(y.data()[i]) * w.data()[i];
    return s;
}

template <class T>
std::vector<Variable<T>> fresh_leaves(const std::vector<Variable<T>>& inputs) {
    std::vector<Variable<T>> leaves;
    for (const auto& x : inputs) leaves.emplace_back(x.data(), true, x.name());
    return leaves;
}

void check_tolerances(double eps, double atol, double rtol) {
    auto require = [](bool ok, std::string_view what, double v, std::string_view expected) {
        if (!ok) throw ValueError(fmt::format("gradcheck: {} must be {}, got {}", what, expected, v));
    };
    require(std::isfinite(eps) && eps > 0, "eps", eps, "finite and > 0");
    require(std::isfinite(atol) && atol >= 0, "atol", atol, "finite and >= 0");
    require(std::isfinite(rtol) && rtol >= 0, "rtol", rtol, "finite and >= 0");
}

// How one element compares: the first non-finite value, or else the largest excess over the
// tolerance, is the input's worst element.
struct ElementCheck {
    double error, excess;
    bool finite, ok;
};

ElementCheck compare(double analytic, double numeric, double atol, double rtol) {
    ElementCheck c;
    c.error = std::abs(analytic - numeric);
    c.finite = std::isfinite(analytic) && std::isfinite(numeric);
    c.excess = c.finite ? c.error - (atol + rtol * std::abs(numeric)) : std::numeric_limits<double>::infinity();
    c.ok = c.finite && c.excess <= 0;
    return c;
}

}  // namespace

std::string GradcheckReport::str() const {
    std::string out;
    for (const auto& r : inputs) {
        out += fmt::format("input {}{}: max abs error {:.3g}, max rel error {:.3g}", r.index,
                           r.name.empty() ? "" : " (" + r.name + ")", r.max_abs_error, r.max_rel_error);
        if (!r.ok)
            out += fmt::format(" FAILED at element {}: analytic {:.10g}, numeric {:.10g}{}", r.worst_element,
                               r.analytic, r.numeric, r.problem.empty() ? "" : " (" + r.problem + ")");
        out += "\n";
    }
    return out + (ok ? "gradcheck passed" : "gradcheck FAILED");
}

template <class T>
double central_difference(const Variable<T>& x, std::size_t j, const std::function<double()>& f, double eps) {
    if (!(std::isfinite(eps) && eps > 0))
        throw ValueError(fmt::format("central_difference: eps must be finite and > 0, got {}", eps));
    if (j >= x.size())
        throw IndexError(fmt::format("central_difference: element {} of a variable of {} elements", j, x.size()));
    T* element = x.mutable_data().data() + j;
    const T orig = *element;
    const T hi = static_cast<T>(orig + eps), lo = static_cast<T>(orig - eps);
    if (!(hi > lo))
        throw ValueError(fmt::format("central_difference: eps {} does not move element {} (value {}) in {}: "
                                     "use a larger eps",
                                     eps, j, orig, sizeof(T) == 4 ? "float" : "double"));
    struct Restore {
        T* at;
        T value;
        ~Restore() { *at = value; }
    } restore{element, orig};
    *element = hi;
    const double fp = f();
    *element = lo;
    const double fm = f();
    return (fp - fm) / (static_cast<double>(hi) - static_cast<double>(lo));
}

template <class T>
std::vector<Array<T>> numerical_gradient(const VariableFn<T>& f, const std::vector<Variable<T>>& inputs,
                                         double eps) {
    std::vector<Variable<T>> xs;
    for (const auto& x : inputs) xs.emplace_back(x.data(), false, x.name());
    std::vector<Array<T>> grads;
    for (auto& x : xs) {
        Array<T> g = Array<T>::from_shape(x.shape());
        for (std::size_t j = 0; j < x.size(); ++j)
            g.data()[j] = static_cast<T>(central_difference<T>(x, j, [&] { return static_cast<double>(f(xs).item()); }, eps));
        grads.push_back(std::move(g));
    }
    return grads;
}

template <class T>
GradcheckReport gradcheck_params(const std::function<Variable<T>()>& loss, const std::vector<Variable<T>>& params,
                                 double eps, double atol, double rtol) {
    check_tolerances(eps, atol, rtol);
    for (std::size_t i = 0; i < params.size(); ++i)
        if (!params[i].defined() || !params[i].requires_grad())
            throw GraphError(fmt::format("gradcheck: parameter {} is undefined or does not require grad", i));

    // Analytic: one backward of sum(w * loss), with each parameter's own gradient set aside.
    std::vector<Variable<T>> saved;
    for (const auto& p : params) {
        saved.push_back(p.grad());
        p.zero_grad();
    }
    const Variable<T> y = loss();
    const Array<T> w = random_weights<T>(y.shape(), 0x5eed);
    if (y.requires_grad()) y.backward(Variable<T>(w));
    std::vector<Array<T>> analytic;
    for (std::size_t i = 0; i < params.size(); ++i) {
        analytic.push_back(params[i].has_grad() ? params[i].grad().data() : full(params[i].shape(), T(0)));
        params[i].set_grad(saved[i]);
    }

    const auto weighted_loss = [&] { return weighted_sum(loss().data(), w, "gradcheck"); };
    GradcheckReport report;
    for (std::size_t i = 0; i < params.size(); ++i) {
        GradcheckInput r;
        r.index = i;
        r.name = params[i].name();
        double worst = -std::numeric_limits<double>::infinity();
        for (std::size_t j = 0; j < params[i].size(); ++j) {
            const double num = central_difference(params[i], j, weighted_loss, eps);
            const double ana = analytic[i].data()[j];
            const ElementCheck c = compare(ana, num, atol, rtol);
            // A non-finite value makes both maxima NaN for good (std::max would drop it).
            if (!c.finite) {
                r.max_abs_error = r.max_rel_error = std::numeric_limits<double>::quiet_NaN();
            } else if (!std::isnan(r.max_abs_error) && c.error > 0) {
                r.max_abs_error = std::max(r.max_abs_error, c.error);
                r.max_rel_error = std::max(r.max_rel_error, c.error / std::max(std::abs(ana), std::abs(num)));
            }
            if (c.excess > worst) {
                worst = c.excess;
                r.worst_element = j;
                r.analytic = ana;
                r.numeric = num;
                if (!c.finite)
                    r.problem = fmt::format("the {} value is not finite",
                                            std::isfinite(ana) ? "numeric" : "analytic");
            }
            r.ok = r.ok && c.ok;
        }
        report.ok = report.ok && r.ok;
        report.inputs.push_back(std::move(r));
    }
    return report;
}

template <class T>
GradcheckReport gradcheck(const VariableFn<T>& f, const std::vector<Variable<T>>& inputs, double eps, double atol,
                          double rtol) {
    const std::vector<Variable<T>> leaves = fresh_leaves(inputs);
    return gradcheck_params<T>([&] { return f(leaves); }, leaves, eps, atol, rtol);
}

template <class T>
GradcheckReport gradgradcheck(const VariableFn<T>& f, const std::vector<Variable<T>>& inputs, double eps,
                              double atol, double rtol) {
    const std::vector<Variable<T>> leaves = fresh_leaves(inputs);
    const Shape out_shape = f(leaves).shape();
    const Variable<T> w(random_weights<T>(out_shape, 0xfeed));
    std::vector<Variable<T>> v;
    for (std::size_t i = 0; i < leaves.size(); ++i) v.emplace_back(random_weights<T>(leaves[i].shape(), 0xbeef + i));
    // sum_i sum(v_i * d/dx_i sum(w * f(x))), differentiable because the inner pass is recorded.
    auto first_derivative = [&]() {
        const Variable<T> y = f(leaves);
        Variable<T> total = scalar<T>(0);
        if (!y.requires_grad()) return total;
        const std::vector<Variable<T>> g = grad(y, leaves, w, {.create_graph = true, .allow_unused = true});
        for (std::size_t i = 0; i < g.size(); ++i)
            if (g[i].defined()) total = total + sum(v[i] * g[i]);
        return total;
    };
    return gradcheck_params<T>(first_derivative, leaves, eps, atol, rtol);
}

XG_INSTANTIATE_OP(central_difference)
XG_INSTANTIATE_OP(numerical_gradient)
XG_INSTANTIATE_OP(gradcheck)
XG_INSTANTIATE_OP(gradcheck_params)
XG_INSTANTIATE_OP(gradgradcheck)

}  // namespace xg
