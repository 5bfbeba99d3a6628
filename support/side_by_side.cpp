#include "support/side_by_side.hpp"

#include <chrono>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "graph/error.hpp"
#include "train/csv.hpp"
#include "support/smooth.hpp"

namespace xg::support {

Variable<float> multilayer_net_loss(nn::MultiLayerNet<float>& net, data::Batch batch) {
    return net.loss(Variable<float>(std::move(batch.x)), batch.y);
}

train::TrainerOptions book_trainer_options(std::size_t epochs, std::size_t batch_size, std::uint64_t seed) {
    return {.epochs = epochs, .batch_size = batch_size, .sampling = train::Sampling::random, .seed = seed,
            .verbose = false, .stop_on_divergence = false};
}

Contender contender(std::string name, nn::MultiLayerNet<float>& net, optim::Optimizer<float>& optimizer) {
    return {std::move(name), &net, &optimizer, [&net](const data::Batch& b) { return multilayer_net_loss(net, b); }};
}

LossCurves train_side_by_side(const std::vector<Contender>& contenders, const data::Dataset& train,
                              const SideBySideOptions& options) {
    if (contenders.empty()) throw ValueError("train_side_by_side: no models");
    const auto start = std::chrono::steady_clock::now();
    LossCurves curves;
    for (const Contender& c : contenders) {
        if (!c.model || !c.optimizer || !c.loss)
            throw ValueError(fmt::format("train_side_by_side: contender '{}' lacks a model, optimizer or loss", c.name));
        curves.names.push_back(c.name);
        curves.loss.emplace_back();
        curves.loss.back().reserve(options.iterations);
        curves.diverged.push_back(false);
        c.model->train();
    }
    std::mt19937_64 rng(options.seed);
    for (std::size_t it = 0; it < options.iterations; ++it) {
        const data::Batch batch = data::random_batch(train, options.batch_size, rng);
        for (std::size_t m = 0; m < contenders.size(); ++m) {
            if (curves.diverged[m]) continue;
            const Contender& c = contenders[m];
            c.optimizer->zero_grad();
            Variable<float> loss = c.loss(batch);
            const double value = loss.item();
            if (!std::isfinite(value)) {
                curves.diverged[m] = true;
                continue;
            }
            loss.backward();
            c.optimizer->step();
            curves.loss[m].push_back(value);
        }
        if (options.print_every && ((it + 1) % options.print_every == 0 || it == 0)) {
            std::string line = fmt::format("iteration {:>5}:", it + 1);
            for (std::size_t m = 0; m < contenders.size(); ++m)
                line += curves.diverged[m] ? fmt::format("  {} diverged", curves.names[m])
                                           : fmt::format("  {} {:.4f}", curves.names[m], curves.loss[m].back());
            fmt::print("{}\n", line);
            std::fflush(stdout);
        }
    }
    curves.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return curves;
}

void write_loss_curves_csv(const std::filesystem::path& path, const LossCurves& curves, std::size_t window) {
    train::CsvWriter csv(path, {"model", "iteration", "loss", "smoothed", "moving_average"});
    for (std::size_t m = 0; m < curves.names.size(); ++m) {
        const std::vector<double>& raw = curves.loss[m];
        const std::vector<double> smooth = raw.size() >= 11 ? smooth_curve(raw) : raw;
        const std::vector<double> avg = moving_average(raw, window);
        for (std::size_t i = 0; i < raw.size(); ++i) csv.row({curves.names[m], i + 1, raw[i], smooth[i], avg[i]});
    }
    csv.close();
}

}  // namespace xg::support
