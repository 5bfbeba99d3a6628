#pragma once
// Several models trained side by side on the same random mini-batches, as the book's
// optimizer_compare_mnist.py and weight_init_compare.py do: each iteration draws one batch
// (np.random.choice, with replacement) and every model takes one step on it, so the curves differ
// only by what the experiment varies (the update rule, the initial weights), not by the data.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "nn/multilayer_net.hpp"
#include "optim/optimizer.hpp"
#include "train/trainer.hpp"

namespace xg::support {

struct Contender {
    std::string name;
    nn::Module<float>* model;            // put in training mode before the first step
    optim::Optimizer<float>* optimizer;  // over the model's parameters
    std::function<Variable<float>(const data::Batch&)> loss;  // the model's mini-batch loss
};

// The book's loss of a MultiLayerNet on a batch (cross entropy plus its weight decay): the loss the
// examples' Trainer runs and side-by-side runs use. By value: the Trainer's batch is moved in and
// its images become the input Variable without a copy; a side-by-side run's shared batch is copied.
Variable<float> multilayer_net_loss(nn::MultiLayerNet<float>& net, data::Batch batch);

// The Trainer options of the book's experiments (overfit, batch_norm_test, hyperparameter search):
// random batches as np.random.choice draws them, silent, and a diverging run kept (its curve is
// part of the result, not an error).
train::TrainerOptions book_trainer_options(std::size_t epochs, std::size_t batch_size, std::uint64_t seed);

// A MultiLayerNet whose loss is its own (cross entropy plus weight decay), as in the book.
Contender contender(std::string name, nn::MultiLayerNet<float>& net, optim::Optimizer<float>& optimizer);

struct SideBySideOptions {
    std::size_t iterations = 2000;
    std::size_t batch_size = 128;
    std::uint64_t seed = 0;         // the batches
    std::size_t print_every = 100;  // a line of every model's loss; 0: silent
};

struct LossCurves {
    std::vector<std::string> names;
    std::vector<std::vector<double>> loss;  // [model][iteration], the mini-batch loss before the step
    std::vector<bool> diverged;             // the loss became non-finite (training of it stopped there)
    double seconds = 0;
};

// Trains every contender for options.iterations steps. A model whose loss becomes non-finite stops
// (its curve ends early, diverged is set); the others go on.
LossCurves train_side_by_side(const std::vector<Contender>& contenders, const data::Dataset& train,
                              const SideBySideOptions& options);

// loss_curves.csv layout: model, iteration (1-based), loss, smoothed (the book's smooth_curve,
// Kaiser window 11), moving_average (centred, `window` iterations).
void write_loss_curves_csv(const std::filesystem::path& path, const LossCurves& curves, std::size_t window);

}  // namespace xg::support
