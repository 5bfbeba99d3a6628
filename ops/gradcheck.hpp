#pragma once
// Numerical gradient checking: central differences against back-propagation.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "graph/variable.hpp"

namespace xg {

template <class T>
using VariableFn = std::function<Variable<T>(const std::vector<Variable<T>>&)>;

// The central difference of f at element j of x: x_j is set to x_j + eps and x_j - eps in place
// (rounded to T), f evaluated at each, x_j restored, and the difference divided by the distance
// actually stepped. Throws ValueError unless eps is finite and > 0, or if x_j +- eps rounds back
// to x_j in T (the quotient would be 0/0). The one implementation every numerical gradient uses.
template <class T>
double central_difference(const Variable<T>& x, std::size_t j, const std::function<double()>& f, double eps);

// Central differences (f(x+h) - f(x-h)) / 2h of a scalar-valued f, one array per input.
template <class T>
std::vector<Array<T>> numerical_gradient(const VariableFn<T>& f, const std::vector<Variable<T>>& inputs,
                                         double eps = 1e-6);

struct GradcheckInput {
    std::size_t index = 0;           // which input (or parameter)
    std::string name;                // its name, if it has one
    double max_abs_error = 0;        // max |analytic - numeric| (NaN if any value was not finite)
    double max_rel_error = 0;        // max |analytic - numeric| / max(|analytic|, |numeric|)
    std::size_t worst_element = 0;   // flat index of the worst element (the first non-finite one)
    double analytic = 0, numeric = 0;  // the values there
    bool ok = true;
    std::string problem;             // why it failed when a value was not finite
};

struct GradcheckReport {
    std::vector<GradcheckInput> inputs;
    bool ok = true;
    std::string str() const;  // one line per input; where it failed, the element and both values
};

// Checks back-propagation through f against central differences. f may return any shape: it is
// reduced to sum(w * f(x)) with fixed random weights w, which tests a random vector-Jacobian
// product. An element passes if |analytic - numeric| <= atol + rtol * |numeric|, both values
// finite: a NaN or Inf on either side fails the check (it never passes vacuously). eps must be
// finite and > 0, atol and rtol finite and >= 0 (ValueError otherwise).
template <class T>
GradcheckReport gradcheck(const VariableFn<T>& f, const std::vector<Variable<T>>& inputs, double eps = 1e-6,
                          double atol = 1e-5, double rtol = 1e-3);

// The same for a model: `loss` is computed from `params` (leaves it reads, e.g. a module's
// parameters), which are perturbed in place and restored. `loss` must be deterministic.
template <class T>
GradcheckReport gradcheck_params(const std::function<Variable<T>()>& loss, const std::vector<Variable<T>>& params,
                                 double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3);

// Second derivatives: checks the gradient of x -> sum(v * d/dx sum(w * f(x))), where the inner
// derivative is built with create_graph, against central differences of that inner derivative.
template <class T>
GradcheckReport gradgradcheck(const VariableFn<T>& f, const std::vector<Variable<T>>& inputs, double eps = 1e-6,
                              double atol = 1e-5, double rtol = 1e-3);

}  // namespace xg
