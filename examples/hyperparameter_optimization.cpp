// Deep Learning from Scratch 6.5 (figure 6-24, hyperparameter_optimization.py): random search for
// the learning rate and the weight decay, sampled on a log scale, lr = 10^U(-6, -2) and
// wd = 10^U(-8, -4). 500 training samples, shuffled, of which 20% are split off for validation
// (never the test set); 6 hidden layers of 100 ReLU units, SGD, batch 100, 50 epochs per trial,
// 100 trials, ranked by the final validation accuracy. Then, as the book suggests, a second stage
// samples again within the ranges of the best trials.
//
// Training is the book's Trainer loop (train::Trainer, Sampling::random: 400 / 100 = 4 random batch
// draws per epoch). A trial whose loss becomes non-finite stops and is recorded as diverged
// (stop_on_divergence = false). Every trial starts from its own weight draw (seed + trial), as the
// book builds a new network per trial.
//
// Writes to --out: trials.csv (one row per trial: stage, lr, wd, final accuracies, diverged),
// curves.csv (validation and training accuracy per epoch of every trial), best_curves.png (the best
// 20 of stage 1 in a 4x5 grid, as the book) and search.png (validation accuracy against lr and wd).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <utility>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "data/dataset.hpp"
#include "nn/nn.hpp"
#include "optim/sgd.hpp"
#include "support/cli.hpp"
#include "train/csv.hpp"
#include "support/plot.hpp"
#include "support/side_by_side.hpp"
#include "train/train.hpp"

namespace {

namespace flag = xg::support::flag;
namespace nn = xg::nn;
namespace support = xg::support;
namespace train = xg::train;
namespace data = xg::data;
namespace fs = std::filesystem;

struct Range {
    double lo, hi;  // log10 bounds
};

struct Trial {
    int stage = 1;
    std::size_t index = 0;  // within its stage, 1-based
    double lr = 0, wd = 0;
    std::vector<double> val_acc, train_acc;  // per epoch (1..epochs)
    bool diverged = false;
    double val() const { return val_acc.empty() ? 0.0 : val_acc.back(); }
    double train_final() const { return train_acc.empty() ? 0.0 : train_acc.back(); }
};

Trial run_trial(int stage, std::size_t index, double lr, double wd, const data::Dataset& train_set,
                const data::Dataset& val_set, std::size_t epochs, std::size_t batch, std::size_t hidden_layers,
                std::uint64_t seed) {
    nn::MultiLayerNet<float> net({
        .input_size = train_set.features(),
        .hidden_sizes = std::vector<std::size_t>(hidden_layers, 100),
        .output_size = std::max(train_set.classes(), val_set.classes()),
        .activation = nn::Activation::relu,
        .init = nn::Init::he(),
        .weight_decay = wd,
        .seed = seed,
    });
    xg::optim::SGD<float> sgd(net.parameters(), {.lr = lr});
    train::Trainer trainer(
        net, sgd, train_set,
        support::multilayer_net_loss,
        support::book_trainer_options(epochs, batch, seed));
    trainer.add_metric("accuracy", train::accuracy);
    trainer.evaluate_on("validation", val_set);
    const train::History& h = trainer.fit();
    Trial t{stage, index, lr, wd, {}, {}, h.diverged};
    for (const train::EpochMetrics& e : h.epochs) {
        t.val_acc.push_back(e.at("validation_accuracy"));
        t.train_acc.push_back(e.at("train_accuracy"));
    }
    // A diverged trial has no meaningful accuracy after it stopped: it ranks with what it had, and
    // its curve ends there.
    return t;
}

std::vector<Trial> search(int stage, std::size_t trials, Range lr_range, Range wd_range, const data::Dataset& train_set,
                          const data::Dataset& val_set, std::size_t epochs, std::size_t batch, std::size_t hidden_layers,
                          std::uint64_t seed) {
    std::mt19937_64 rng(seed * 1000003ULL + static_cast<std::uint64_t>(stage));
    // U[0, 1) from the top 53 bits: the same draws on every standard library (std's distributions differ).
    const auto u = [](std::mt19937_64& g) { return static_cast<double>(g() >> 11) * 0x1.0p-53; };
    std::vector<Trial> out;
    fmt::print("stage {}: {} trials, lr = 10^U({:.2f}, {:.2f}), weight decay = 10^U({:.2f}, {:.2f})\n", stage, trials,
               lr_range.lo, lr_range.hi, wd_range.lo, wd_range.hi);
    for (std::size_t i = 1; i <= trials; ++i) {
        const double lr = std::pow(10.0, lr_range.lo + (lr_range.hi - lr_range.lo) * u(rng));
        const double wd = std::pow(10.0, wd_range.lo + (wd_range.hi - wd_range.lo) * u(rng));
        out.push_back(run_trial(stage, i, lr, wd, train_set, val_set, epochs, batch, hidden_layers,
                                seed + static_cast<std::uint64_t>(stage) * 100000 + i));
        const Trial& t = out.back();
        if (i % 10 == 0 || i == trials || t.diverged)
            fmt::print("  trial {:>3}/{}: val acc {:.3f} | lr {:.3g}, weight decay {:.3g}{}\n", i, trials, t.val(), t.lr,
                       t.wd, t.diverged ? "  (diverged)" : "");
        std::fflush(stdout);
    }
    return out;
}

std::vector<const Trial*> ranked(const std::vector<Trial>& trials) {
    std::vector<const Trial*> r;
    for (const Trial& t : trials) r.push_back(&t);
    std::stable_sort(r.begin(), r.end(), [](const Trial* a, const Trial* b) {
        if (a->diverged != b->diverged) return !a->diverged;
        return a->val() > b->val();
    });
    return r;
}

void print_best(const std::vector<const Trial*>& r, std::size_t n) {
    for (std::size_t i = 0; i < std::min(n, r.size()); ++i)
        fmt::print("Best-{:<3} (val acc: {:.3f}) | lr: {:.4g}, weight decay: {:.4g}{}\n", i + 1, r[i]->val(), r[i]->lr,
                   r[i]->wd, r[i]->diverged ? " (diverged)" : "");
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("hyperparameter_optimization", [&] {
        support::Cli cli("hyperparameter_optimization",
                       "Random search for the learning rate and weight decay on a validation split "
                       "(Deep Learning from Scratch 6.5).",
                       1);
        cli.add_data_flag();
        // log10 of a rate: 10^-30 .. 10^3 covers every rate worth trying and stays finite in float.
        const flag::Interval log_range{flag::Real{.min = -30, .max = 3}};
        cli.options().add_options()
            ("samples", flag::value(flag::Integer<std::size_t>{2, 100'000'000})->default_value(500),
             "the first N training samples, before the split")
            ("validation", flag::value(flag::Real{.min = 0, .max = 1, .min_open = true, .max_open = true})->default_value(0.2),
             "fraction split off for validation, in (0, 1)")
            ("trials", flag::value(flag::Integer<std::size_t>{2, 100'000}), "trials of stage 1 (default 100; --quick: 12)")
            ("trials-stage2", flag::value(flag::Integer<std::size_t>{0, 100'000}),
             "trials of stage 2, in the narrowed ranges (default 30; --quick: 6; 0: none)")
            ("top", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(10),
             "stage 2 narrows to the ranges of the best N of stage 1 (at most trials/5)")
            ("epochs", flag::value(flag::Integer<std::size_t>{1, 100'000}), "epochs per trial (default 50; --quick: 15)")
            ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(100), "mini-batch size")
            ("hidden-layers", flag::value(flag::Integer<std::size_t>{1, 100})->default_value(6),
             "hidden layers of 100 ReLU units")
            ("lr-range", flag::value(log_range)->default_value({-6, -2}, "-6,-2"),
             "log10 range of the learning rate, 'lo,hi' in [-30, 3]")
            ("wd-range", flag::value(log_range)->default_value({-8, -4}, "-8,-4"),
             "log10 range of the weight decay, 'lo,hi' in [-30, 3]");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const bool quick = common->quick;
        const std::size_t trials = cli.get_or<std::size_t>("trials", quick ? 12 : 100);
        const std::size_t trials2 = cli.get_or<std::size_t>("trials-stage2", quick ? 6 : 30);
        const std::size_t epochs = cli.get_or<std::size_t>("epochs", quick ? 15 : 50);
        // The best `top` trials set stage 2's ranges and are judged by the verdict; never more than a fifth of the
        // trials (with 12 trials in --quick, the best 2), so that "the best" stays a selection.
        const std::size_t top = std::max<std::size_t>(2, std::min(cli.get<std::size_t>("top"), trials / 5));
        const std::size_t batch = cli.get<std::size_t>("batch-size");
        const std::size_t hidden = cli.get<std::size_t>("hidden-layers");
        const auto as_range = [](const std::pair<double, double>& p) { return Range{p.first, p.second}; };
        const Range lr_range = as_range(cli.get<std::pair<double, double>>("lr-range"));
        const Range wd_range = as_range(cli.get<std::pair<double, double>>("wd-range"));

        const std::string dir = cli.data_dir();
        const data::TrainTest sets = cli.load_data();
        const data::Dataset pool = support::first_samples(sets.train, cli.get<std::size_t>("samples"), "samples");
        const auto [train_set, val_set] = data::split(pool, cli.get<double>("validation"), common->seed);
        if (val_set.size() == 0 || train_set.size() == 0)
            throw xg::ValueError(fmt::format("--validation {} of --samples {} leaves {} samples for validation and {} for "
                                             "training: both need at least one",
                                             cli.get<double>("validation"), pool.size(), val_set.size(),
                                             train_set.size()));
        fmt::print("data: the first {} training samples of {}, shuffled: {} for training, {} for validation (the test set "
                   "is not used); the book uses MNIST digits, so its accuracies are higher\n",
                   pool.size(), dir, train_set.size(), val_set.size());
        fmt::print("net: 784 -> {} x 100 ReLU -> 10, SGD, batch {}, {} epochs of {} random batches per trial\n", hidden,
                   batch, epochs, std::max<std::size_t>(train_set.size() / batch, 1));

        const auto start = std::chrono::steady_clock::now();
        const std::vector<Trial> all = search(1, trials, lr_range, wd_range, train_set, val_set, epochs, batch, hidden, common->seed);
        const std::vector<const Trial*> r1 = ranked(all);
        fmt::print("\n=========== Hyper-Parameter Optimization Result (stage 1) ===========\n");
        print_best(r1, 20);

        // Stage 2: the log ranges spanned by the best `top` trials, widened by 10% of their width.
        Range lr2{1e9, -1e9}, wd2{1e9, -1e9};
        for (std::size_t i = 0; i < top; ++i) {
            lr2.lo = std::min(lr2.lo, std::log10(r1[i]->lr));
            lr2.hi = std::max(lr2.hi, std::log10(r1[i]->lr));
            wd2.lo = std::min(wd2.lo, std::log10(r1[i]->wd));
            wd2.hi = std::max(wd2.hi, std::log10(r1[i]->wd));
        }
        for (Range* rg : {&lr2, &wd2}) {
            const double pad = std::max(0.1 * (rg->hi - rg->lo), 0.05);
            rg->lo -= pad;
            rg->hi += pad;
        }
        std::vector<Trial> stage2;
        if (trials2 > 0) {
            fmt::print("\nnarrowing to the ranges of the best {} of stage 1 (widened by 10%):\n", top);
            stage2 = search(2, trials2, lr2, wd2, train_set, val_set, epochs, batch, hidden, common->seed);
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::vector<const Trial*> r2 = ranked(stage2);
        if (!stage2.empty()) {
            fmt::print("\n=========== Hyper-Parameter Optimization Result (stage 2) ===========\n");
            print_best(r2, 10);
        }
        fmt::print("{} trials in {:.1f}s\n", trials + stage2.size(), seconds);

        // CSV files.
        // (r1 and r2 point into `all` and `stage2`: neither may change from here on.)
        train::CsvWriter tcsv(common->out / "trials.csv", {"stage", "trial", "rank_in_stage", "lr", "weight_decay",
                                                          "final_val_accuracy", "final_train_accuracy", "diverged",
                                                          "epochs_done"});
        train::CsvWriter ccsv(common->out / "curves.csv", {"stage", "trial", "rank_in_stage", "epoch", "val_accuracy",
                                                          "train_accuracy"});
        for (const auto* ranking : {&r1, &r2})
            for (std::size_t k = 0; k < ranking->size(); ++k) {
                const Trial& t = *(*ranking)[k];
                tcsv.row({t.stage, t.index, k + 1, t.lr, t.wd, t.val(), t.train_final(), t.diverged ? 1 : 0, t.val_acc.size()});
                for (std::size_t e = 0; e < t.val_acc.size(); ++e)
                    ccsv.row({t.stage, t.index, k + 1, e + 1, t.val_acc[e], t.train_acc[e]});
            }
        tcsv.close();
        ccsv.close();

        // Figures: the best 20 of stage 1, 5 columns (the book's layout), and the search space.
        const std::size_t shown = std::min<std::size_t>(20, r1.size());
        const std::size_t cols = 5, rows = (shown + cols - 1) / cols;
        support::Figure fig{.title = fmt::format("Best {} of {} random trials (stage 1): validation (blue) and training "
                                               "(orange) accuracy per epoch",
                                               shown, trials),
                          .rows = rows, .cols = cols, .width = 1750, .height = 300 * static_cast<int>(rows) + 60,
                          .panels = {}};
        for (std::size_t k = 0; k < shown; ++k) {
            const Trial& t = *r1[k];
            const support::Filter where = {{"stage", "1"}, {"rank_in_stage", std::to_string(k + 1)}};
            fig.panels.push_back({
                .title = fmt::format("Best-{}: val {:.2f}\nlr {:.2g}, wd {:.2g}", k + 1, t.val(), t.lr, t.wd),
                .x = {.label = "epoch", .min = 0.0, .max = static_cast<double>(epochs)},
                .y = {.label = "accuracy", .min = 0.0, .max = 1.0},
                .series = {{.csv = common->out / "curves.csv", .x = "epoch", .y = "val_accuracy", .title = "validation",
                            .where = where, .color = "#1f77b4", .line_width = 2},
                           {.csv = common->out / "curves.csv", .x = "epoch", .y = "train_accuracy", .title = "train",
                            .where = where, .color = "#ff7f0e", .line_width = 1}},
                .contours = {},
                .legend = k == 0 ? "top left" : "off",
                .commands = {"set ytics 0.2"},
            });
        }
        support::save_png(fig, common->out / "best_curves.png");

        const fs::path tpath = common->out / "trials.csv";
        support::Figure sfig{.title = "Random search: final validation accuracy of every trial", .rows = 1, .cols = 2,
                           .width = 1500, .height = 600, .panels = {}};
        for (const auto& [column, label] : {std::pair{"lr", "learning rate (log scale)"},
                                            std::pair{"weight_decay", "weight decay lambda (log scale)"}}) {
            sfig.panels.push_back({
                .title = fmt::format("validation accuracy vs {}", column),
                .x = {.label = label, .log = true},
                .y = {.label = "final validation accuracy", .min = 0.0, .max = 1.0},
                .series = {{.csv = tpath, .x = column, .y = "final_val_accuracy", .title = "stage 1 (wide ranges)",
                            .style = support::Style::points, .where = {{"stage", "1"}}, .color = "#1f77b4"},
                           {.csv = tpath, .x = column, .y = "final_val_accuracy", .title = "stage 2 (narrowed)",
                            .style = support::Style::points, .where = {{"stage", "2"}}, .color = "#d62728"}},
                .contours = {},
                .legend = "top left",
                .commands = {"set format x \"%.0e\"", "set pointsize 1.5"},
            });
        }
        support::save_png(sfig, common->out / "search.png");

        // Verdicts.
        const std::size_t k = top;
        std::size_t in_band = 0;
        double lo = 1, hi = 0;
        for (std::size_t i = 0; i < k; ++i) {
            in_band += r1[i]->lr >= 1e-3 && r1[i]->lr <= 1e-2;
            lo = std::min(lo, r1[i]->lr);
            hi = std::max(hi, r1[i]->lr);
        }
        support::verdict(fmt::format("the best trials' learning rates lie in a narrow band, 1e-3..1e-2 as the book finds "
                                   "(at least {} of the best {})",
                                   (8 * k + 9) / 10, k),
                       fmt::format("{}/{} in [1e-3, 1e-2]; their range {:.2g}..{:.2g}", in_band, k, lo, hi),
                       10 * in_band >= 8 * k);
        std::size_t wd_in_band = 0;
        double wd_lo = 1, wd_hi = 0;
        for (std::size_t i = 0; i < k; ++i) {
            wd_in_band += r1[i]->wd >= 1e-8 && r1[i]->wd <= 1e-6;
            wd_lo = std::min(wd_lo, r1[i]->wd);
            wd_hi = std::max(wd_hi, r1[i]->wd);
        }
        support::verdict(fmt::format("the book: good weight decays lie in 1e-8..1e-6 (at least {} of the best {})",
                                   (8 * k + 9) / 10, k),
                       fmt::format("{}/{} in [1e-8, 1e-6]; their range {:.2g}..{:.2g}", wd_in_band, k, wd_lo, wd_hi),
                       10 * wd_in_band >= 8 * k);
        if (10 * wd_in_band < 8 * k)
            fmt::print("note: the best trials' weight decays spread over the whole sampled range: with {} training "
                       "samples and {} epochs the decay hardly changes the validation accuracy, which the learning rate "
                       "decides (search.png)\n",
                       train_set.size(), epochs);
        const std::size_t classes = std::max(train_set.classes(), val_set.classes());
        support::verdict(fmt::format("random search finds a validation accuracy well above chance (1/{} = {:.2f}): at "
                                   "least 0.5",
                                   classes, 1.0 / static_cast<double>(classes)),
                       fmt::format("best val acc {:.3f} (lr {:.3g}, wd {:.3g})", r1[0]->val(), r1[0]->lr, r1[0]->wd),
                       r1[0]->val() >= 0.5);
        std::size_t diverged = 0;
        for (const std::vector<Trial>* stage : std::initializer_list<const std::vector<Trial>*>{&all, &stage2})
            for (const Trial& t : *stage) diverged += t.diverged;
        fmt::print("diverged trials: {} of {}\n", diverged, all.size() + stage2.size());
        if (!stage2.empty()) {
            std::vector<double> v1, v2;
            for (const Trial* t : r1) v1.push_back(t->val());
            for (const Trial* t : r2) v2.push_back(t->val());
            support::verdict("narrowing the ranges around the best concentrates the search: stage 2's median validation "
                           "accuracy is above stage 1's",
                           fmt::format("median {:.3f} (stage 2) vs {:.3f} (stage 1); best {:.3f} vs {:.3f}", median(v2),
                                       median(v1), r2[0]->val(), r1[0]->val()),
                           median(v2) > median(v1));
        }
        fmt::print("wrote {}: trials.csv, curves.csv, best_curves.png, search.png\n", common->out.string());
        return 0;
    });
}
