// Deep Learning from Scratch 6.3.2 (figure 6-19, batch_norm_test.py): 1000 training samples, a net
// of 5 hidden layers of 100 ReLU units, SGD lr 0.01, batch 100, 20 epochs, with and without batch
// normalisation, for 16 weight-init scales logspace(0, -4, 16) (weights N(0, scale^2)). The book:
// batch norm learns faster and depends far less on the initial scale.
//
// Training is the book's loop, through train::Trainer with Sampling::random: each epoch is
// N / batch = 10 independent random draws of a batch (np.random.choice), and the training accuracy
// over all 1000 samples is evaluated (in eval mode: running statistics) after every epoch. The book
// also records it before the first step, so its curves start at epoch 0; so do ours (epoch 0 is
// the untrained net). Both nets of a scale start from the same weight draws and see the same
// batches.
//
// Writes to --out: accuracy.csv (per scale, variant and epoch), summary.csv (final accuracies),
// accuracy.png (a 4x4 grid of panels, one per scale, as the book) and final_accuracy.png.
#include <algorithm>
#include <cmath>
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
namespace optim = xg::optim;
namespace support = xg::support;
namespace train = xg::train;
namespace data = xg::data;
namespace fs = std::filesystem;

struct Run {
    double scale;
    bool batchnorm;
    std::vector<double> accuracy;  // epoch 0 (before training), 1, ..., epochs
    bool diverged = false;
    std::size_t diverged_epoch = 0;  // the epoch in which the loss became non-finite
    double final() const { return accuracy.back(); }
};

Run train_one(const data::Dataset& train_set, double scale, bool batchnorm, std::size_t epochs, std::size_t batch,
              double lr, std::size_t hidden_layers, std::uint32_t seed) {
    nn::MultiLayerNet<float> net({
        .input_size = train_set.features(),
        .hidden_sizes = std::vector<std::size_t>(hidden_layers, 100),
        .output_size = train_set.classes(),
        .activation = nn::Activation::relu,
        .init = nn::Init::normal(scale),
        .use_batchnorm = batchnorm,
        .seed = seed,
    });
    optim::SGD<float> sgd(net.parameters(), {.lr = lr});
    train::Trainer trainer(
        net, sgd, train_set,
        support::multilayer_net_loss,
        support::book_trainer_options(epochs, batch, seed));
    trainer.add_metric("accuracy", train::accuracy);
    Run run{scale, batchnorm, {trainer.evaluate(train_set, "accuracy")}};
    const train::History& h = trainer.fit();
    for (const train::EpochMetrics& e : h.epochs) run.accuracy.push_back(e.at("train_accuracy"));
    run.diverged = h.diverged;
    // A diverged run stopped training in the epoch after its last complete one: its accuracy there (what the
    // net, possibly with non-finite weights, predicts) stands for the remaining epochs, as the book's loop would
    // go on evaluating a net that no longer changes.
    if (run.diverged) {
        run.diverged_epoch = run.accuracy.size();
        const double stuck = trainer.evaluate(train_set, "accuracy");
        while (run.accuracy.size() < epochs + 1) run.accuracy.push_back(stuck);
    }
    return run;
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
}

double stddev(const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size()));
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("batch_norm_test", [&] {
        support::Cli cli("batch_norm_test",
                       "Training accuracy with and without batch normalisation for 16 weight-init scales "
                       "(Deep Learning from Scratch 6.3.2).",
                       1);
        cli.add_data_flag();
        cli.options().add_options()
            ("train-samples", flag::value(flag::Integer<std::size_t>{2, 100'000'000})->default_value(1000),
             "training samples (the first N)")
            ("epochs", flag::value(flag::Integer<std::size_t>{1, 100'000}), "epochs (default 20; --quick: 10)")
            ("scales", flag::value(flag::Integer<std::size_t>{2, 1000}),
             "number of init scales in logspace(0, -4) (default 16; --quick: 4)")
            ("batch-size", flag::value(flag::Integer<std::size_t>{2, 100'000})->default_value(100),
             "mini-batch size (>= 2: batch norm needs two rows)")
            ("lr", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(0.01), "SGD learning rate")
            ("hidden-layers", flag::value(flag::Integer<std::size_t>{1, 100})->default_value(5),
             "hidden layers of 100 ReLU units");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const bool quick = common->quick;
        const std::size_t epochs = cli.get_or<std::size_t>("epochs", quick ? 10 : 20);
        const std::size_t scales = cli.get_or<std::size_t>("scales", quick ? 4 : 16);
        const std::size_t batch = cli.get<std::size_t>("batch-size");
        const double lr = cli.get<double>("lr");

        const std::string dir = cli.data_dir();
        const data::TrainTest sets = cli.load_data();
        const data::Dataset train_set =
            support::first_samples(sets.train, cli.get<std::size_t>("train-samples"), "train-samples");
        fmt::print("data: the first {} training samples of {}; the book uses MNIST digits (absolute accuracies differ)\n",
                   train_set.size(), dir);
        fmt::print("net: 784 -> {} x 100 ReLU -> 10, SGD lr {}, batch {}, {} epochs of {} random batches; weights "
                   "N(0, scale^2), scale = logspace(0, -4, {}); seed {}\n",
                   cli.get<std::size_t>("hidden-layers"), lr, batch, epochs, std::max<std::size_t>(train_set.size() / batch, 1),
                   scales, common->seed);
        fmt::print("{:>3} {:>10}  {:>26}  {:>26}\n", "", "scale", "train acc, batch norm", "train acc, without");
        fmt::print("{:>3} {:>10}  {:>8} {:>8} {:>8}  {:>8} {:>8} {:>8}\n", "#", "", "epoch 1", "mid", "final", "epoch 1",
                   "mid", "final");

        std::vector<Run> runs;
        std::vector<double> bn_final, plain_final;
        train::CsvWriter acc_csv(common->out / "accuracy.csv", {"scale_index", "scale", "variant", "epoch", "train_accuracy"});
        train::CsvWriter sum_csv(common->out / "summary.csv",
                                 {"scale_index", "scale", "final_accuracy_batchnorm", "final_accuracy_without",
                                  "diverged_batchnorm", "diverged_without"});
        for (std::size_t i = 0; i < scales; ++i) {
            const double scale = std::pow(10.0, -4.0 * static_cast<double>(i) / static_cast<double>(scales - 1));
            const Run bn = train_one(train_set, scale, true, epochs, batch, lr, cli.get<std::size_t>("hidden-layers"),
                                     common->seed);
            const Run plain = train_one(train_set, scale, false, epochs, batch, lr, cli.get<std::size_t>("hidden-layers"),
                                        common->seed);
            for (const Run* r : {&bn, &plain})
                for (std::size_t e = 0; e < r->accuracy.size(); ++e)
                    acc_csv.row({i + 1, scale, r->batchnorm ? "batchnorm" : "without", e, r->accuracy[e]});
            sum_csv.row({i + 1, scale, bn.final(), plain.final(), bn.diverged ? 1 : 0, plain.diverged ? 1 : 0});
            fmt::print("{:>3} {:>10.3g}  {:>8.3f} {:>8.3f} {:>8.3f}  {:>8.3f} {:>8.3f} {:>8.3f}{}\n", i + 1, scale,
                       bn.accuracy[1], bn.accuracy[epochs / 2], bn.final(), plain.accuracy[1], plain.accuracy[epochs / 2],
                       plain.final(),
                       bn.diverged || plain.diverged
                           ? fmt::format("  (loss diverged:{}{})",
                                         bn.diverged ? fmt::format(" batch norm in epoch {}", bn.diverged_epoch) : "",
                                         plain.diverged ? fmt::format(" without in epoch {}", plain.diverged_epoch) : "")
                           : "");
            std::fflush(stdout);
            bn_final.push_back(bn.final());
            plain_final.push_back(plain.final());
            runs.push_back(bn);
            runs.push_back(plain);
        }
        acc_csv.close();
        sum_csv.close();

        // Figures: one panel per scale, as the book's figure 6-19 (4x4 for 16 scales).
        const std::size_t cols = static_cast<std::size_t>(std::ceil(std::sqrt(static_cast<double>(scales))));
        const std::size_t rows = (scales + cols - 1) / cols;
        const fs::path acc_path = common->out / "accuracy.csv";
        support::Figure fig{.title = fmt::format("Training accuracy with (blue) and without (orange) batch norm, weights "
                                               "N(0, W^2); {} Fashion-MNIST samples, SGD lr {}",
                                               train_set.size(), lr),
                          .rows = rows, .cols = cols, .width = 420 * static_cast<int>(cols),
                          .height = 330 * static_cast<int>(rows), .panels = {}};
        for (std::size_t i = 0; i < scales; ++i) {
            const double scale = runs[2 * i].scale;
            fig.panels.push_back({
                .title = fmt::format("{}: W = {:.3g}", i + 1, scale),
                .x = {.label = "epochs", .min = 0.0, .max = static_cast<double>(epochs)},
                .y = {.label = "accuracy", .min = 0.0, .max = 1.0},
                .series = {{.csv = acc_path, .x = "epoch", .y = "train_accuracy", .title = "Batch Normalization",
                            .where = {{"scale_index", std::to_string(i + 1)}, {"variant", "batchnorm"}},
                            .color = "#1f77b4", .line_width = 2},
                           {.csv = acc_path, .x = "epoch", .y = "train_accuracy", .title = "Normal (without BatchNorm)",
                            .where = {{"scale_index", std::to_string(i + 1)}, {"variant", "without"}},
                            .color = "#ff7f0e", .line_width = 2}},
                .contours = {},
                .legend = i + 1 == scales ? "bottom right font \",8\"" : "off",
                .commands = {"set ytics 0.2"},
            });
        }
        support::save_png(fig, common->out / "accuracy.png");

        support::Panel fin{.title = fmt::format("Final training accuracy after {} epochs vs init scale", epochs),
                         .x = {.label = "weight init std W (log scale)", .log = true},
                         .y = {.label = "final training accuracy", .min = 0.0, .max = 1.0},
                         .series = {{.csv = common->out / "summary.csv", .x = "scale", .y = "final_accuracy_batchnorm",
                                     .title = "with batch norm", .style = support::Style::linespoints, .color = "#1f77b4",
                                     .line_width = 2},
                                    {.csv = common->out / "summary.csv", .x = "scale", .y = "final_accuracy_without",
                                     .title = "without", .style = support::Style::linespoints, .color = "#ff7f0e",
                                     .line_width = 2}},
                         .contours = {},
                         .legend = "top left"};
        support::save_png({.title = "", .rows = 1, .cols = 1, .width = 900, .height = 550, .panels = {fin}},
                        common->out / "final_accuracy.png");

        std::size_t bn_better = 0;
        for (std::size_t i = 0; i < scales; ++i) bn_better += bn_final[i] > plain_final[i];
        // "Learns faster": also the accuracy after the first few epochs, averaged over the scales.
        const std::size_t early = std::min<std::size_t>(5, epochs);
        std::vector<double> bn_early, plain_early;
        for (std::size_t i = 0; i < scales; ++i) {
            bn_early.push_back(runs[2 * i].accuracy[early]);
            plain_early.push_back(runs[2 * i + 1].accuracy[early]);
        }
        support::verdict("batch norm reaches a higher final training accuracy for most scales (more than half)",
                       fmt::format("higher with batch norm for {}/{} scales; mean final accuracy {:.3f} vs {:.3f}",
                                   bn_better, scales, mean(bn_final), mean(plain_final)),
                       2 * bn_better > scales);
        support::verdict(fmt::format("batch norm learns faster: higher mean accuracy after epoch {} over the scales", early),
                       fmt::format("mean accuracy after epoch {}: {:.3f} with, {:.3f} without", early, mean(bn_early),
                                   mean(plain_early)),
                       mean(bn_early) > mean(plain_early));
        const auto [bn_lo, bn_hi] = std::minmax_element(bn_final.begin(), bn_final.end());
        const auto [pl_lo, pl_hi] = std::minmax_element(plain_final.begin(), plain_final.end());
        // "Depends less on the scale": it learns (final training accuracy >= 0.5, five times chance) over more of
        // the scales. (The spread of the final accuracies is printed too, but it is no measure of this: a net that
        // fails at every scale has no spread at all.)
        constexpr double learned = 0.5;
        const auto count_learned = [&](const std::vector<double>& v) {
            return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [&](double a) { return a >= learned; }));
        };
        const std::size_t bn_learned = count_learned(bn_final), plain_learned = count_learned(plain_final);
        support::verdict(fmt::format("batch norm depends less on the init scale: it learns (final training accuracy >= {}) "
                                   "at more of the scales",
                                   learned),
                       fmt::format("learns at {}/{} scales with batch norm, {}/{} without (final accuracy std over the "
                                   "scales {:.3f}, range {:.3f}..{:.3f} with; {:.3f}, {:.3f}..{:.3f} without)",
                                   bn_learned, scales, plain_learned, scales, stddev(bn_final), *bn_lo, *bn_hi,
                                   stddev(plain_final), *pl_lo, *pl_hi),
                       bn_learned > plain_learned);
        fmt::print("wrote {}: accuracy.csv, summary.csv, accuracy.png, final_accuracy.png\n", common->out.string());
        return 0;
    });
}
