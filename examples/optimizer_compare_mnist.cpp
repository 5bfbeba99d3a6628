// Deep Learning from Scratch 6.1.8 (figure 6-9, optimizer_compare_mnist.py): a 784-100-100-100-
// 100-10 ReLU net trained by SGD, Momentum, AdaGrad and Adam with their default settings, batch
// 128, 2000 iterations of random mini-batches. Every rule starts from the same initial weights and
// sees the same batches (the book draws one batch per iteration for all four), so the curves differ
// only by the update rule. The book: SGD learns slowest, the other three are close.
//
// Writes to --out: loss_curves.csv (every iteration: raw loss, the book's smoothed curve and a
// moving average), summary.csv (per rule: mean loss over the last 100 iterations, test accuracy),
// loss.png (smoothed curves, as the book) and loss_raw.png (raw curves with the moving average).
#include <algorithm>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data/dataset.hpp"
#include "nn/nn.hpp"
#include "optim/factory.hpp"
#include "support/cli.hpp"
#include "train/csv.hpp"
#include "support/plot.hpp"
#include "support/side_by_side.hpp"
#include "support/smooth.hpp"

namespace {

namespace flag = xg::support::flag;
namespace nn = xg::nn;
namespace optim = xg::optim;
namespace support = xg::support;
namespace train = xg::train;
namespace data = xg::data;
namespace fs = std::filesystem;

// "SGD", "Momentum", "AdaGrad", "Adam" as the book labels them (--optimizers gives lower case).
std::string display_name(const std::string& name) {
    if (name == "sgd") return "SGD";
    if (name == "momentum") return "Momentum";
    if (name == "nesterov") return "Nesterov";
    if (name == "adagrad") return "AdaGrad";
    if (name == "rmsprop") return "RMSProp";
    if (name == "adam") return "Adam";
    if (name == "adamw") return "AdamW";
    return name;
}

const std::vector<std::string> colors = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"};

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("optimizer_compare_mnist", [&] {
        support::Cli cli("optimizer_compare_mnist",
                       "SGD, Momentum, AdaGrad and Adam train a 784-100x4-10 ReLU net on the same batches "
                       "(Deep Learning from Scratch 6.1.8).",
                       1);
        cli.add_data_flag();
        cli.options().add_options()
            ("iterations", flag::value(flag::Integer<std::size_t>{100, 10'000'000}),
             "iterations, >= 100 (default 2000; --quick: 200)")
            ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(128), "mini-batch size")
            ("optimizers",
             flag::value(flag::ListOf{flag::Choice{optim::optimizer_names()}})
                 ->default_value({"sgd", "momentum", "adagrad", "adam"}, "sgd,momentum,adagrad,adam"),
             "comma-separated make_optimizer names, each with its default settings")
            ("hidden-layers", flag::value(flag::Integer<std::size_t>{1, 100})->default_value(4),
             "hidden layers of 100 ReLU units")
            ("window", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(20),
             "moving-average window for loss_raw.png (iterations)");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const std::size_t iterations = cli.get_or<std::size_t>("iterations", common->quick ? 200 : 2000);
        const std::size_t batch = cli.get<std::size_t>("batch-size");
        const std::size_t window = cli.get<std::size_t>("window");
        const std::vector<std::string> names = cli.get<std::vector<std::string>>("optimizers");

        const std::string dir = cli.data_dir();
        data::TrainTest sets = cli.load_data();
        fmt::print("data: {} ({} training, {} test samples); the book uses MNIST digits, so absolute losses differ "
                   "(Fashion-MNIST is harder), the ranking should not\n",
                   dir, sets.train.size(), sets.test.size());
        const nn::MultiLayerNetOptions net_options{
            .input_size = sets.train.features(),
            .hidden_sizes = std::vector<std::size_t>(cli.get<std::size_t>("hidden-layers"), 100),
            .output_size = std::max(sets.train.classes(), sets.test.classes()),
            .activation = nn::Activation::relu,
            .init = nn::Init::he(),
            .seed = common->seed,
        };

        std::vector<std::unique_ptr<nn::MultiLayerNet<float>>> nets;
        std::vector<std::unique_ptr<optim::Optimizer<float>>> optimizers;
        std::vector<support::Contender> contenders;
        for (const std::string& name : names) {
            nets.push_back(std::make_unique<nn::MultiLayerNet<float>>(net_options));  // same seed: same weights
            optimizers.push_back(optim::make_optimizer<float>(name, nets.back()->parameters()));
            contenders.push_back(support::contender(display_name(name), *nets.back(), *optimizers.back()));
        }
        fmt::print("model: {}; every rule from the same initial weights (seed {}) on the same batches\n",
                   nets.front()->repr(), common->seed);
        for (std::size_t m = 0; m < names.size(); ++m)
            fmt::print("  {:<9} lr {}\n", contenders[m].name, optimizers[m]->lr());
        fmt::print("mini-batch loss every 100 iterations (batch {}, {} iterations):\n", batch, iterations);

        const support::LossCurves curves = support::train_side_by_side(
            contenders, sets.train, {.iterations = iterations, .batch_size = batch, .seed = common->seed, .print_every = 100});
        support::write_loss_curves_csv(common->out / "loss_curves.csv", curves, window);

        // Summary: the mean of the last 100 losses (less noisy than the last one) and test accuracy.
        std::vector<double> tail(names.size()), accuracy(names.size());
        train::CsvWriter summary(common->out / "summary.csv",
                                 {"optimizer", "lr", "mean_loss_last_100", "final_smoothed_loss", "test_accuracy", "diverged"});
        fmt::print("{:<9} {:>8} {:>20} {:>16} {:>14}\n", "rule", "lr", "mean loss last 100", "final smoothed", "test accuracy");
        for (std::size_t m = 0; m < names.size(); ++m) {
            const std::vector<double>& loss = curves.loss[m];
            tail[m] = support::mean_of(loss, loss.size() >= 100 ? loss.size() - 100 : 0, loss.size());
            accuracy[m] = nets[m]->accuracy(sets.test.images, sets.test.labels);
            const double smooth_end = loss.size() >= 11 ? support::smooth_curve(loss).back() : loss.back();
            summary.row({contenders[m].name, optimizers[m]->lr(), tail[m], smooth_end, accuracy[m], curves.diverged[m] ? 1 : 0});
            fmt::print("{:<9} {:>8} {:>20.4f} {:>16.4f} {:>14.4f}{}\n", contenders[m].name, optimizers[m]->lr(), tail[m],
                       smooth_end, accuracy[m], curves.diverged[m] ? "  (diverged)" : "");
        }
        summary.close();
        fmt::print("{} iterations x {} rules in {:.1f}s\n", iterations, names.size(), curves.seconds);

        // Figures: the book's (smoothed, y from 0 to 1) and the raw curves under a moving average.
        const fs::path csv = common->out / "loss_curves.csv";
        support::Panel smoothed{.title = fmt::format("mini-batch loss, smoothed as the book (Kaiser window of 11); {} iterations, "
                                                   "batch {}",
                                                   iterations, batch),
                              .x = {.label = "iterations"},
                              .y = {.label = "loss", .min = 0.0, .max = 1.0},
                              .series = {}, .contours = {}};
        support::Panel raw{.title = fmt::format("raw mini-batch loss (thin) and its {}-iteration moving average (thick)", window),
                         .x = {.label = "iterations"},
                         .y = {.label = "loss", .min = 0.0, .max = 2.5},
                         .series = {}, .contours = {}};
        for (std::size_t m = 0; m < names.size(); ++m) {
            const std::string& n = contenders[m].name;
            const std::string& color = colors[m % colors.size()];
            smoothed.series.push_back({.csv = csv, .x = "iteration", .y = "smoothed", .title = n, .where = {{"model", n}},
                                       .color = color, .line_width = 2});
            raw.series.push_back({.csv = csv, .x = "iteration", .y = "loss", .title = n + " raw", .where = {{"model", n}},
                                  .color = color, .line_width = 0.5});
            raw.series.push_back({.csv = csv, .x = "iteration", .y = "moving_average", .title = n + " average",
                                  .where = {{"model", n}}, .color = color, .line_width = 2.5});
        }
        support::Figure fig{.title = "", .rows = 1, .cols = 1, .width = 1000, .height = 650, .panels = {smoothed}};
        fig.panels.front().title = fmt::format("Update rules on a 784-100x4-10 ReLU net, Fashion-MNIST, batch {}, same initial "
                                               "weights and batches\nmini-batch loss smoothed as the book (Kaiser window of 11)",
                                               batch);
        support::save_png(fig, common->out / "loss.png");
        support::Figure fig_raw{.title = "", .rows = 1, .cols = 1, .width = 1000, .height = 650, .panels = {raw}};
        fig_raw.panels.front().legend = "top right maxrows 4";
        support::save_png(fig_raw, common->out / "loss_raw.png");

        // Verdicts, on the mean loss of the last 100 iterations.
        const auto index_of = [&](const std::string& n) -> std::optional<std::size_t> {
            for (std::size_t m = 0; m < names.size(); ++m)
                if (contenders[m].name == n) return m;
            return std::nullopt;
        };
        const auto sgd = index_of("SGD");
        if (sgd && names.size() >= 2) {
            double others_max = -1, others_min = 1e300;
            std::vector<std::string> listing;
            for (std::size_t m = 0; m < names.size(); ++m) {
                listing.push_back(fmt::format("{} {:.3f}", contenders[m].name, tail[m]));
                if (m == *sgd) continue;
                others_max = std::max(others_max, tail[m]);
                others_min = std::min(others_min, tail[m]);
            }
            const bool sgd_slowest = tail[*sgd] > others_max && !curves.diverged[*sgd];
            support::verdict("SGD learns slowest (highest mean loss over the last 100 iterations)",
                           fmt::format("{}", fmt::join(listing, ", ")), sgd_slowest);
            if (names.size() >= 3)
                support::verdict("the others are close: their spread is smaller than SGD's gap above the worst of them",
                               fmt::format("spread {:.3f} (max {:.3f} - min {:.3f}) vs SGD's gap {:.3f}",
                                           others_max - others_min, others_max, others_min, tail[*sgd] - others_max),
                               others_max - others_min < tail[*sgd] - others_max);
        } else {
            fmt::print("(no SGD among --optimizers: no verdict on SGD)\n");
        }
        fmt::print("wrote {}: loss_curves.csv, summary.csv, loss.png, loss_raw.png\n", common->out.string());
        return 0;
    });
}
