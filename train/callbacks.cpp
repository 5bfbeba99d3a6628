#include "train/callbacks.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "graph/error.hpp"
#include "train/csv.hpp"

namespace xg::train {
namespace {

bool ends_with(const std::string& s, std::string_view tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool maximizes(const std::string& metric, Goal goal) {
    if (goal != Goal::automatic) return goal == Goal::maximize;
    return !(ends_with(metric, "loss") || ends_with(metric, "error"));
}

}  // namespace

EarlyStopping::EarlyStopping(std::string metric, EarlyStoppingOptions options)
    : metric_(std::move(metric)), options_(options), maximize_(maximizes(metric_, options.goal)) {
    if (metric_.empty()) throw ValueError("EarlyStopping: the metric name is empty");
    if (options_.patience == 0) throw ValueError("EarlyStopping: patience must be >= 1, got 0");
    if (!(options_.min_delta >= 0) || !std::isfinite(options_.min_delta))
        throw ValueError(fmt::format("EarlyStopping: min_delta must be finite and >= 0, got {}", options_.min_delta));
}

void EarlyStopping::check(TrainerBase& trainer) const {
    // The best value and the epochs since it, from the whole history (a resumed run included).
    const auto& epochs = trainer.history().epochs;
    double best = 0;
    std::size_t since = 0;
    for (std::size_t i = 0; i < epochs.size(); ++i) {
        const double v = epochs[i].at(metric_);
        const double gain = maximize_ ? v - best : best - v;
        if (i == 0 || gain > options_.min_delta) {
            best = v;
            since = 0;
        } else {
            ++since;
        }
    }
    if (since >= options_.patience)
        trainer.stop(fmt::format("early stopping: {} has not improved on {:.6g} for {} epochs", metric_, best, since));
}

BestCheckpoint::BestCheckpoint(std::string path, std::string metric, Goal goal)
    : path_(std::move(path)), metric_(std::move(metric)), maximize_(maximizes(metric_, goal)),
      best_(maximize_ ? -INFINITY : INFINITY) {
    if (path_.empty()) throw ValueError("BestCheckpoint: the path is empty");
}

void BestCheckpoint::on_epoch_end(TrainerBase& trainer, const EpochMetrics& metrics) {
    const double v = metrics.at(metric_);
    if (maximize_ ? v > best_ : v < best_) {
        best_ = v;
        trainer.save_checkpoint(path_);
    }
}

void write_epoch_csv(const std::string& path, const std::vector<EpochMetrics>& epochs) {
    std::vector<std::string> header{"epoch", "train_loss"};
    for (const EpochMetrics& e : epochs)
        for (const auto& [name, v] : e.metrics)
            if (std::find(header.begin() + 2, header.end(), name) == header.end()) header.push_back(name);
    header.push_back("seconds");
    CsvWriter csv(path, header);
    for (const EpochMetrics& e : epochs) {
        std::vector<Cell> row;
        row.reserve(header.size());
        row.emplace_back(e.epoch);
        row.emplace_back(e.train_loss);
        for (std::size_t k = 2; k + 1 < header.size(); ++k) {
            const auto v = e.find(header[k]);
            if (v) row.emplace_back(*v);
            else row.emplace_back("");
        }
        row.push_back(e.seconds);
        csv.row(row);
    }
    csv.close();
}

void CsvLogger::on_epoch_end(TrainerBase& trainer, const EpochMetrics&) {
    if (!trainer.is_main()) return;  // distributed: rank 0 writes
    write_epoch_csv(path_, trainer.history().epochs);
}

}  // namespace xg::train
