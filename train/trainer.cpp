#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "graph/error.hpp"
#include "nn/checkpoint.hpp"
#include "train/csv.hpp"
#include "train/progress.hpp"

namespace xg::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The history as a (epochs, 5) array for the checkpoint; NaN marks "no test accuracy".
Array<float> history_array(const std::vector<EpochMetrics>& epochs) {
    Array<float> a = Array<float>::from_shape({epochs.size(), 5});
    for (std::size_t i = 0; i < epochs.size(); ++i) {
        const EpochMetrics& e = epochs[i];
        a(i, 0) = static_cast<float>(e.epoch);
        a(i, 1) = static_cast<float>(e.train_loss);
        a(i, 2) = static_cast<float>(e.train_accuracy);
        a(i, 3) = e.test_accuracy ? static_cast<float>(*e.test_accuracy) : NAN;
        a(i, 4) = static_cast<float>(e.seconds);
    }
    return a;
}

std::vector<EpochMetrics> history_from(const Array<float>& a, const std::string& path) {
    if (a.dimension() != 2 || a.shape()[1] != 5)
        throw IoError(fmt::format("{}: trainer/history has shape {}, expected (epochs, 5)", path, shape_str(a.shape())));
    std::vector<EpochMetrics> out;
    for (std::size_t i = 0; i < a.shape()[0]; ++i) {
        // Epochs run 1, 2, ...; a NaN or negative count would not even convert to an integer.
        if (a(i, 0) != static_cast<float>(i + 1))
            throw IoError(fmt::format("{}: trainer/history row {} has epoch {}, expected {}", path, i, a(i, 0), i + 1));
        for (std::size_t k : {1, 2, 4})
            if (!std::isfinite(a(i, k)))
                throw IoError(fmt::format("{}: trainer/history row {} holds {} in column {}", path, i, a(i, k), k));
        EpochMetrics e{i + 1, a(i, 1), a(i, 2), std::nullopt, a(i, 4)};
        if (!std::isnan(a(i, 3))) e.test_accuracy = a(i, 3);
        out.push_back(e);
    }
    return out;
}

}  // namespace

void write_epoch_csv(const std::string& path, const std::vector<EpochMetrics>& epochs) {
    CsvWriter csv(path, {"epoch", "train_loss", "train_accuracy", "test_accuracy", "seconds"});
    for (const EpochMetrics& e : epochs)
        csv.row({e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy ? Cell(*e.test_accuracy) : Cell(""),
                 e.seconds});
    csv.close();
}

Trainer::Trainer(nn::MultiLayerNet<float>& net, optim::Optimizer<float>& optimizer, const data::Dataset& train,
                 const data::Dataset* test, TrainerOptions options)
    : net_(net), optimizer_(optimizer), train_(train), test_(test), options_(std::move(options)) {
    if (train.size() == 0) throw ValueError("Trainer: the training set is empty");
    const std::size_t inputs = net.options().input_size;
    if (train.features() != inputs || (test && test->features() != inputs))
        throw ShapeError(fmt::format("Trainer: the model takes {} features but the training set has {}{}", inputs,
                                     train.features(),
                                     test ? fmt::format(" and the test set {}", test->features()) : ""));
    if (options_.epochs == 0) throw ValueError("Trainer: epochs must be >= 1, got 0");
    if (options_.batch_size == 0 || options_.batch_size > train.size())
        throw ValueError(fmt::format("Trainer: batch_size must be in [1, {}] (the training set's size), got {}",
                                     train.size(), options_.batch_size));
    if (net.options().use_batchnorm && options_.batch_size < 2)
        throw ValueError(fmt::format("Trainer: batch_size must be >= 2 for a model with batch norm (a batch of one "
                                     "row has no variance), got {}",
                                     options_.batch_size));
}

bool Trainer::drops_last_row() const {
    return options_.sampling == Sampling::epochs && net_.options().use_batchnorm &&
           train_.size() % options_.batch_size == 1;
}

std::size_t Trainer::iterations_per_epoch() const {
    const std::size_t n = train_.size(), b = options_.batch_size;
    if (options_.sampling == Sampling::random) return std::max<std::size_t>(n / b, 1);
    return drops_last_row() ? n / b : (n + b - 1) / b;
}

double Trainer::evaluate(const data::Dataset& data) {
    const std::size_t n = options_.evaluate_samples ? std::min(options_.evaluate_samples, data.size()) : data.size();
    if (n == data.size()) return net_.accuracy(data.images, data.labels);
    const data::Dataset part = data::take(data, n);
    return net_.accuracy(part.images, part.labels);
}

void Trainer::train_epoch(std::size_t epoch, Progress& progress) {
    // Each epoch's batches come from (seed, epoch) alone, so a resumed run draws what an
    // uninterrupted one would have.
    std::seed_seq seq{options_.seed, static_cast<std::uint64_t>(epoch)};
    std::mt19937_64 rng(seq);
    std::optional<data::Batches> batches;
    if (options_.sampling == Sampling::epochs)
        batches.emplace(train_, options_.batch_size, rng(), data::BatchOptions{.drop_last = drops_last_row()});
    const auto start = Clock::now();
    const std::size_t iterations = iterations_per_epoch();
    const std::size_t first_iteration = history_.iteration_loss.size();
    double loss_sum = 0;
    if (options_.schedule) optimizer_.set_lr(options_.schedule->lr_at(static_cast<long>(epoch) - 1));
    net_.train();
    for (std::size_t i = 0; i < iterations; ++i) {
        const data::Batch batch = batches ? *batches->next() : data::random_batch(train_, options_.batch_size, rng);
        optimizer_.zero_grad();
        Variable<float> loss = net_.loss(Variable<float>(batch.x), batch.y);
        const double value = loss.item();
        if (!std::isfinite(value)) {
            history_.diverged = true;
            if (options_.stop_on_divergence)
                throw ValueError(fmt::format("Trainer: the loss is {} at epoch {}, iteration {} (lr {} too high?)",
                                             value, epoch, i + 1, optimizer_.lr()));
            return;
        }
        loss.backward();
        optimizer_.step();
        history_.iteration_loss.push_back(value);
        loss_sum += value;
        if (options_.verbose) progress.update(static_cast<long>(first_iteration + i + 1), {.loss = value});
    }
    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = loss_sum / static_cast<double>(iterations);
    m.train_accuracy = evaluate(train_);
    if (test_) m.test_accuracy = evaluate(*test_);
    m.seconds = seconds_since(start);
    history_.epochs.push_back(m);
    if (options_.verbose)
        progress.note(fmt::format("epoch {:>3}/{}  loss {:.4f}  train acc {:.4f}{}  {:.1f}s", epoch, options_.epochs,
                                  m.train_loss, m.train_accuracy,
                                  m.test_accuracy ? fmt::format("  test acc {:.4f}", *m.test_accuracy) : "",
                                  m.seconds));
}

const History& Trainer::fit() {
    const std::size_t done = history_.epochs.size();
    if (done >= options_.epochs) return history_;
    const std::size_t remaining = (options_.epochs - done) * iterations_per_epoch();
    const long first = static_cast<long>(history_.iteration_loss.size());
    // The bar counts this run's iterations on top of those a resumed run already did.
    Progress progress = Progress::for_stdout(first + static_cast<long>(remaining), options_.label,
                                             static_cast<long>(std::max<std::size_t>(iterations_per_epoch() / 4, 1)));
    for (std::size_t epoch = done + 1; epoch <= options_.epochs; ++epoch) {
        train_epoch(epoch, progress);
        if (history_.diverged) break;
        if (!options_.metrics_csv.empty()) write_metrics();
        if (!options_.checkpoint.empty()) save_checkpoint();
        if (on_epoch) on_epoch(history_.epochs.back());
    }
    if (options_.verbose) progress.finish();
    return history_;
}

void Trainer::write_metrics() const { write_epoch_csv(options_.metrics_csv, history_.epochs); }

void Trainer::save_checkpoint() const {
    StateDict<float> all = net_.state_dict();
    for (auto& e : nn::to_section("optimizer", optimizer_.state_dict())) all.push_back(std::move(e));
    Array<float> losses = Array<float>::from_shape({history_.iteration_loss.size()});
    std::copy(history_.iteration_loss.begin(), history_.iteration_loss.end(), losses.begin());
    all.emplace_back("trainer/history", history_array(history_.epochs));
    all.emplace_back("trainer/iteration_loss", std::move(losses));
    nn::save_npz(options_.checkpoint, all);
}

void Trainer::resume(const std::string& path) {
    // All or nothing: the model is loaded first (nn::load leaves it unchanged if the file does not
    // fit it), then put back as it was if the optimizer's state or the history is refused.
    const StateDict<float> model_before = net_.state_dict();
    const StateDict<float> sections = nn::load_with_sections(path, net_);
    try {
        const StateDict<float> optimizer_state = nn::from_section("optimizer", sections);
        const StateDict<float> trainer = nn::from_section("trainer", sections);
        History restored;
        for (const auto& [name, array] : trainer) {
            if (name == "history") restored.epochs = history_from(array, path);
            if (name == "iteration_loss") restored.iteration_loss.assign(array.begin(), array.end());
        }
        if (restored.epochs.empty())
            throw IoError(fmt::format("{}: no trainer/history entry: not a checkpoint written by a Trainer", path));
        try {
            optimizer_.load_state_dict(optimizer_state);
        } catch (const Error& e) {
            throw IoError(fmt::format("{}: the optimizer state does not fit {}: {}", path, optimizer_.name(), e.what()));
        }
        history_ = std::move(restored);
    } catch (...) {
        net_.load_state_dict(model_before);
        throw;
    }
}

}  // namespace xg::train
