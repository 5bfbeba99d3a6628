#include "train/trainer.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <random>

#include <fmt/format.h>

#include "data/dataset.hpp"
#include "dist/context.hpp"
#include "dist/sync_batch_norm.hpp"
#include "graph/error.hpp"
#include "nn/checkpoint.hpp"
#include "nn/layers.hpp"
#include "train/callbacks.hpp"
#include "train/progress.hpp"

namespace xg::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Whether m or a module below it is a BatchNorm1d; with `per_rank`, one whose statistics are
// its rank's rows alone (not a dist::SyncBatchNorm1d, whose are the whole batch's): distributed,
// every rank then needs two rows of each batch.
template <class T>
bool holds_batch_norm(const nn::Module<T>& m, bool per_rank = false) {
    if (dynamic_cast<const nn::BatchNorm1d<T>*>(&m) && !(per_rank && dynamic_cast<const dist::SyncBatchNorm1d<T>*>(&m)))
        return true;
    for (const auto& [name, child] : m.named_children())
        if (holds_batch_norm(*child, per_rank)) return true;
    return false;
}

}  // namespace

std::optional<double> EpochMetrics::find(std::string_view name) const {
    if (name == "train_loss") return train_loss;
    for (const auto& [n, v] : metrics)
        if (n == name) return v;
    return std::nullopt;
}

double EpochMetrics::at(std::string_view name) const {
    if (auto v = find(name)) return *v;
    std::string known = "train_loss";
    for (const auto& [n, v] : metrics) known += ", " + n;
    throw ValueError(fmt::format("epoch {} has no metric '{}' (it has {})", epoch, name, known));
}

TrainerBase::TrainerBase(std::size_t train_size, bool model_has_batch_norm, bool model_has_rank_batch_norm,
                         TrainerOptions options)
    : set_names_{"train"}, train_size_(train_size), batch_norm_(model_has_batch_norm),
      rank_batch_norm_(model_has_rank_batch_norm), options_(std::move(options)) {
    if (train_size_ == 0) throw ValueError("Trainer: the training set is empty");
    if (options_.epochs == 0) throw ValueError("Trainer: epochs must be >= 1, got 0");
    if (options_.batch_size == 0 || options_.batch_size > train_size_)
        throw ValueError(fmt::format("Trainer: batch_size must be in [1, {}] (the training set's size), got {}",
                                     train_size_, options_.batch_size));
    if (batch_norm_ && options_.batch_size < 2)
        throw ValueError(fmt::format("Trainer: batch_size must be >= 2 for a model with batch norm (a batch of one "
                                     "row has no variance), got {}",
                                     options_.batch_size));
    if (options_.eval_batch_size == 0) throw ValueError("Trainer: eval_batch_size must be >= 1, got 0");
    if (!options_.metrics_csv.empty()) callbacks_.push_back(std::make_shared<CsvLogger>(options_.metrics_csv));
}

void TrainerBase::add_callback(std::shared_ptr<Callback> callback) {
    if (!callback) throw ValueError("Trainer::add_callback: the callback is null");
    callbacks_.push_back(std::move(callback));
}

int TrainerBase::rank() const { return context_ ? context_->rank() : 0; }
int TrainerBase::world_size() const { return context_ ? context_->world_size() : 1; }

void TrainerBase::stop(std::string reason) {
    stop_requested_ = true;
    history_.stop_reason = std::move(reason);
}

bool TrainerBase::drops_last_row() const {
    return options_.sampling == Sampling::epochs && batch_norm_ && train_size_ % options_.batch_size == 1;
}

// Distributed, every rank needs a row of each batch (two with a rank's own batch norm, for a
// variance; a SyncBatchNorm1d's variance is over the whole batch, at least one row a rank).
std::size_t TrainerBase::min_rows_per_rank() const {
    return rank_batch_norm_ ? 2 : 1;
}

std::size_t TrainerBase::iterations_per_epoch() const {
    const std::size_t n = train_size_, b = options_.batch_size;
    if (options_.sampling == Sampling::random) return std::max<std::size_t>(n / b, 1);
    if (world_size() > 1) {
        // A last batch too small to give every rank its rows is dropped.
        const std::size_t last = n % b;
        const bool keep = last != 0 && !options_.drop_last &&
                          last >= min_rows_per_rank() * static_cast<std::size_t>(world_size());
        return n / b + (keep ? 1 : 0);
    }
    return options_.drop_last || drops_last_row() ? n / b : (n + b - 1) / b;
}

std::vector<double> TrainerBase::evaluate_means(std::size_t set, std::size_t n) {
    before_evaluation();
    const auto ranks = static_cast<std::size_t>(world_size()), r = static_cast<std::size_t>(rank());
    // This rank's contiguous share of rows [0, n), as data::shard splits.
    const std::size_t base = n / ranks, extra = n % ranks;
    const std::size_t begin = r * base + std::min(r, extra), end = begin + base + (r < extra ? 1 : 0);
    std::vector<double> sums = evaluate_rows(set, begin, end);
    if (context_) context_->all_reduce_sum(sums);
    for (double& v : sums) v = n ? v / static_cast<double>(n) : 0.0;
    return sums;
}

void TrainerBase::train_epoch(std::size_t epoch, Progress& progress) {
    // Each epoch's batches come from (seed, epoch) alone, so a resumed run draws what an
    // uninterrupted one would have.
    std::seed_seq seq{options_.seed, static_cast<std::uint64_t>(epoch)};
    std::mt19937_64 rng(seq);
    std::vector<std::size_t> order;
    if (options_.sampling == Sampling::epochs) order = data::permutation(train_size_, rng);
    const auto start = Clock::now();
    const std::size_t iterations = iterations_per_epoch();
    const std::size_t first_iteration = history_.iteration_loss.size();
    const std::size_t b = options_.batch_size;
    const bool distributed = world_size() > 1;
    const bool show = options_.verbose && is_main();
    double loss_sum = 0;
    std::size_t done = 0;
    apply_schedule(epoch);
    for (auto& c : callbacks_) c->on_epoch_begin(*this, epoch);
    set_training(true);
    std::vector<std::size_t> drawn(b);
    // Distributed, a stop asked on one rank (by a callback) travels with the next batch's
    // all-reduce, and every rank then stops before applying that batch; one asked at the last
    // batch, by the reduction after the loop. Every rank so stops after the same batch.
    bool stop_agreed = false;
    for (std::size_t i = 0; i < iterations && !(distributed ? stop_agreed : stop_requested_); ++i) {
        Rows rows;
        if (options_.sampling == Sampling::epochs) {
            rows = Rows(order).subspan(i * b, std::min(b, train_size_ - i * b));
        } else {
            for (std::size_t& r : drawn) r = data::uniform_index(rng, train_size_);
            rows = drawn;
        }
        // Distributed: this rank's shard; its loss (the mean over its rows) weighs by its share.
        const Rows global = rows;
        if (distributed) rows = data::shard(global, static_cast<std::size_t>(rank()), static_cast<std::size_t>(world_size()));
        const double share = static_cast<double>(rows.size()) / static_cast<double>(global.size());
        double value = step_loss(rows);
        if (distributed) {
            // The whole batch's loss and the stop flags, summed in the gradients' all-reduce.
            std::array<double, 2> sums{value * share, stop_requested_ ? 1.0 : 0.0};
            step_backward(share, sums);
            value = sums[0];
            if (sums[1] > 0) {
                stop_agreed = stop_requested_ = true;
                break;
            }
        }
        if (!std::isfinite(value)) {
            history_.diverged = true;
            if (options_.stop_on_divergence)
                throw ValueError(fmt::format("Trainer: the loss is {} at epoch {}, iteration {} (lr {} too high?)",
                                             value, epoch, i + 1, lr()));
            return;
        }
        if (!distributed) step_backward(1.0, {});
        step_update();
        history_.iteration_loss.push_back(value);
        loss_sum += value;
        ++done;
        if (show) progress.update(static_cast<long>(first_iteration + i + 1), {.loss = value});
        for (auto& c : callbacks_) c->on_batch_end(*this, {epoch, i + 1, global.size(), value});
    }
    if (distributed && !stop_agreed) {  // a stop asked at the epoch's last batch
        double stop = stop_requested_ ? 1 : 0;
        context_->all_reduce_max(std::span<double>(&stop, 1));
        if (stop > 0) stop_requested_ = true;
    }
    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = done ? loss_sum / static_cast<double>(done) : NAN;
    if (!metric_names_.empty()) {
        for (std::size_t set = options_.evaluate_train ? 0 : 1; set < set_names_.size(); ++set) {
            const std::vector<double> values = evaluate_means(set, set_size(set));
            for (std::size_t k = 0; k < values.size(); ++k)
                m.metrics.emplace_back(set_names_[set] + "_" + metric_names_[k], values[k]);
        }
    }
    m.seconds = seconds_since(start);
    if (distributed) context_->all_reduce_max(std::span<double>(&m.seconds, 1));  // the slowest rank's
    end_epoch(m, progress);
}

void TrainerBase::end_epoch(EpochMetrics& m, Progress& progress) {
    history_.epochs.push_back(m);
    if (options_.verbose && is_main()) {
        std::string line = fmt::format("epoch {:>3}/{}  loss {:.4f}", m.epoch, options_.epochs, m.train_loss);
        for (const auto& [name, value] : m.metrics) line += fmt::format("  {} {:.4f}", name, value);
        progress.note(line + fmt::format("  {:.1f}s", m.seconds));
    }
    if (!options_.checkpoint.empty()) save_checkpoint(options_.checkpoint);
    for (auto& c : callbacks_) c->on_epoch_end(*this, history_.epochs.back());
}

const History& TrainerBase::fit() {
    const std::size_t done = history_.epochs.size();
    stop_requested_ = false;
    history_.stop_reason.clear();
    if (done >= options_.epochs) return history_;
    const std::size_t remaining = (options_.epochs - done) * iterations_per_epoch();
    const long first = static_cast<long>(history_.iteration_loss.size());
    // The bar counts this run's iterations on top of those a resumed run already did.
    Progress progress = Progress::for_stdout(first + static_cast<long>(remaining), options_.label,
                                             static_cast<long>(std::max<std::size_t>(iterations_per_epoch() / 4, 1)));
    for (auto& c : callbacks_) c->on_fit_begin(*this);
    for (std::size_t epoch = done + 1; epoch <= options_.epochs && !stop_requested_; ++epoch) {
        train_epoch(epoch, progress);
        if (history_.diverged) break;
    }
    if (options_.verbose && is_main()) {
        if (!history_.stop_reason.empty()) progress.note("stopped: " + history_.stop_reason);
        progress.finish();
    }
    for (auto& c : callbacks_) c->on_fit_end(*this);
    return history_;
}

// ---- TrainerOf<T>: model, optimizer, schedule, checkpoints ----

template <class T>
TrainerOf<T>::TrainerOf(nn::Module<T>& model, optim::Optimizer<T>& optimizer, std::size_t train_size,
                        TrainerOptions options)
    : TrainerBase(train_size, holds_batch_norm(model), holds_batch_norm(model, true), std::move(options)),
      model_(model), optimizer_(optimizer) {}

template <class T>
double TrainerOf<T>::step_loss(Rows rows) {
    optimizer_.zero_grad();
    loss_ = batch_loss(rows);
    if (!loss_.defined() || loss_.size() != 1)
        throw ShapeError(fmt::format("Trainer: the loss callable must return a scalar, got shape {}",
                                     loss_.defined() ? shape_str(loss_.shape()) : "undefined"));
    return static_cast<double>(loss_.item());
}

template <class T>
void TrainerOf<T>::step_backward(double share, std::span<double> sums) {
    const double loss_scale = data_parallel_ ? data_parallel_->loss_scale(share) : share;
    if (loss_scale == 1.0) loss_.backward();
    else loss_.backward(Variable<T>(full(loss_.shape(), static_cast<T>(loss_scale))));
    loss_ = Variable<T>();  // frees the graph before the update
    if (data_parallel_) data_parallel_->finish(sums);
}

template <class T>
void TrainerOf<T>::step_update() {
    optimizer_.step();
}

template <class T>
void TrainerOf<T>::distribute(const dist::Context& ctx, dist::DataParallelOptions options) {
    if (ctx.world_size() == 1) return;
    const bool rank_norm = holds_batch_norm(model_, true);
    const std::size_t need = (rank_norm ? 2 : 1) * static_cast<std::size_t>(ctx.world_size());
    const std::size_t batch = this->options().batch_size;
    if (batch < need)
        throw ValueError(fmt::format("Trainer::distribute: batch_size {} gives some of the {} ranks fewer than {} "
                                     "rows{}; use a batch_size of at least {}",
                                     batch, ctx.world_size(), need / static_cast<std::size_t>(ctx.world_size()),
                                     rank_norm ? " (the model's BatchNorm1d takes its statistics over its rank's "
                                                 "rows; dist::SyncBatchNorm1d's over the whole batch need one a rank)"
                                               : "",
                                     need));
    data_parallel_ = std::make_unique<dist::DataParallel<T>>(ctx, model_, options);
    context_ = &ctx;
}

template <class T>
void TrainerOf<T>::before_evaluation() {
    if (data_parallel_) dist::broadcast_buffers(*context_, model_);
}

template <class T>
void TrainerOf<T>::apply_schedule(std::size_t epoch) {
    if (schedule_) optimizer_.set_lr(schedule_->lr_at(static_cast<long>(epoch) - 1));
}

// The history in a checkpoint: "trainer/epoch", "trainer/train_loss", "trainer/seconds" and
// "trainer/metric/<name>" (NaN where an epoch lacks the metric), one value per epoch, and
// "trainer/iteration_loss".
namespace {

template <class T>
Array<T> column(const std::vector<EpochMetrics>& epochs, auto value) {
    Array<T> a = Array<T>::from_shape({epochs.size()});
    for (std::size_t i = 0; i < epochs.size(); ++i) a(i) = static_cast<T>(value(epochs[i]));
    return a;
}

template <class T>
StateDict<T> history_state(const History& h) {
    StateDict<T> out;
    out.emplace_back("epoch", column<T>(h.epochs, [](const EpochMetrics& e) { return e.epoch; }));
    out.emplace_back("train_loss", column<T>(h.epochs, [](const EpochMetrics& e) { return e.train_loss; }));
    out.emplace_back("seconds", column<T>(h.epochs, [](const EpochMetrics& e) { return e.seconds; }));
    std::vector<std::string> names;
    for (const EpochMetrics& e : h.epochs)
        for (const auto& [name, v] : e.metrics)
            if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    for (const std::string& name : names)
        out.emplace_back("metric/" + name, column<T>(h.epochs, [&](const EpochMetrics& e) {
                             return e.find(name).value_or(NAN);
                         }));
    Array<T> losses = Array<T>::from_shape({h.iteration_loss.size()});
    std::copy(h.iteration_loss.begin(), h.iteration_loss.end(), losses.begin());
    out.emplace_back("iteration_loss", std::move(losses));
    return out;
}

template <class T>
History history_from_state(const StateDict<T>& trainer, const std::string& path) {
    std::map<std::string, const Array<T>*> by_name;
    for (const auto& [name, a] : trainer) by_name[name] = &a;
    auto vector_entry = [&](const std::string& name) -> const Array<T>& {
        auto it = by_name.find(name);
        if (it == by_name.end())
            throw IoError(fmt::format("{}: no trainer/{} entry: not a checkpoint written by a Trainer", path, name));
        if (it->second->dimension() != 1)
            throw IoError(fmt::format("{}: trainer/{} has shape {}, expected one value per epoch", path, name,
                                      shape_str(it->second->shape())));
        return *it->second;
    };
    const Array<T>& epoch = vector_entry("epoch");
    const std::size_t n = epoch.size();
    History h;
    h.epochs.resize(n);
    auto finite_column = [&](const std::string& name, double EpochMetrics::*field) {
        const Array<T>& a = vector_entry(name);
        if (a.size() != n)
            throw IoError(fmt::format("{}: trainer/{} has {} values for {} epochs", path, name, a.size(), n));
        for (std::size_t i = 0; i < n; ++i) {
            if (!std::isfinite(a(i)))
                throw IoError(fmt::format("{}: trainer/{} holds {} at epoch {}", path, name, a(i), i + 1));
            h.epochs[i].*field = a(i);
        }
    };
    for (std::size_t i = 0; i < n; ++i) {
        // Epochs run 1, 2, ...; a NaN or negative count would not even convert to an integer.
        if (epoch(i) != static_cast<T>(i + 1))
            throw IoError(fmt::format("{}: trainer/epoch holds {} at row {}, expected {}", path, epoch(i), i, i + 1));
        h.epochs[i].epoch = i + 1;
    }
    finite_column("train_loss", &EpochMetrics::train_loss);
    finite_column("seconds", &EpochMetrics::seconds);
    for (const auto& [name, a] : by_name) {
        if (name.rfind("metric/", 0) != 0) continue;
        const Array<T>& values = vector_entry(name);
        if (values.size() != n)
            throw IoError(fmt::format("{}: trainer/{} has {} values for {} epochs", path, name, values.size(), n));
        for (std::size_t i = 0; i < n; ++i)
            if (!std::isnan(values(i))) h.epochs[i].metrics.emplace_back(name.substr(7), values(i));
    }
    const Array<T>& losses = vector_entry("iteration_loss");
    h.iteration_loss.assign(losses.begin(), losses.end());
    for (std::size_t i = 0; i < h.iteration_loss.size(); ++i)
        if (!std::isfinite(h.iteration_loss[i]))
            throw IoError(fmt::format("{}: trainer/iteration_loss holds {} at {}", path, h.iteration_loss[i], i));
    if (n == 0) throw IoError(fmt::format("{}: the trainer history has no epoch", path));
    return h;
}

}  // namespace

template <class T>
void TrainerOf<T>::save_checkpoint(const std::string& path) const {
    if (!is_main()) return;
    StateDict<T> all = model_.state_dict();
    for (auto& e : nn::to_section("optimizer", optimizer_.state_dict())) all.push_back(std::move(e));
    for (auto& e : nn::to_section("trainer", history_state<T>(history_))) all.push_back(std::move(e));
    nn::save_npz(path, all);
}

template <class T>
void TrainerOf<T>::resume(const std::string& path) {
    // All or nothing: the model is loaded first (nn::load leaves it unchanged if the file does not
    // fit it), then put back as it was if the optimizer's state or the history is refused.
    const StateDict<T> model_before = model_.state_dict();
    const StateDict<T> sections = nn::load_with_sections(path, model_);
    try {
        History restored = history_from_state(nn::from_section("trainer", sections), path);
        try {
            optimizer_.load_state_dict(nn::from_section("optimizer", sections));
        } catch (const Error& e) {
            throw IoError(fmt::format("{}: the optimizer state does not fit {}: {}", path, optimizer_.name(), e.what()));
        }
        history_ = std::move(restored);
    } catch (...) {
        model_.load_state_dict(model_before);
        throw;
    }
}

template class TrainerOf<float>;
template class TrainerOf<double>;

}  // namespace xg::train
