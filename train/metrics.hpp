#pragma once
// Metrics for Trainer::add_metric: callables (model, batch) -> the batch's mean.
#include <cstddef>
#include <type_traits>
#include <vector>

#include "graph/variable.hpp"
#include "nn/loss.hpp"

namespace xg::train {

// The fraction of rows whose arg-max output is the label: for a model whose forward(x) gives
// logits (N, classes), and a batch with `.x` (an array, or a vector of arrays whose first is the
// input: data::TensorBatch) and `.y` (Labels), as data::Batch and data::TensorBatch have.
struct Accuracy {
    template <class Model, class Batch>
    double operator()(Model& model, const Batch& batch) const {
        using T = typename Model::value_type;
        const auto& input = [&]() -> const auto& {
            if constexpr (requires { batch.x.front().shape(); }) return batch.x.front();
            else return batch.x;
        }();
        const Variable<T> logits = model.forward(Variable<T>(input));
        const std::size_t n = batch.y.size();
        return n ? static_cast<double>(nn::count_correct(logits.data(), batch.y)) / static_cast<double>(n) : 0.0;
    }
};
inline constexpr Accuracy accuracy{};

}  // namespace xg::train
