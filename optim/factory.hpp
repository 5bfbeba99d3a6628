#pragma once
// Optimizers by name, for programs configured by flags or files (the book's Trainer takes
// optimizer='Adam', optimizer_param={'lr': 0.001}).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "optim/optimizer.hpp"

namespace xg::optim {

// "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw" (any case). Unset
// settings take each rule's defaults (the seeds'); weight_decay is L2 except for AdamW.
struct OptimizerSettings {
    std::optional<double> lr = std::nullopt;
    std::optional<double> weight_decay = std::nullopt;
};

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(std::string_view name, std::vector<Variable<T>> params,
                                             const OptimizerSettings& settings = {});

// The names make_optimizer accepts.
const std::vector<std::string>& optimizer_names();

extern template std::unique_ptr<Optimizer<float>> make_optimizer(std::string_view, std::vector<Variable<float>>,
                                                                 const OptimizerSettings&);
extern template std::unique_ptr<Optimizer<double>> make_optimizer(std::string_view, std::vector<Variable<double>>,
                                                                  const OptimizerSettings&);

}  // namespace xg::optim
