#include "ops/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>

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

}  // namespace

std::string GradcheckReport::str() const {
    std::string out;
    for (const auto& r : inputs) {
        out += fmt::format("input {}{}: max abs error {:.3g}, max rel error {:.3g}", r.index,
                           r.name.empty() ? "" : " (" + r.name + ")", r.max_abs_error, r.max_rel_error);
        if (!r.ok)
            out += fmt::format(" FAILED at element {}: analytic {:.10g}, numeric {:.10g}", r.worst_element,
                               r.analytic, r.numeric);
        out += "\n";
    }
    return out + (ok ? "gradcheck passed" : "gradcheck FAILED");
}

template <class T>
std::vector<Array<T>> numerical_gradient(const VariableFn<T>& f, const std::vector<Variable<T>>& inputs,
                                         double eps) {
    std::vector<Variable<T>> xs;
    for (const auto& x : inputs) xs.emplace_back(x.data(), false, x.name());
    std::vector<Array<T>> grads;
    for (auto& x : xs) {
        Array<T> g = xt::zeros<T>(x.shape());
        auto& data = x.data();
        for (std::size_t j = 0; j < data.size(); ++j) {
            const T orig = data.data()[j];
            const T hi = static_cast<T>(orig + eps), lo = static_cast<T>(orig - eps);
            data.data()[j] = hi;
            const double fp = f(xs).item();
            data.data()[j] = lo;
            const double fm = f(xs).item();
            data.data()[j] = orig;
            g.data()[j] = static_cast<T>((fp - fm) / (static_cast<double>(hi) - lo));
        }
        grads.push_back(std::move(g));
    }
    return grads;
}

template <class T>
GradcheckReport gradcheck_params(const std::function<Variable<T>()>& loss, const std::vector<Variable<T>>& params,
                                 double eps, double atol, double rtol) {
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
        analytic.push_back(params[i].has_grad() ? params[i].grad().data() : Array<T>(xt::zeros<T>(params[i].shape())));
        params[i].set_grad(saved[i]);
    }

    GradcheckReport report;
    for (std::size_t i = 0; i < params.size(); ++i) {
        GradcheckInput r;
        r.index = i;
        r.name = params[i].name();
        double worst = -1;
        auto& data = params[i].node()->data;
        for (std::size_t j = 0; j < data.size(); ++j) {
            const T orig = data.data()[j];
            const T hi = static_cast<T>(orig + eps), lo = static_cast<T>(orig - eps);
            data.data()[j] = hi;
            const double fp = weighted_sum(loss().data(), w, "gradcheck");
            data.data()[j] = lo;
            const double fm = weighted_sum(loss().data(), w, "gradcheck");
            data.data()[j] = orig;
            const double num = (fp - fm) / (static_cast<double>(hi) - lo);
            const double ana = analytic[i].data()[j];
            const double err = std::abs(ana - num);
            const double rel = err / std::max({std::abs(ana), std::abs(num), 1e-300});
            r.max_abs_error = std::max(r.max_abs_error, err);
            if (err > 0) r.max_rel_error = std::max(r.max_rel_error, rel);
            const double excess = err - (atol + rtol * std::abs(num));
            if (excess > worst) {
                worst = excess;
                r.worst_element = j;
                r.analytic = ana;
                r.numeric = num;
            }
            if (excess > 0 || !std::isfinite(ana)) r.ok = false;
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
        const std::vector<Variable<T>> g = grad(y, leaves, w, /*create_graph=*/true);
        for (std::size_t i = 0; i < g.size(); ++i) total = total + sum(v[i] * g[i]);
        return total;
    };
    return gradcheck_params<T>(first_derivative, leaves, eps, atol, rtol);
}

#define XG_INSTANTIATE(T)                                                                                  \
    template std::vector<Array<T>> numerical_gradient(const VariableFn<T>&, const std::vector<Variable<T>>&, \
                                                      double);                                            \
    template GradcheckReport gradcheck(const VariableFn<T>&, const std::vector<Variable<T>>&, double, double, \
                                       double);                                                           \
    template GradcheckReport gradcheck_params(const std::function<Variable<T>()>&,                         \
                                              const std::vector<Variable<T>>&, double, double, double);    \
    template GradcheckReport gradgradcheck(const VariableFn<T>&, const std::vector<Variable<T>>&, double,  \
                                           double, double);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
