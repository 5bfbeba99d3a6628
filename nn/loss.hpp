#pragma once
// Losses as callables, and the seeds' weight decay penalty, all computed through the graph.
#include <cstddef>
#include <vector>

#include "ops/ops.hpp"

namespace xg::nn {

// Fused, numerically stable softmax + cross entropy over the rows of the logits.
template <class T>
struct SoftmaxCrossEntropy {
    Reduction reduction = Reduction::mean;
    Variable<T> operator()(const Variable<T>& logits, const Labels& labels) const {
        return softmax_cross_entropy(logits, labels, reduction);
    }
    Variable<T> operator()(const Variable<T>& logits, const Variable<T>& targets) const {
        return softmax_cross_entropy(logits, targets, reduction);
    }
};

// Mean of the squared differences.
template <class T>
struct MSELoss {
    Variable<T> operator()(const Variable<T>& prediction, const Variable<T>& target) const {
        return mean_squared_error(prediction, target);
    }
};

// The seeds' weight decay: 0.5 * lambda * sum over `weights` of ||W||^2. A scalar of the graph,
// to be added to the loss; zero (and no graph) when lambda is 0 or there are no weights.
template <class T>
Variable<T> l2_penalty(const std::vector<Variable<T>>& weights, double lambda);

// Arg-max of each row of `logits` (N, classes) compared with `labels` (N,): the number of hits.
// ShapeError naming "accuracy" when the shapes do not match.
template <class T>
std::size_t count_correct(const Array<T>& logits, const Labels& labels);

extern template std::size_t count_correct(const Array<float>&, const Labels&);
extern template std::size_t count_correct(const Array<double>&, const Labels&);
extern template Variable<float> l2_penalty(const std::vector<Variable<float>>&, double);
extern template Variable<double> l2_penalty(const std::vector<Variable<double>>&, double);

}  // namespace xg::nn
