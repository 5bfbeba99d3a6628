#include "optim/factory.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "graph/error.hpp"
#include "optim/adam.hpp"
#include "optim/adaptive.hpp"
#include "optim/sgd.hpp"

namespace xg::optim {

const std::vector<std::string>& optimizer_names() {
    static const std::vector<std::string> names = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"};
    return names;
}

namespace {
// Fills the unset fields of a rule's options from `settings`, keeping the rule's defaults.
template <class Options>
Options with(const OptimizerSettings& settings, Options options = {}) {
    if (settings.lr) options.lr = *settings.lr;
    if (settings.weight_decay) options.weight_decay = *settings.weight_decay;
    return options;
}
}  // namespace

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(std::string_view name, std::vector<Variable<T>> params,
                                             const OptimizerSettings& settings) {
    std::string key(name);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    auto& p = params;
    if (key == "sgd") return std::make_unique<SGD<T>>(std::move(p), with<SGDOptions>(settings));
    if (key == "momentum") return std::make_unique<Momentum<T>>(std::move(p), with<MomentumOptions>(settings));
    if (key == "nesterov") return std::make_unique<Nesterov<T>>(std::move(p), with<NesterovOptions>(settings));
    if (key == "adagrad") return std::make_unique<AdaGrad<T>>(std::move(p), with<AdaGradOptions>(settings));
    if (key == "rmsprop") return std::make_unique<RMSProp<T>>(std::move(p), with<RMSPropOptions>(settings));
    if (key == "adam") return std::make_unique<Adam<T>>(std::move(p), with<AdamOptions>(settings));
    if (key == "adamw") return std::make_unique<AdamW<T>>(std::move(p), with<AdamWOptions>(settings));
    throw ValueError(fmt::format("make_optimizer: unknown optimizer '{}' (expected one of {})", name,
                                 fmt::join(optimizer_names(), ", ")));
}

template std::unique_ptr<Optimizer<float>> make_optimizer(std::string_view, std::vector<Variable<float>>,
                                                          const OptimizerSettings&);
template std::unique_ptr<Optimizer<double>> make_optimizer(std::string_view, std::vector<Variable<double>>,
                                                           const OptimizerSettings&);

}  // namespace xg::optim
