#pragma once
// The Trainer's stock callbacks: early stopping, the best model kept on disk, the metrics as CSV,
// and any function of the epoch's or batch's numbers.
#include <cstddef>
#include <functional>
#include <limits>
#include <string>

#include "train/trainer.hpp"

namespace xg::train {

// Whether a larger or a smaller value of a metric is better. `automatic`: smaller for a name
// ending in "loss" or "error", larger otherwise.
enum class Goal { automatic, maximize, minimize };

struct EarlyStoppingOptions {
    std::size_t patience = 3;  // epochs without improvement before stopping
    double min_delta = 0;      // an improvement is a change by more than this
    Goal goal = Goal::automatic;
};

// Stops training when `metric` (e.g. "test_accuracy") has not improved for `patience` epochs.
// It reads the history, so it keeps no state of its own and a resumed run stops where an
// uninterrupted one would. ValueError naming the metric when an epoch lacks it.
class EarlyStopping : public Callback {
public:
    explicit EarlyStopping(std::string metric, EarlyStoppingOptions options = {});
    // A resumed history that already meets the condition trains no further epoch.
    void on_fit_begin(TrainerBase& trainer) override { check(trainer); }
    void on_epoch_end(TrainerBase& trainer, const EpochMetrics&) override { check(trainer); }

private:
    void check(TrainerBase& trainer) const;

    std::string metric_;
    EarlyStoppingOptions options_;
    bool maximize_;
};

// Saves the model and optimizer (TrainerBase::save_checkpoint) to `path` whenever `metric`
// reaches its best value so far (distributed: rank 0 writes, see save_checkpoint).
class BestCheckpoint : public Callback {
public:
    BestCheckpoint(std::string path, std::string metric, Goal goal = Goal::automatic);
    void on_epoch_end(TrainerBase& trainer, const EpochMetrics& metrics) override;
    double best() const { return best_; }

private:
    std::string path_, metric_;
    bool maximize_;
    double best_;
};

// Writes the history's per-epoch metrics to `path` after every epoch (atomically: a reader sees
// the previous version or the new one). Columns: epoch, train_loss, every metric, seconds.
// Distributed, rank 0 writes (the metrics are the same on every rank).
class CsvLogger : public Callback {
public:
    explicit CsvLogger(std::string path) : path_(std::move(path)) {}
    void on_epoch_end(TrainerBase& trainer, const EpochMetrics& metrics) override;

private:
    std::string path_;
};

// Calls the functions given, e.g. to print, plot or schedule the learning rate per batch.
struct LambdaCallback : Callback {
    std::function<void(TrainerBase&, const EpochMetrics&)> epoch_end;
    std::function<void(TrainerBase&, const BatchEnd&)> batch_end;
    std::function<void(TrainerBase&, std::size_t)> epoch_begin;
    void on_epoch_begin(TrainerBase& t, std::size_t epoch) override {
        if (epoch_begin) epoch_begin(t, epoch);
    }
    void on_batch_end(TrainerBase& t, const BatchEnd& b) override {
        if (batch_end) batch_end(t, b);
    }
    void on_epoch_end(TrainerBase& t, const EpochMetrics& m) override {
        if (epoch_end) epoch_end(t, m);
    }
};

// Per-epoch metrics as CSV rows (what CsvLogger writes).
void write_epoch_csv(const std::string& path, const std::vector<EpochMetrics>& epochs);

}  // namespace xg::train
