#include "nn/loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

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

template <class T>
std::size_t count_correct(const Array<T>& logits, const Labels& labels) {
    if (logits.dimension() != 2 || logits.shape()[0] != labels.size())
        throw ShapeError(fmt::format("accuracy: logits of shape {} do not match {} labels", shape_str(logits.shape()),
                                     labels.size()));
    const std::size_t n = logits.shape()[0], c = logits.shape()[1];
    std::size_t hits = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const T* row = logits.data() + i * c;
        const auto best = static_cast<std::int64_t>(std::max_element(row, row + c) - row);
        hits += best == labels(i);
    }
    return hits;
}

template std::size_t count_correct(const Array<float>&, const Labels&);
template std::size_t count_correct(const Array<double>&, const Labels&);
template Variable<float> l2_penalty(const std::vector<Variable<float>>&, double);
template Variable<double> l2_penalty(const std::vector<Variable<double>>&, double);

}  // namespace xg::nn
