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

// Central differences (f(x+h) - f(x-h)) / 2h of a scalar-valued f, one array per input.
template <class T>
std::vector<Array<T>> numerical_gradient(const VariableFn<T>& f, const std::vector<Variable<T>>& inputs,
                                         double eps = 1e-6);

struct GradcheckInput {
    std::size_t index = 0;           // which input (or parameter)
    std::string name;                // its name, if it has one
    double max_abs_error = 0;        // max |analytic - numeric|
    double max_rel_error = 0;        // max |analytic - numeric| / max(|analytic|, |numeric|)
    std::size_t worst_element = 0;   // flat index of the worst element
    double analytic = 0, numeric = 0;  // the values there
    bool ok = true;
};

struct GradcheckReport {
    std::vector<GradcheckInput> inputs;
    bool ok = true;
    std::string str() const;  // one line per input; where it failed, the element and both values
};

// Checks back-propagation through f against central differences. f may return any shape: it is
// reduced to sum(w * f(x)) with fixed random weights w, which tests a random vector-Jacobian
// product. An element passes if |analytic - numeric| <= atol + rtol * |numeric|.
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
