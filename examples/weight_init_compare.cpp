// Deep Learning from Scratch 6.2.4 (figure 6-15, weight_init_compare.py): the 784-100-100-100-
// 100-10 ReLU net trained by SGD (lr 0.01), batch 128, 2000 iterations, from weights N(0, 0.01^2),
// Xavier N(0, 1/n) and He N(0, 2/n) (biases zero). The three see the same batches. The book: with
// std 0.01 the net does not learn at all (the signal vanishes through the layers, so do the
// gradients), He learns fastest.
//
// Writes to --out: loss_curves.csv (raw, the book's smoothing, moving average), summary.csv,
// loss.png (smoothed curves, as the book) and loss_raw.png.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data/dataset.hpp"
#include "nn/nn.hpp"
#include "optim/sgd.hpp"
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

struct InitChoice {
    std::string name;
    nn::Init init;
    std::string color;
};

// The first iteration at which `curve` is below `level`; nullopt if never.
std::optional<std::size_t> first_below(const std::vector<double>& curve, double level) {
    for (std::size_t i = 0; i < curve.size(); ++i)
        if (curve[i] < level) return i + 1;
    return std::nullopt;
}

std::string iteration_str(const std::optional<std::size_t>& it) { return it ? std::to_string(*it) : "never"; }

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("weight_init_compare", [&] {
        support::Cli cli("weight_init_compare",
                       "Initial weights std 0.01 vs Xavier vs He on a 784-100x4-10 ReLU net, SGD "
                       "(Deep Learning from Scratch 6.2.4).",
                       1);
        cli.add_data_flag();
        cli.options().add_options()
            ("iterations", flag::value(flag::Integer<std::size_t>{100, 10'000'000}),
             "iterations, >= 100 (default 2000; --quick: 300)")
            ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(128), "mini-batch size")
            ("lr", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(0.01), "SGD learning rate")
            ("activation", flag::value(flag::ParsedBy{nn::parse_activation})->default_value(nn::Activation::relu, "relu"),
             "hidden activation (the book: relu)")
            ("window", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(20),
             "moving-average window for loss_raw.png")
            ("level", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(1.0),
             "the smoothed loss level whose first crossing measures speed");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const std::size_t iterations = cli.get_or<std::size_t>("iterations", common->quick ? 300 : 2000);
        const std::size_t batch = cli.get<std::size_t>("batch-size");
        const double lr = cli.get<double>("lr");
        const double level = cli.get<double>("level");

        const std::string dir = cli.data_dir();
        const data::TrainTest sets = cli.load_data();
        fmt::print("data: {} ({} training samples); the book uses MNIST digits, so absolute losses differ, the "
                   "ranking should not\n",
                   dir, sets.train.size());

        const std::vector<InitChoice> choices = {
            {"std=0.01", nn::Init::normal(0.01), "#1f77b4"},
            {"Xavier", nn::Init::xavier(), "#ff7f0e"},
            {"He", nn::Init::he(), "#2ca02c"},
        };
        std::vector<std::unique_ptr<nn::MultiLayerNet<float>>> nets;
        std::vector<std::unique_ptr<optim::SGD<float>>> optimizers;
        std::vector<support::Contender> contenders;
        for (const InitChoice& c : choices) {
            nets.push_back(std::make_unique<nn::MultiLayerNet<float>>(nn::MultiLayerNetOptions{
                .input_size = sets.train.features(),
                .hidden_sizes = {100, 100, 100, 100},
                .output_size = std::max(sets.train.classes(), sets.test.classes()),
                .activation = cli.get<nn::Activation>("activation"),
                .init = c.init,
                .seed = common->seed,  // the same N(0, 1) draws, scaled differently
            }));
            optimizers.push_back(std::make_unique<optim::SGD<float>>(nets.back()->parameters(), optim::SGDOptions{.lr = lr}));
            contenders.push_back(support::contender(c.name, *nets.back(), *optimizers.back()));
        }
        fmt::print("model: {}, SGD lr {}, batch {}, {} iterations, seed {}\n", nets.front()->repr(), lr, batch,
                   iterations, common->seed);
        fmt::print("mini-batch loss every 100 iterations:\n");
        const support::LossCurves curves = support::train_side_by_side(
            contenders, sets.train, {.iterations = iterations, .batch_size = batch, .seed = common->seed, .print_every = 100});
        support::write_loss_curves_csv(common->out / "loss_curves.csv", curves, cli.get<std::size_t>("window"));

        std::vector<double> tail(choices.size()), accuracy(choices.size());
        std::vector<std::optional<std::size_t>> reach(choices.size());
        train::CsvWriter summary(common->out / "summary.csv",
                                 {"init", "mean_loss_last_100", "first_iteration_smoothed_below_level", "level",
                                  "test_accuracy", "diverged"});
        fmt::print("{:<9} {:>20} {:>26} {:>14}\n", "init", "mean loss last 100",
                   fmt::format("smoothed loss < {} from", level), "test accuracy");
        for (std::size_t m = 0; m < choices.size(); ++m) {
            const std::vector<double>& loss = curves.loss[m];
            tail[m] = support::mean_of(loss, loss.size() >= 100 ? loss.size() - 100 : 0, loss.size());
            reach[m] = loss.size() >= 11 ? first_below(support::smooth_curve(loss), level) : std::nullopt;
            accuracy[m] = nets[m]->accuracy(sets.test.images, sets.test.labels);
            summary.row({choices[m].name, tail[m], reach[m] ? xg::train::Cell(*reach[m]) : xg::train::Cell(""), level,
                         accuracy[m], curves.diverged[m] ? 1 : 0});
            fmt::print("{:<9} {:>20.4f} {:>26} {:>14.4f}{}\n", choices[m].name, tail[m], iteration_str(reach[m]),
                       accuracy[m], curves.diverged[m] ? "  (diverged)" : "");
        }
        summary.close();
        fmt::print("{} iterations x 3 inits in {:.1f}s\n", iterations, curves.seconds);

        const fs::path csv = common->out / "loss_curves.csv";
        support::Panel smoothed{
            .title = fmt::format("Weight init on a 784-100x4-10 {} net, SGD lr {}, Fashion-MNIST: mini-batch loss smoothed "
                                 "as the book",
                                 nn::activation_name(cli.get<nn::Activation>("activation")), lr),
            .x = {.label = "iterations"},
            .y = {.label = "loss", .min = 0.0, .max = 2.5},
            .series = {}, .contours = {}};
        support::Panel raw{.title = "raw mini-batch loss (thin) and moving average (thick)",
                         .x = {.label = "iterations"},
                         .y = {.label = "loss", .min = 0.0, .max = 2.5},
                         .series = {}, .contours = {}};
        for (const InitChoice& c : choices) {
            smoothed.series.push_back({.csv = csv, .x = "iteration", .y = "smoothed", .title = c.name,
                                       .where = {{"model", c.name}}, .color = c.color, .line_width = 2});
            raw.series.push_back({.csv = csv, .x = "iteration", .y = "loss", .title = c.name + " raw",
                                  .where = {{"model", c.name}}, .color = c.color, .line_width = 0.5});
            raw.series.push_back({.csv = csv, .x = "iteration", .y = "moving_average", .title = c.name + " average",
                                  .where = {{"model", c.name}}, .color = c.color, .line_width = 2.5});
        }
        support::save_png({.title = "", .rows = 1, .cols = 1, .width = 1000, .height = 650, .panels = {smoothed}},
                        common->out / "loss.png");
        support::save_png({.title = "", .rows = 1, .cols = 1, .width = 1000, .height = 650, .panels = {raw}},
                        common->out / "loss_raw.png");

        const double chance = std::log(static_cast<double>(nets.front()->options().output_size));
        support::verdict(fmt::format("std 0.01 does not learn: its loss stays near ln 10 = {:.3f} (last 100 within 0.1)", chance),
                       fmt::format("std 0.01 mean loss last 100 = {:.4f}", tail[0]), std::abs(tail[0] - chance) < 0.1);
        support::verdict(fmt::format("He learns fastest: lowest final loss, and its smoothed loss falls below {} first", level),
                       fmt::format("mean loss last 100: He {:.4f}, Xavier {:.4f}, std 0.01 {:.4f}; below {} from "
                                   "iteration He {}, Xavier {}",
                                   tail[2], tail[1], tail[0], level, iteration_str(reach[2]), iteration_str(reach[1])),
                       tail[2] < tail[1] && tail[2] < tail[0] && reach[2] && (!reach[1] || *reach[2] < *reach[1]));
        fmt::print("wrote {}: loss_curves.csv, summary.csv, loss.png, loss_raw.png\n", common->out.string());
        return 0;
    });
}
