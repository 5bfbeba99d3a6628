#pragma once
// The book's Trainer: mini-batch training of a MultiLayerNet with accuracy on the training and
// test (or validation) data after every epoch, a loss history, progress on the terminal,
// metrics as CSV and a checkpoint after every epoch that `resume` continues from.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "nn/multilayer_net.hpp"
#include "optim/optimizer.hpp"
#include "optim/scheduler.hpp"

namespace xg::train {

// How mini-batches are drawn: shuffled epochs (each sample once per epoch), or the book's
// independent random draws (np.random.choice), max(N / batch, 1) of them per epoch.
enum class Sampling { epochs, random };

// The constructor checks these: ValueError naming the option for epochs 0, a batch_size outside
// [1, training set size], or a batch_size of 1 for a model with batch norm.
struct TrainerOptions {
    std::size_t epochs = 20;
    // With batch norm and shuffled epochs, an epoch whose last batch would be a single row drops
    // that row (a different one each epoch): one row has no batch variance (BatchNorm1d throws).
    std::size_t batch_size = 100;
    Sampling sampling = Sampling::epochs;
    // Accuracy after each epoch on the first N samples of each set (0: all of them), the book's
    // evaluate_sample_num_per_epoch.
    std::size_t evaluate_samples = 0;
    std::uint64_t seed = 0;             // the batches' order
    bool verbose = true;                // progress and one line per epoch on stdout
    std::string label = "train";        // shown on the progress bar
    std::string metrics_csv = {};       // per-epoch metrics, rewritten atomically after each epoch
    std::string checkpoint = {};        // model, optimizer and history, saved after each epoch
    bool stop_on_divergence = true;     // a non-finite loss throws (else training stops there)
    // When set, epoch e (1-based) trains at schedule->lr_at(e - 1): stateless, so a resumed run
    // continues the schedule where it stopped.
    const optim::LRScheduler<float>* schedule = nullptr;
};

struct EpochMetrics {
    std::size_t epoch = 0;               // 1-based
    double train_loss = 0;               // mean of the epoch's mini-batch losses
    double train_accuracy = 0;
    std::optional<double> test_accuracy;  // when a test set was given
    double seconds = 0;                  // wall time of the epoch's training and evaluation
};

struct History {
    std::vector<double> iteration_loss;  // every mini-batch's loss, in order
    std::vector<EpochMetrics> epochs;
    bool diverged = false;               // stopped at a non-finite loss
};

class Trainer {
public:
    // `test` may be null. The trainer keeps references: all must outlive it.
    Trainer(nn::MultiLayerNet<float>& net, optim::Optimizer<float>& optimizer, const data::Dataset& train,
            const data::Dataset* test, TrainerOptions options);

    // Loads a checkpoint written by a Trainer (model, optimizer state, history): fit() then
    // continues after its last epoch. Throws IoError naming the file if it does not fit.
    void resume(const std::string& path);

    // Trains until options.epochs epochs are done in all; returns the history so far.
    const History& fit();

    // Accuracy of the model on (the first evaluate_samples of) `data`, in eval mode.
    double evaluate(const data::Dataset& data);

    const History& history() const { return history_; }
    // Called after every epoch, e.g. to print or plot as training goes.
    std::function<void(const EpochMetrics&)> on_epoch;

private:
    bool drops_last_row() const;  // see TrainerOptions::batch_size
    std::size_t iterations_per_epoch() const;
    void train_epoch(std::size_t epoch, class Progress& progress);
    void save_checkpoint() const;
    void write_metrics() const;

    nn::MultiLayerNet<float>& net_;
    optim::Optimizer<float>& optimizer_;
    const data::Dataset& train_;
    const data::Dataset* test_;
    TrainerOptions options_;
    History history_;
};

// Per-epoch metrics as CSV rows: epoch, train_loss, train_accuracy, test_accuracy, seconds.
void write_epoch_csv(const std::string& path, const std::vector<EpochMetrics>& epochs);

}  // namespace xg::train
