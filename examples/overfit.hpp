#pragma once
// What overfit_weight_decay and overfit_dropout share (Deep Learning from Scratch 6.4): a net of 6
// hidden layers of 100 ReLU units trained on only 300 samples by SGD (lr 0.01, batch 100) until it
// overfits, once without and once with a regulariser, with training and test accuracy after every
// epoch. Training is the book's Trainer loop (train::Trainer, Sampling::random: 300 / 100 = 3 random
// batch draws per epoch); epoch 0 is the untrained net, as the book records accuracy before the
// first step. Both runs start from the same weights and see the same batches.
#include <algorithm>
#include <cmath>
#include <functional>
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

namespace overfit {

namespace nn = xg::nn;
namespace support = xg::support;
namespace train = xg::train;
namespace data = xg::data;
namespace fs = std::filesystem;
namespace flag = support::flag;

struct Experiment {
    std::string program;      // "overfit_weight_decay"
    std::string description;  // --help
    std::string regulariser;  // "weight decay" / "dropout"
    std::string flag;         // "weight-decay" / "dropout"
    std::string symbol;       // "lambda" / "ratio"
    double default_strength;  // 0.1 / 0.2
    std::size_t default_epochs;  // 201 / 301
    std::size_t quick_epochs;
    support::flag::Real strength_range;  // what the regulariser accepts, without 0 (the run without it is the other)
};

struct Curve {
    std::string variant;  // "without" or "with"
    std::string label;    // legend
    std::vector<double> train_acc, test_acc, loss;  // index = epoch; loss[0] is NaN-free 0 (no training yet)
    bool diverged = false;
    // The train - test gap averaged over the last `n` epochs (less noisy than the last one alone).
    double gap(std::size_t n) const {
        const std::size_t e = train_acc.size(), first = e > n ? e - n : 0;
        double s = 0;
        for (std::size_t i = first; i < e; ++i) s += train_acc[i] - test_acc[i];
        return s / static_cast<double>(e - first);
    }
    double mean_last(const std::vector<double>& v, std::size_t n) const {
        const std::size_t e = v.size(), first = e > n ? e - n : 0;
        double s = 0;
        for (std::size_t i = first; i < e; ++i) s += v[i];
        return s / static_cast<double>(e - first);
    }
};

inline Curve train_curve(const Experiment& ex, double strength, const data::Dataset& train_set,
                         const data::Dataset& test_set, std::size_t epochs, std::size_t batch, double lr,
                         std::size_t hidden_layers, std::uint32_t seed) {
    nn::MultiLayerNetOptions options{
        .input_size = train_set.features(),
        .hidden_sizes = std::vector<std::size_t>(hidden_layers, 100),
        .output_size = std::max(train_set.classes(), test_set.classes()),
        .activation = nn::Activation::relu,
        .init = nn::Init::he(),
        .seed = seed,
    };
    if (ex.flag == "weight-decay")
        options.weight_decay = strength;
    else
        options.dropout = strength;
    nn::MultiLayerNet<float> net(options);
    xg::optim::SGD<float> sgd(net.parameters(), {.lr = lr});
    train::Trainer trainer(
        net, sgd, train_set,
        support::multilayer_net_loss,
        support::book_trainer_options(epochs, batch, seed));
    trainer.add_metric("accuracy", train::accuracy);
    trainer.evaluate_on("test", test_set);
    Curve c;
    c.variant = strength > 0 ? "with" : "without";
    c.label = strength > 0 ? fmt::format("{} {} = {}", ex.regulariser, ex.symbol, strength) : "no regularisation";
    c.train_acc.push_back(trainer.evaluate(train_set, "accuracy"));
    c.test_acc.push_back(trainer.evaluate(test_set, "accuracy"));
    c.loss.push_back(0);
    const std::size_t print_every = epochs >= 100 ? 25 : 10;
    auto progress = std::make_shared<train::LambdaCallback>();
    progress->epoch_end = [&](train::TrainerBase&, const train::EpochMetrics& e) {
        if (e.epoch % print_every == 0 || e.epoch == 1 || e.epoch == epochs)
            fmt::print("  {:<28} epoch {:>4}: loss {:.4f}  train acc {:.4f}  test acc {:.4f}\n", c.label, e.epoch,
                       e.train_loss, e.at("train_accuracy"), e.at("test_accuracy"));
        std::fflush(stdout);
    };
    trainer.add_callback(progress);
    const train::History& h = trainer.fit();
    for (const train::EpochMetrics& e : h.epochs) {
        c.train_acc.push_back(e.at("train_accuracy"));
        c.test_acc.push_back(e.at("test_accuracy"));
        c.loss.push_back(e.train_loss);
    }
    c.diverged = h.diverged;
    if (c.diverged) fmt::print("  {}: the loss diverged after epoch {}\n", c.label, h.epochs.size());
    return c;
}

inline int run(int argc, char** argv, const Experiment& ex) {
    return support::guarded_main(ex.program, [&] {
        support::Cli cli(ex.program, ex.description, 1);
        cli.add_data_flag();
        cli.options().add_options()
            (ex.flag.c_str(), flag::value(ex.strength_range)->default_value(ex.default_strength),
             fmt::format("{} {} of the regularised run (the other run has none)", ex.regulariser, ex.symbol).c_str())
            ("epochs", flag::value(flag::Integer<std::size_t>{10, 100'000}),
             fmt::format("epochs, >= 10 (default {}; --quick: {})", ex.default_epochs, ex.quick_epochs).c_str())
            ("train-samples", flag::value(flag::Integer<std::size_t>{1, 100'000'000})->default_value(300),
             "training samples (the first N)")
            ("test-samples", flag::value(flag::Integer<std::size_t>{1, 100'000'000}),
             "test samples evaluated each epoch (default all; --quick: 1000)")
            ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(100), "mini-batch size")
            ("lr", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(0.01), "SGD learning rate")
            ("hidden-layers", flag::value(flag::Integer<std::size_t>{1, 100})->default_value(6),
             "hidden layers of 100 ReLU units");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const double strength = cli.get<double>(ex.flag);
        const std::size_t epochs = cli.get_or<std::size_t>("epochs", common->quick ? ex.quick_epochs : ex.default_epochs);
        const std::size_t batch = cli.get<std::size_t>("batch-size");
        const double lr = cli.get<double>("lr");

        const std::string dir = cli.data_dir();
        const data::TrainTest sets = cli.load_data();
        const data::Dataset train_set =
            support::first_samples(sets.train, cli.get<std::size_t>("train-samples"), "train-samples");
        const data::Dataset test_set =
            cli.given("test-samples")
                ? support::first_samples(sets.test, cli.get<std::size_t>("test-samples"), "test-samples")
                : data::take(sets.test, common->quick ? std::min<std::size_t>(1000, sets.test.size()) : sets.test.size());
        fmt::print("data: the first {} training samples of {}, accuracy on {} test samples; the book uses MNIST digits "
                   "(Fashion-MNIST's accuracies are lower; the train/test gap is the point)\n",
                   train_set.size(), dir, test_set.size());
        fmt::print("net: 784 -> {} x 100 ReLU -> 10 (He init), SGD lr {}, batch {}, {} epochs of {} random batches, "
                   "seed {}\n",
                   cli.get<std::size_t>("hidden-layers"), lr, batch, epochs,
                   std::max<std::size_t>(train_set.size() / batch, 1), common->seed);

        std::vector<Curve> curves;
        for (const double s : {0.0, strength}) {
            fmt::print("{}:\n", s > 0 ? fmt::format("with {} {} = {}", ex.regulariser, ex.symbol, s) : "without regularisation");
            curves.push_back(train_curve(ex, s, train_set, test_set, epochs, batch, lr,
                                         cli.get<std::size_t>("hidden-layers"), common->seed));
        }
        const Curve& plain = curves[0];
        const Curve& reg = curves[1];

        train::CsvWriter csv(common->out / "accuracy.csv", {"variant", "epoch", "train_accuracy", "test_accuracy", "train_loss"});
        for (const Curve& c : curves)
            for (std::size_t e = 0; e < c.train_acc.size(); ++e)
                csv.row({c.variant, e, c.train_acc[e], c.test_acc[e], c.loss[e]});
        csv.close();
        constexpr std::size_t last = 10;
        train::CsvWriter sum(common->out / "summary.csv",
                             {"variant", "strength", "final_train_accuracy", "final_test_accuracy",
                              "mean_train_accuracy_last_10", "mean_test_accuracy_last_10", "gap_last_10", "diverged"});
        fmt::print("{:<28} {:>12} {:>12} {:>22}\n", "", "train acc", "test acc", "gap (last 10 epochs)");
        for (const Curve& c : curves) {
            sum.row({c.variant, c.variant == "with" ? strength : 0.0, c.train_acc.back(), c.test_acc.back(),
                     c.mean_last(c.train_acc, last), c.mean_last(c.test_acc, last), c.gap(last), c.diverged ? 1 : 0});
            fmt::print("{:<28} {:>12.4f} {:>12.4f} {:>22.4f}\n", c.label, c.train_acc.back(), c.test_acc.back(),
                       c.gap(last));
        }
        sum.close();

        const fs::path path = common->out / "accuracy.csv";
        support::Figure fig{.title = fmt::format("Overfitting {} training samples ({} hidden layers of 100, SGD lr {}), "
                                               "Fashion-MNIST: training and test accuracy per epoch",
                                               train_set.size(), cli.get<std::size_t>("hidden-layers"), lr),
                          .rows = 1, .cols = 2, .width = 1500, .height = 600, .panels = {}};
        for (const Curve& c : curves) {
            fig.panels.push_back({
                .title = fmt::format("{}: final train {:.3f}, test {:.3f} (gap {:.3f})", c.label, c.train_acc.back(),
                                     c.test_acc.back(), c.gap(last)),
                .x = {.label = "epochs", .min = 0.0, .max = static_cast<double>(epochs)},
                .y = {.label = "accuracy", .min = 0.0, .max = 1.0},
                .series = {{.csv = path, .x = "epoch", .y = "train_accuracy", .title = "train",
                            .where = {{"variant", c.variant}}, .color = "#1f77b4", .line_width = 2},
                           {.csv = path, .x = "epoch", .y = "test_accuracy", .title = "test",
                            .where = {{"variant", c.variant}}, .color = "#ff7f0e", .line_width = 2}},
                .contours = {},
                .legend = "bottom right",
            });
        }
        support::save_png(fig, common->out / "accuracy.png");

        support::verdict("without regularisation the net overfits: train accuracy near 1.0 (>= 0.95), test far below "
                       "(gap >= 0.15)",
                       fmt::format("final train {:.4f}, test {:.4f}; gap over the last {} epochs {:.4f}",
                                   plain.train_acc.back(), plain.test_acc.back(), last, plain.gap(last)),
                       plain.train_acc.back() >= 0.95 && plain.gap(last) >= 0.15);
        support::verdict(fmt::format("{} ({} {}) shrinks the train/test gap", ex.regulariser, ex.symbol, strength),
                       fmt::format("gap over the last {} epochs {:.4f} with vs {:.4f} without (train {:.4f}, test {:.4f} "
                                   "with)",
                                   last, reg.gap(last), plain.gap(last), reg.train_acc.back(), reg.test_acc.back()),
                       !reg.diverged && reg.gap(last) < plain.gap(last));
        fmt::print("wrote {}: accuracy.csv, summary.csv, accuracy.png\n", common->out.string());
        return 0;
    });
}

}  // namespace overfit
