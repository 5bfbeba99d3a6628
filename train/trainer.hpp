#pragma once
// Trainer: mini-batch training of any model on any data set of rows, as Keras' fit() or
// PyTorch Lightning's Trainer do it, with the book's Trainer as one client:
//
//     xg::train::Trainer trainer(model, adam, data.train,
//         [](MyNet& m, xg::data::Batch&& b) { return m.loss(xg::Variable<float>(std::move(b.x)), b.y); },
//         {.epochs = 10, .batch_size = 100});
//     trainer.add_metric("accuracy", xg::train::accuracy);   // per epoch, on each set below
//     trainer.evaluate_on("test", data.test);
//     trainer.add_callback(std::make_shared<xg::train::EarlyStopping>("test_accuracy"));
//     const xg::train::History& history = trainer.fit();
//
// The model is any nn::Module (its forward may take anything: the loss callable calls it); the
// data set is anything with size() and batch(rows) (data::Dataset, data::TensorDataset or a
// user's own); the optimizer any optim::Optimizer; a schedule any optim::LRScheduler. Each epoch
// ends with the metrics on the training set and each evaluation set, a line of progress, the
// metrics CSV and a checkpoint that resume() continues from, bit for bit.
//
// Data-parallel training over MPI ranks (dist/): every rank builds the same trainer and calls
// distribute(ctx) before fit(). Each global batch of batch_size rows is then split over the
// ranks (data::shard), gradients are averaged across them (dist::DataParallel), losses and
// metrics are reduced so every rank sees the numbers of the whole batch and set, and only rank 0
// prints, writes the CSV and checkpoints. A checkpoint resumes on any number of ranks: the
// batches depend on (seed, epoch) alone.
//
// Three layers, so that what does not depend on the model's type is compiled once in libxgrad:
// TrainerBase (the loop, history, callbacks, progress), TrainerOf<T> (the model, optimizer,
// schedule and checkpoints of number type T) and Trainer<Model, Data> (the loss, the metrics and
// the data, in this header).
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dist/data_parallel.hpp"
#include "graph/mode.hpp"
#include "graph/variable.hpp"
#include "nn/module.hpp"
#include "optim/optimizer.hpp"
#include "optim/scheduler.hpp"

namespace xg::train {

// Row indices into a data set.
using Rows = std::span<const std::size_t>;

// A data set the Trainer can draw from: size() rows, and batch(rows) gathers some of them into
// whatever the loss and metric callables take.
template <class D>
concept BatchSource = requires(const D& d, Rows rows) {
    { d.size() } -> std::convertible_to<std::size_t>;
    d.batch(rows);
};
template <BatchSource D>
using batch_of = std::remove_cvref_t<decltype(std::declval<const D&>().batch(Rows{}))>;

// How mini-batches are drawn: shuffled epochs (each row once per epoch), or the book's
// independent random draws (np.random.choice), max(N / batch, 1) of them per epoch.
enum class Sampling { epochs, random };

// The constructor checks these: ValueError naming the option for epochs 0, a batch_size outside
// [1, training set size], or a batch_size of 1 for a model holding a BatchNorm1d.
struct TrainerOptions {
    std::size_t epochs = 20;
    std::size_t batch_size = 100;
    Sampling sampling = Sampling::epochs;
    // Drop an epoch's last batch when it is smaller than batch_size. Without it, a model with
    // batch norm still drops a last batch of a single row (a different one each epoch): one row
    // has no batch variance (BatchNorm1d throws).
    bool drop_last = false;
    // Metrics after each epoch on the first N rows of each set (0: all of them), the book's
    // evaluate_sample_num_per_epoch; evaluated eval_batch_size rows at a time.
    std::size_t evaluate_samples = 0;
    std::size_t eval_batch_size = 1000;
    bool evaluate_train = true;       // also compute the metrics on the training set
    std::uint64_t seed = 0;           // the batches' order
    bool verbose = true;              // progress and one line per epoch on stdout
    std::string label = "train";      // shown on the progress bar
    std::string metrics_csv = {};     // per-epoch metrics, rewritten atomically after each epoch
    std::string checkpoint = {};      // model, optimizer and history, saved after each epoch
    bool stop_on_divergence = true;   // a non-finite loss throws (else training stops there)
};

struct EpochMetrics {
    std::size_t epoch = 0;  // 1-based
    double train_loss = 0;  // mean of the epoch's mini-batch losses
    // "<set>_<metric>" in order: "train_accuracy", "test_accuracy", ...
    std::vector<std::pair<std::string, double>> metrics;
    double seconds = 0;     // wall time of the epoch's training and evaluation

    // The metric `name` ("train_loss" included), or nullopt.
    std::optional<double> find(std::string_view name) const;
    // The same; ValueError naming the metric and those there are when it is absent.
    double at(std::string_view name) const;
};

struct History {
    std::vector<double> iteration_loss;  // every mini-batch's loss, in order
    std::vector<EpochMetrics> epochs;
    bool diverged = false;               // stopped at a non-finite loss
    std::string stop_reason;             // why fit() ended early (a callback's words), else empty
};

struct BatchEnd {
    std::size_t epoch = 0;      // 1-based
    std::size_t iteration = 0;  // within the epoch, 1-based
    std::size_t rows = 0;       // the batch's size
    double loss = 0;
};

class TrainerBase;

// Hooks into fit(). Each is called on the trainer's thread; a callback may call
// trainer.stop(reason) to end training after the current batch, or change the learning rate.
class Callback {
public:
    virtual ~Callback() = default;
    virtual void on_fit_begin(TrainerBase&) {}
    virtual void on_epoch_begin(TrainerBase&, std::size_t /*epoch*/) {}
    virtual void on_batch_end(TrainerBase&, const BatchEnd&) {}
    virtual void on_epoch_end(TrainerBase&, const EpochMetrics&) {}
    virtual void on_fit_end(TrainerBase&) {}
};

// What does not depend on the model, the data or the number type.
class TrainerBase {
public:
    virtual ~TrainerBase() = default;
    TrainerBase(const TrainerBase&) = delete;
    TrainerBase& operator=(const TrainerBase&) = delete;

    // Trains until options.epochs epochs are done in all (counting a resumed run's), a callback
    // stops it, or the loss diverges; returns the history so far.
    const History& fit();
    const History& history() const { return history_; }
    const TrainerOptions& options() const { return options_; }

    void add_callback(std::shared_ptr<Callback> callback);

    // This process's rank and the number of ranks (0 and 1 until distribute()).
    int rank() const;
    int world_size() const;
    bool is_main() const { return rank() == 0; }
    // Ends fit() after the current batch, recording `reason` in the history.
    void stop(std::string reason);

    virtual double lr() const = 0;
    virtual void set_lr(double lr) = 0;
    // Model, optimizer state and history in one .npz, written atomically (options.checkpoint
    // does this after every epoch).
    // Distributed, only rank 0 writes; the others return at once.
    virtual void save_checkpoint(const std::string& path) const = 0;
    // Loads a checkpoint written by a Trainer: fit() then continues after its last epoch. All or
    // nothing: IoError naming the file, the trainer and model unchanged, if it does not fit.
    virtual void resume(const std::string& path) = 0;

protected:
    TrainerBase(std::size_t train_size, bool model_has_batch_norm, bool model_has_rank_batch_norm,
                TrainerOptions options);

    // One optimisation step on the training rows, in three calls: step_loss returns the loss
    // (this rank's rows' mean); step_backward computes the gradients of that loss weighted by
    // `share` (rows here / rows in the batch; 1 alone) and, distributed, reduces them over the
    // ranks into the gradient of the whole batch's mean loss (see dist::DataParallel's
    // Reduction), summing `sums` over the ranks in the same all-reduce; step_update applies
    // them. A non-finite loss (the whole batch's, distributed) is reported before any gradient is
    // applied: step_update is then not called.
    virtual double step_loss(Rows rows) = 0;
    virtual void step_backward(double share, std::span<double> sums) = 0;
    virtual void step_update() = 0;
    // The metrics' sums over rows [begin, end) of evaluation set `set` (0: the training set), in
    // the order of metric_names_, in eval mode without recording a graph.
    virtual std::vector<double> evaluate_rows(std::size_t set, std::size_t begin, std::size_t end) = 0;
    // The metrics' means over the first n rows of set `set`: each rank evaluates its shard.
    std::vector<double> evaluate_means(std::size_t set, std::size_t n);
    // Called on every rank before evaluation (distributed: rank 0's batch-norm statistics are
    // copied to every rank, so that all evaluate one model).
    virtual void before_evaluation() {}
    const dist::Context* context_ = nullptr;  // set by distribute()
    virtual std::size_t set_size(std::size_t set) const = 0;
    virtual void set_training(bool on) = 0;
    // The epoch's learning rate from the schedule, if there is one.
    virtual void apply_schedule(std::size_t epoch) = 0;

    std::vector<std::string> metric_names_;  // as add_metric named them
    std::vector<std::string> set_names_;     // "train", then evaluate_on's names
    History history_;

private:
    bool drops_last_row() const;
    std::size_t min_rows_per_rank() const;
    std::size_t iterations_per_epoch() const;
    void train_epoch(std::size_t epoch, class Progress& progress);
    void end_epoch(EpochMetrics& m, class Progress& progress);

    std::size_t train_size_;
    bool batch_norm_;       // a BatchNorm1d (a batch of one row has no variance)
    bool rank_batch_norm_;  // one that is not a dist::SyncBatchNorm1d (two rows a rank, distributed)
    TrainerOptions options_;
    std::vector<std::shared_ptr<Callback>> callbacks_;
    bool stop_requested_ = false;
};

// The model, optimizer, schedule and checkpoints, for float or double models.
template <class T>
class TrainerOf : public TrainerBase {
public:
    double lr() const override { return optimizer_.lr(); }
    void set_lr(double lr) override { optimizer_.set_lr(lr); }
    void save_checkpoint(const std::string& path) const override;
    void resume(const std::string& path) override;

    // Epoch e (1-based) trains at schedule.lr_at(e - 1): stateless, so a resumed run continues
    // the schedule where it stopped. The schedule must outlive the trainer.
    void set_schedule(const optim::LRScheduler<T>& schedule) { schedule_ = &schedule; }

    nn::Module<T>& model() const { return model_; }
    optim::Optimizer<T>& optimizer() const { return optimizer_; }

    // Trains data-parallel over ctx's ranks (a no-op in a world of one): rank 0's model is
    // broadcast to every rank now (dist::DataParallel), so call it on every rank, after resume()
    // if any. ValueError when batch_size gives a rank no row (two with a BatchNorm1d; one with
    // dist::SyncBatchNorm1d, whose statistics are the whole batch's). Either Reduction gives the
    // whole batch's gradient; the default, sum, weighs each rank's loss by its share of the
    // batch and so spares finish() a pass over the gradients.
    void distribute(const dist::Context& ctx,
                    dist::DataParallelOptions options = {.reduction = dist::Reduction::sum});
    // The gradient averaging, once distribute() has run (its stats() time the all-reduces).
    const dist::DataParallel<T>* data_parallel() const { return data_parallel_.get(); }

protected:
    TrainerOf(nn::Module<T>& model, optim::Optimizer<T>& optimizer, std::size_t train_size, TrainerOptions options);
    // The loss of the training rows (the data set and loss callable are the subclass's).
    virtual Variable<T> batch_loss(Rows rows) = 0;

private:
    double step_loss(Rows rows) final;
    void step_backward(double share, std::span<double> sums) final;
    void step_update() final;
    void before_evaluation() final;
    void set_training(bool on) final { model_.train(on); }
    void apply_schedule(std::size_t epoch) final;

    nn::Module<T>& model_;
    optim::Optimizer<T>& optimizer_;
    const optim::LRScheduler<T>* schedule_ = nullptr;
    Variable<T> loss_;  // between step_loss and step_backward
    std::unique_ptr<dist::DataParallel<T>> data_parallel_;
};

extern template class TrainerOf<float>;
extern template class TrainerOf<double>;

template <class Model, BatchSource Data>
    requires std::derived_from<Model, nn::Module<typename Model::value_type>>
class Trainer : public TrainerOf<typename Model::value_type> {
public:
    using T = typename Model::value_type;
    using Batch = batch_of<Data>;
    // The batch comes as an rvalue, the trainer's to give away: a loss may move its arrays into
    // Variables (Variable<float>(std::move(b.x)), no copy); one taking const Batch& works too.
    using Loss = std::function<Variable<T>(Model&, Batch&&)>;
    // A batch's mean of some quantity (accuracy, a loss); a set's value is the mean over its rows.
    using Metric = std::function<double(Model&, const Batch&)>;

    // The trainer keeps references: model, optimizer and data must outlive it.
    Trainer(Model& model, optim::Optimizer<T>& optimizer, const Data& train, std::type_identity_t<Loss> loss,
            TrainerOptions options = {})
        : TrainerOf<T>(model, optimizer, train.size(), std::move(options)), model_(model), loss_(std::move(loss)) {
        sets_.push_back(&train);
        if (!loss_) throw ValueError("Trainer: the loss callable is empty");
    }
    Trainer(Model&, optim::Optimizer<T>&, Data&&, std::type_identity_t<Loss>, TrainerOptions = {}) = delete;

    // After each epoch, `metric` is computed on the training set (as "train_<name>") and on every
    // evaluation set ("<set>_<name>").
    void add_metric(std::string name, std::type_identity_t<Metric> metric) {
        check_name(name, "add_metric");
        if (!metric) throw ValueError("Trainer::add_metric: the metric '" + name + "' is empty");
        this->metric_names_.push_back(std::move(name));
        metrics_.push_back(std::move(metric));
    }
    // An evaluation set (e.g. "test", "validation"), kept by reference.
    void evaluate_on(std::string name, const Data& data) {
        check_name(name, "evaluate_on");
        this->set_names_.push_back(std::move(name));
        sets_.push_back(&data);
    }
    void evaluate_on(std::string, Data&&) = delete;

    // The metrics on (the first options.evaluate_samples rows of) `data`, in eval mode.
    // Distributed, a collective: every rank calls it and gets the values of the whole set.
    std::vector<std::pair<std::string, double>> evaluate(const Data& data) {
        sets_.push_back(&data);
        std::vector<double> values;
        try {
            values = this->evaluate_means(sets_.size() - 1, evaluated_rows(data));
        } catch (...) {
            sets_.pop_back();
            throw;
        }
        sets_.pop_back();
        std::vector<std::pair<std::string, double>> out;
        for (std::size_t k = 0; k < values.size(); ++k) out.emplace_back(this->metric_names_[k], values[k]);
        return out;
    }

    // One metric's value on `data`; ValueError if there is no metric of that name.
    double evaluate(const Data& data, std::string_view metric) {
        for (const auto& [name, value] : evaluate(data))
            if (name == metric) return value;
        throw ValueError("Trainer::evaluate: no metric '" + std::string(metric) + "' (add_metric adds one)");
    }

private:
    std::size_t evaluated_rows(const Data& data) const {
        const std::size_t n = this->options().evaluate_samples;
        return n ? std::min<std::size_t>(n, data.size()) : data.size();
    }
    void check_name(const std::string& name, const char* fn) const;

    // batch(rows)'s result itself when it returns by value (the library's sources do), a copy
    // when it returns a reference
    Variable<T> batch_loss(Rows rows) override { return loss_(model_, Batch(sets_[0]->batch(rows))); }
    std::size_t set_size(std::size_t set) const override { return evaluated_rows(*sets_.at(set)); }
    std::vector<double> evaluate_rows(std::size_t set, std::size_t begin, std::size_t end) override;

    Model& model_;
    Loss loss_;
    std::vector<Metric> metrics_;
    std::vector<const Data*> sets_;  // the training set, then the evaluation sets
};

template <class Model, BatchSource Data>
    requires std::derived_from<Model, nn::Module<typename Model::value_type>>
void Trainer<Model, Data>::check_name(const std::string& name, const char* fn) const {
    if (name.empty() || name.find_first_of(",/\n\"") != std::string::npos)
        throw ValueError("Trainer::" + std::string(fn) + ": the name '" + name +
                         "' is empty or holds one of , / \" or a newline");
    for (const auto& names : {this->metric_names_, this->set_names_})
        for (const std::string& taken : names)
            if (taken == name) throw ValueError("Trainer::" + std::string(fn) + ": '" + name + "' is already used");
}

template <class Model, BatchSource Data>
    requires std::derived_from<Model, nn::Module<typename Model::value_type>>
std::vector<double> Trainer<Model, Data>::evaluate_rows(std::size_t set, std::size_t begin, std::size_t end) {
    std::vector<double> sums(metrics_.size(), 0.0);
    if (metrics_.empty() || begin >= end) return sums;
    const bool was_training = model_.is_training();
    model_.eval();
    struct Restore {
        Model& m;
        bool on;
        ~Restore() { m.train(on); }
    } restore{model_, was_training};
    NoGradGuard no_grad;
    const std::size_t step = std::max<std::size_t>(this->options().eval_batch_size, 1);
    std::vector<std::size_t> rows;
    for (std::size_t first = begin; first < end; first += step) {
        rows.resize(std::min(step, end - first));
        for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = first + i;
        const Batch batch = sets_[set]->batch(rows);
        for (std::size_t k = 0; k < metrics_.size(); ++k)
            sums[k] += metrics_[k](model_, batch) * static_cast<double>(rows.size());
    }
    return sums;
}

}  // namespace xg::train
