#include "nn/loss.hpp"

#include <cmath>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::nn {

template <class T>
Variable<T> l2_penalty(const std::vector<Variable<T>>& weights, double lambda) {
    if (!(lambda >= 0) || !std::isfinite(lambda))
        throw ValueError(fmt::format("l2_penalty: lambda must be finite and >= 0, got {}", lambda));
    Variable<T> total = scalar<T>(T(0));
    if (lambda == 0) return total;
    for (const Variable<T>& w : weights) total = total + sum(w * w);
    return total * static_cast<T>(0.5 * lambda);
}

template Variable<float> l2_penalty(const std::vector<Variable<float>>&, double);
template Variable<double> l2_penalty(const std::vector<Variable<double>>&, double);

}  // namespace xg::nn
