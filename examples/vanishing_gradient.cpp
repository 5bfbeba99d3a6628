// Seeds 000-003 (vanishing gradient): back-propagation multiplies the error signal by each layer's
// activation derivative. sigmoid's derivative y(1 - y) is at most 0.25, so through a deep stack the
// gradient reaching the first layers shrinks geometrically; tanh's derivative reaches 1 but still
// saturates; ReLU's is exactly 1 where the unit is active; softplus log(1 + e^x) is a smooth ReLU
// (its derivative is sigmoid(x), up to 1).
//
// A net of --layers hidden layers of --units units, once per activation, each with the init that
// suits it (Xavier for sigmoid and tanh, He for ReLU and softplus; --init overrides), from the same
// seed. One forward and backward pass on a batch of Fashion-MNIST gives the gradient norm of each
// layer's weights; then a short SGD run on random mini-batches shows which of the nets learns.
//
// Writes to --out: grad_norms.csv (per activation and layer: ||dL/dW||, its RMS per element, and the
// same after training), train_loss.csv, summary.csv, grad_norms.png and training.png.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <optional>
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

const std::vector<std::string> colors = {"#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd"};

using Act = nn::Activation;

// --init: "auto" (nullopt: each activation's own init) or one init for all.
std::optional<nn::Init> parse_init_or_auto(std::string_view text) {
    if (text == "auto") return std::nullopt;
    return nn::Init::parse(text);
}

nn::Init init_for(nn::Activation a, const std::optional<nn::Init>& chosen) {
    if (chosen) return *chosen;
    return a == nn::Activation::sigmoid || a == nn::Activation::tanh ? nn::Init::xavier() : nn::Init::he();
}

struct LayerGrad {
    double norm = 0;  // Frobenius norm of dL/dW
    double rms = 0;   // norm / sqrt(elements): comparable between layers of different shapes
};

// One forward and backward pass of the net's loss on (x, y); the gradient of each Linear weight.
std::vector<LayerGrad> weight_gradients(nn::MultiLayerNet<float>& net, const data::Batch& batch) {
    net.zero_grad();
    net.train();
    net.loss(xg::Variable<float>(batch.x), batch.y).backward();
    std::vector<LayerGrad> out;
    for (const auto& [name, p] : net.named_parameters()) {
        if (name.size() < 7 || name.substr(name.size() - 7) != ".weight") continue;
        double sq = 0;
        for (float g : p.grad().data()) sq += static_cast<double>(g) * g;
        out.push_back({std::sqrt(sq), std::sqrt(sq / static_cast<double>(p.grad().data().size()))});
    }
    net.zero_grad();
    return out;
}

std::string norms_str(const std::vector<LayerGrad>& g) {
    std::vector<std::string> parts;
    for (const LayerGrad& l : g) parts.push_back(fmt::format("{:.2e}", l.norm));
    return fmt::format("{}", fmt::join(parts, " "));
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("vanishing_gradient", [&] {
        support::Cli cli("vanishing_gradient",
                       "Per-layer gradient norms of a deep net under sigmoid, tanh, ReLU and softplus, and which of "
                       "them learns (seeds 000-003).",
                       1);
        cli.add_data_flag();
        cli.options().add_options()
            ("layers", flag::value(flag::Integer<std::size_t>{1, 100})->default_value(10), "hidden layers")
            ("units", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(100), "units per hidden layer")
            ("activations",
             flag::value(flag::ListOf{flag::ParsedBy{nn::parse_activation}})
                 ->default_value({Act::sigmoid, Act::tanh, Act::relu, Act::softplus}, "sigmoid,tanh,relu,softplus"),
             "comma-separated: sigmoid, tanh, relu, leaky_relu, softplus")
            ("init", flag::value(flag::ParsedBy<std::optional<nn::Init>>{parse_init_or_auto})->default_value(std::nullopt, "auto"),
             "auto (Xavier for sigmoid/tanh, He for relu/softplus), or one init for all: he, xavier, a std")
            ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(100),
             "batch of the gradient pass and of training")
            ("iterations", flag::value(flag::Integer<std::size_t>{20, 10'000'000}),
             "SGD iterations of the training run, >= 20 (default 1500; --quick: 150)")
            ("lr", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(0.01),
             "SGD learning rate of the training run");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const std::size_t layers = cli.get<std::size_t>("layers");
        const std::size_t units = cli.get<std::size_t>("units");
        const std::size_t batch_size = cli.get<std::size_t>("batch-size");
        const std::size_t iterations = cli.get_or<std::size_t>("iterations", common->quick ? 150 : 1500);
        const double lr = cli.get<double>("lr");
        const std::vector<nn::Activation> acts = cli.get<std::vector<nn::Activation>>("activations");

        const std::string dir = cli.data_dir();
        const data::TrainTest sets = cli.load_data();
        const data::Dataset test = common->quick ? data::take(sets.test, 2000) : sets.test;
        std::mt19937_64 rng(common->seed);
        const data::Batch probe = data::random_batch(sets.train, batch_size, rng);
        fmt::print("data: {} ({} training samples); gradients on one random batch of {}\n", dir, sets.train.size(),
                   batch_size);
        fmt::print("net: 784 -> {} x {} -> 10, softmax cross entropy; Linear layer 1 is the input layer, {} the output "
                   "layer\n",
                   layers, units, layers + 1);

        std::vector<std::unique_ptr<nn::MultiLayerNet<float>>> nets;
        std::vector<std::unique_ptr<optim::SGD<float>>> optimizers;
        std::vector<support::Contender> contenders;
        std::vector<std::vector<LayerGrad>> before, after;
        std::vector<std::string> names, inits;
        for (const nn::Activation a : acts) {
            const nn::Init init = init_for(a, cli.get<std::optional<nn::Init>>("init"));
            nets.push_back(std::make_unique<nn::MultiLayerNet<float>>(nn::MultiLayerNetOptions{
                .input_size = sets.train.features(),
                .hidden_sizes = std::vector<std::size_t>(layers, units),
                .output_size = std::max(sets.train.classes(), sets.test.classes()),
                .activation = a,
                .init = init,
                .seed = common->seed,
            }));
            names.emplace_back(nn::activation_name(a));
            inits.push_back(init.str());
            before.push_back(weight_gradients(*nets.back(), probe));
            optimizers.push_back(std::make_unique<optim::SGD<float>>(nets.back()->parameters(), optim::SGDOptions{.lr = lr}));
            contenders.push_back(support::contender(names.back(), *nets.back(), *optimizers.back()));
        }

        fmt::print("\n||dL/dW|| per Linear layer (1 = input ... {} = output), before training:\n", layers + 1);
        for (std::size_t m = 0; m < names.size(); ++m)
            fmt::print("{:<9} ({:<6}) {}\n", names[m], inits[m], norms_str(before[m]));
        fmt::print("ratio first / last layer:");
        for (std::size_t m = 0; m < names.size(); ++m)
            fmt::print("  {} {:.2e}", names[m], before[m].front().norm / before[m].back().norm);
        fmt::print("\n\ntraining each net: SGD lr {}, batch {}, {} iterations on the same random batches\n", lr, batch_size,
                   iterations);
        const support::LossCurves curves = support::train_side_by_side(
            contenders, sets.train,
            {.iterations = iterations, .batch_size = batch_size, .seed = common->seed + 1, .print_every = iterations / 10});
        support::write_loss_curves_csv(common->out / "train_loss.csv", curves, 20);
        for (std::size_t m = 0; m < names.size(); ++m) after.push_back(weight_gradients(*nets[m], probe));

        train::CsvWriter gcsv(common->out / "grad_norms.csv",
                              {"activation", "init", "layer", "grad_norm", "grad_rms", "grad_norm_after_training",
                               "grad_rms_after_training"});
        for (std::size_t m = 0; m < names.size(); ++m)
            for (std::size_t l = 0; l < before[m].size(); ++l)
                gcsv.row({names[m], inits[m], l + 1, before[m][l].norm, before[m][l].rms, after[m][l].norm, after[m][l].rms});
        gcsv.close();

        std::vector<double> tail(names.size()), accuracy(names.size());
        train::CsvWriter scsv(common->out / "summary.csv", {"activation", "init", "ratio_first_last_before",
                                                            "ratio_first_last_after", "mean_loss_last_100",
                                                            "test_accuracy", "diverged"});
        fmt::print("\n{:<9} {:>20} {:>20} {:>20} {:>14}\n", "", "first/last before", "first/last after",
                   "mean loss last 100", "test accuracy");
        for (std::size_t m = 0; m < names.size(); ++m) {
            const auto& loss = curves.loss[m];
            tail[m] = support::mean_of(loss, loss.size() >= 100 ? loss.size() - 100 : 0, loss.size());
            accuracy[m] = nets[m]->accuracy(test.images, test.labels);
            const double r0 = before[m].front().norm / before[m].back().norm;
            const double r1 = after[m].front().norm / after[m].back().norm;
            scsv.row({names[m], inits[m], r0, r1, tail[m], accuracy[m], curves.diverged[m] ? 1 : 0});
            fmt::print("{:<9} {:>20.2e} {:>20.2e} {:>20.4f} {:>14.4f}{}\n", names[m], r0, r1, tail[m], accuracy[m],
                       curves.diverged[m] ? " (diverged)" : "");
        }
        scsv.close();
        fmt::print("(test accuracy on {} test samples; training took {:.1f}s)\n", test.size(), curves.seconds);

        // Figures.
        const fs::path gpath = common->out / "grad_norms.csv";
        support::Figure gfig{.title = fmt::format("Gradient norm of each layer's weights, 784 -> {} x {} -> 10, one batch "
                                                "of {} Fashion-MNIST images",
                                                layers, units, batch_size),
                           .rows = 1, .cols = 2, .width = 1500, .height = 650, .panels = {}};
        support::Panel p_norm{.title = "||dL/dW|| at initialisation (log scale)",
                            .x = {.label = "Linear layer (1 = input side, last = output)", .min = 0.5,
                                  .max = static_cast<double>(layers) + 1.5},
                            .y = {.label = "||dL/dW|| (Frobenius)", .log = true},
                            .series = {}, .contours = {}, .legend = "bottom right",
                            .commands = {"set format y \"%.0e\"", "set xtics 1"}};
        support::Panel p_after{.title = fmt::format("the same after {} SGD iterations (lr {})", iterations, lr),
                             .x = p_norm.x, .y = p_norm.y, .series = {}, .contours = {}, .legend = "bottom right",
                             .commands = p_norm.commands};
        for (std::size_t m = 0; m < names.size(); ++m) {
            const std::string title = fmt::format("{} ({} init)", names[m], inits[m]);
            p_norm.series.push_back({.csv = gpath, .x = "layer", .y = "grad_norm", .title = title,
                                     .style = support::Style::linespoints, .where = {{"activation", names[m]}},
                                     .color = colors[m % colors.size()], .line_width = 2});
            p_after.series.push_back({.csv = gpath, .x = "layer", .y = "grad_norm_after_training", .title = title,
                                      .style = support::Style::linespoints, .where = {{"activation", names[m]}},
                                      .color = colors[m % colors.size()], .line_width = 2});
        }
        gfig.panels = {p_norm, p_after};
        support::save_png(gfig, common->out / "grad_norms.png");

        support::Panel p_loss{.title = fmt::format("{} hidden layers: mini-batch loss, SGD lr {}, batch {} (smoothed as the "
                                                 "book)",
                                                 layers, lr, batch_size),
                            .x = {.label = "iterations"},
                            .y = {.label = "loss", .min = 0.0, .max = 2.6},
                            .series = {}, .contours = {}, .legend = "bottom left"};
        for (std::size_t m = 0; m < names.size(); ++m)
            p_loss.series.push_back({.csv = common->out / "train_loss.csv", .x = "iteration", .y = "smoothed",
                                     .title = fmt::format("{}: test acc {:.3f}", names[m], accuracy[m]),
                                     .where = {{"model", names[m]}}, .color = colors[m % colors.size()], .line_width = 2});
        support::save_png({.title = "", .rows = 1, .cols = 1, .width = 1000, .height = 600, .panels = {p_loss}},
                        common->out / "training.png");

        // Verdicts.
        const auto find = [&](const std::string& n) -> std::optional<std::size_t> {
            for (std::size_t m = 0; m < names.size(); ++m)
                if (names[m] == n) return m;
            return std::nullopt;
        };
        const auto ratio = [&](std::size_t m) { return before[m].front().norm / before[m].back().norm; };
        const auto sig = find("sigmoid"), relu = find("relu"), tanh_ = find("tanh");
        if (sig)
            support::verdict("sigmoid's first-layer gradient norm is orders of magnitude (>= 100x) below its last layer's",
                           fmt::format("sigmoid first {:.2e}, last {:.2e}: ratio {:.2e}", before[*sig].front().norm,
                                       before[*sig].back().norm, ratio(*sig)),
                           ratio(*sig) < 1e-2);
        if (relu)
            support::verdict("ReLU's is not (within 10x of its last layer's)",
                           fmt::format("ReLU first {:.2e}, last {:.2e}: ratio {:.2e}", before[*relu].front().norm,
                                       before[*relu].back().norm, ratio(*relu)),
                           ratio(*relu) > 0.1);
        if (sig && tanh_) {
            support::verdict("tanh's wider derivative range (up to 1, sigmoid's up to 0.25) keeps far more gradient: its "
                           "first/last ratio is >= 100x sigmoid's",
                           fmt::format("first/last ratio: tanh {:.2e}, sigmoid {:.2e}", ratio(*tanh_), ratio(*sig)),
                           ratio(*tanh_) >= 100 * ratio(*sig));
            // The seeds' second half of the claim. With Xavier init (what this program uses for tanh by default)
            // the 10-layer tanh net's first layer does not get less gradient than its last: the claim is tested as
            // stated and reported either way.
            support::verdict("the seeds: tanh's gradient still vanishes with depth (first-layer norm below the last's)",
                           fmt::format("tanh ({} init) first {:.2e}, last {:.2e}: ratio {:.2e}", inits[*tanh_],
                                       before[*tanh_].front().norm, before[*tanh_].back().norm, ratio(*tanh_)),
                           ratio(*tanh_) < 1);
            if (ratio(*tanh_) >= 1)
                fmt::print("note: with {} init tanh's units work near their linear range, where tanh' is close to 1, so "
                           "back-propagation keeps the gradient; sigmoid's derivative is at most 0.25 even there. Try "
                           "--init 0.01 or --init 1 to see how tanh fares with other scales.\n",
                           inits[*tanh_]);
        }
        if (sig && relu) {
            const double chance = std::log(10.0);
            support::verdict(fmt::format("in the short SGD run the deep sigmoid net does not learn (loss within 0.1 of ln 10 "
                                       "= {:.3f}) while the ReLU net does (below 1.0)",
                                       chance),
                           fmt::format("mean loss last 100: sigmoid {:.4f}, ReLU {:.4f}; test accuracy {:.3f} vs {:.3f}",
                                       tail[*sig], tail[*relu], accuracy[*sig], accuracy[*relu]),
                           std::abs(tail[*sig] - chance) < 0.1 && tail[*relu] < 1.0);
        }
        fmt::print("wrote {}: grad_norms.csv, train_loss.csv, summary.csv, grad_norms.png, training.png\n",
                   common->out.string());
        return 0;
    });
}
