// Deep Learning from Scratch 6.2.2-6.2.3 (figures 6-10 to 6-14): 1000 inputs from N(0, 1) go
// forward through 5 layers of 100 units, weights N(0, 1) * s for s = 1, 0.01, Xavier sqrt(1/n)
// and He sqrt(2/n), under sigmoid, tanh and ReLU. The histogram of each layer's activations
// shows whether the signal survives the depth: piled up at the saturated ends (gradients vanish),
// collapsed to one value (every unit says the same thing), or spread.
//
// Writes to --out: histograms.csv (30 bins per activation, init and layer), layer_stats.csv
// (mean, std, saturated fraction, ...) and one PNG per activation: rows = inits, columns = layers.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xtensor/xhistogram.hpp>
#include <xtensor/xindex_view.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xrandom.hpp>

#include "support/cli.hpp"
#include "train/csv.hpp"
#include "support/plot.hpp"
#include "xgrad.hpp"

namespace {

namespace flag = xg::support::flag;
namespace support = xg::support;
namespace train = xg::train;
using V = xg::Variable<float>;  // forward only: float32 is plenty

constexpr std::size_t bins = 30;

struct Activation {
    std::string name;
    V (*apply)(const V&);
    double low, high;  // histogram range
    // Saturated: the local derivative is below 10% of its peak, so almost no gradient passes.
    // sigmoid' = y(1-y) < 0.025 <=> y outside [0.0257, 0.9743]; tanh' = 1 - y^2 < 0.1 <=> |y| > 0.949;
    // relu' = 0 <=> y = 0.
    bool (*saturated)(float y);
};

V apply_sigmoid(const V& x) { return xg::sigmoid(x); }
V apply_tanh(const V& x) { return xg::tanh(x); }
V apply_relu(const V& x) { return xg::relu(x); }

// ReLU's histogram leaves out the exact zeros (about half the units, which would dwarf every other
// bin; the book clips its y axis instead) and stops at 4, beyond which He's activations rarely go.
// Both fractions are reported per layer, so nothing is hidden.
const std::vector<Activation> activations = {
    {"sigmoid", apply_sigmoid, 0.0, 1.0, [](float y) { return y * (1 - y) < 0.025f; }},
    {"tanh", apply_tanh, -1.0, 1.0, [](float y) { return 1 - y * y < 0.1f; }},
    {"relu", apply_relu, 0.0, 4.0, [](float y) { return y == 0.0f; }},
};

struct Init {
    std::string name;   // in the CSV files
    std::string label;  // in titles
    double (*scale)(std::size_t fan_in);
};

const std::vector<Init> inits = {
    {"std_1", "std 1", [](std::size_t) { return 1.0; }},
    {"std_0.01", "std 0.01", [](std::size_t) { return 0.01; }},
    {"xavier", "Xavier sqrt(1/n)", [](std::size_t n) { return std::sqrt(1.0 / static_cast<double>(n)); }},
    {"he", "He sqrt(2/n)", [](std::size_t n) { return std::sqrt(2.0 / static_cast<double>(n)); }},
};

struct LayerStats {
    double mean, std, saturated, zeros, above_range;
    std::vector<std::size_t> counts;  // per bin; relu without its zeros
};

struct Run {
    const Activation* activation;
    const Init* init;
    std::vector<LayerStats> layers;
};

LayerStats describe(const xg::Array<float>& a, const Activation& activation) {
    const auto n = static_cast<double>(a.size());
    LayerStats s{};
    s.mean = static_cast<double>(xt::mean(a)());
    s.std = static_cast<double>(xt::stddev(a)());
    for (float y : a) {
        s.saturated += activation.saturated(y);
        s.zeros += y == 0.0f;
        s.above_range += y > activation.high;
    }
    for (double* fraction : {&s.saturated, &s.zeros, &s.above_range}) *fraction /= n;

    const xt::xtensor<float, 1> flat = xt::flatten(a);
    const xt::xtensor<float, 1> counted =
        activation.name == "relu" ? xt::xtensor<float, 1>(xt::filter(flat, flat > 0.0f)) : flat;
    const auto counts = xt::histogram(counted, bins, static_cast<float>(activation.low),
                                      static_cast<float>(activation.high));
    for (double c : counts) s.counts.push_back(static_cast<std::size_t>(std::lround(c)));
    return s;
}

// The same input and the same N(0, 1) weight draws for every run: runs differ only by the
// activation and the init scale, so their differences are theirs, not the random numbers'.
Run forward(const Activation& activation, const Init& init, const xg::Array<float>& input,
            const std::vector<xg::Array<float>>& standard_weights) {
    xg::NoGradGuard no_grad;
    Run run{&activation, &init, {}};
    V x(input);
    for (const xg::Array<float>& w : standard_weights) {
        const auto scale = static_cast<float>(init.scale(w.shape()[0]));
        x = activation.apply(xg::matmul(x, V(xg::Array<float>(w * scale))));
        run.layers.push_back(describe(x.data(), activation));
    }
    return run;
}

void write_csvs(const std::vector<Run>& runs, const std::filesystem::path& out) {
    train::CsvWriter histograms(out / "histograms.csv",
                                {"activation", "init", "layer", "bin_left", "bin_center", "bin_right", "count"});
    train::CsvWriter stats(out / "layer_stats.csv", {"activation", "init", "layer", "mean", "std",
                                                     "saturated_fraction", "zero_fraction",
                                                     "above_range_fraction"});
    for (const Run& run : runs) {
        const Activation& act = *run.activation;
        const double width = (act.high - act.low) / bins;
        for (std::size_t l = 0; l < run.layers.size(); ++l) {
            const LayerStats& s = run.layers[l];
            stats.row({act.name, run.init->name, l + 1, s.mean, s.std, s.saturated, s.zeros, s.above_range});
            for (std::size_t b = 0; b < bins; ++b) {
                const double left = act.low + width * static_cast<double>(b);
                histograms.row({act.name, run.init->name, l + 1, left, left + width / 2, left + width, s.counts[b]});
            }
        }
    }
    histograms.close();
    stats.close();
}

std::string panel_title(const Run& run, std::size_t layer) {
    const LayerStats& s = run.layers[layer];
    if (run.activation->name == "relu")
        return fmt::format("{}, layer {}\nstd {:.3g}, zeros {:.0f}%, above {}: {:.0f}%", run.init->label, layer + 1,
                           s.std, 100 * s.zeros, run.activation->high, 100 * s.above_range);
    return fmt::format("{}, layer {}\nstd {:.3g}, saturated {:.0f}%", run.init->label, layer + 1, s.std,
                       100 * s.saturated);
}

void plot(const std::vector<Run>& runs, const Activation& act, std::size_t rows_per_input,
          const std::filesystem::path& out) {
    const std::size_t layers = runs.front().layers.size();
    support::Figure figure{
        .title = fmt::format("{} activations of 5 layers of 100 units ({} inputs from N(0, 1)), weights N(0, 1) * "
                             "scale; one row per scale{}",
                             act.name, rows_per_input, act.name == "relu" ? "; zeros not counted" : ""),
        .rows = inits.size(),
        .cols = layers,
        .width = 2000,
        .height = 1500,
        .panels = {}};
    const double width = (act.high - act.low) / bins;
    for (const Run& run : runs) {
        if (run.activation != &act) continue;
        // One y range per row: the layers of one init compare directly, while a row whose
        // activations collapse into one bin does not flatten the other rows.
        std::size_t row_max = 1;
        for (const LayerStats& s : run.layers) row_max = std::max(row_max, *std::max_element(s.counts.begin(), s.counts.end()));
        for (std::size_t l = 0; l < layers; ++l) {
            figure.panels.push_back({
                .title = panel_title(run, l),
                .x = {.label = act.name + " output", .min = act.low, .max = act.high},
                .y = {.label = "count", .min = 0.0, .max = 1.08 * static_cast<double>(row_max)},
                .series = {{.csv = out / "histograms.csv", .x = "bin_center", .y = "count",
                            .title = act.name == "relu" ? "nonzero values" : "all values", .style = support::Style::boxes,
                            .where = {{"activation", act.name}, {"init", run.init->name}, {"layer", std::to_string(l + 1)}},
                            .color = "#1f77b4", .box_width = width}},
                .contours = {},
                .legend = "top center",
            });
        }
    }
    support::save_png(figure, out / (act.name + ".png"));
}

const Run& find(const std::vector<Run>& runs, const std::string& activation, const std::string& init) {
    for (const Run& r : runs)
        if (r.activation->name == activation && r.init->name == init) return r;
    throw xg::ValueError("no run for " + activation + " / " + init);
}

// Per-layer values of one statistic, "0.21 0.18 ..."
template <class F>
std::string per_layer(const Run& run, F&& value, const char* format = "{:.3g}") {
    std::vector<std::string> values;
    for (const LayerStats& l : run.layers) values.push_back(fmt::format(fmt::runtime(format), value(l)));
    return fmt::format("{}", fmt::join(values, " "));
}

template <class F>
double min_over_layers(const Run& run, F&& value) {
    double m = INFINITY;
    for (const LayerStats& l : run.layers) m = std::min(m, value(l));
    return m;
}

template <class F>
double max_over_layers(const Run& run, F&& value) {
    double m = -INFINITY;
    for (const LayerStats& l : run.layers) m = std::max(m, value(l));
    return m;
}

void print_table(const std::vector<Run>& runs) {
    fmt::print("per layer (1..5): activation std | saturated fraction (local derivative < 10% of its peak; relu: = 0)\n");
    for (const Run& run : runs) {
        fmt::print("{:<8} {:<17} std {:<42} saturated {}\n", run.activation->name, run.init->label,
                   per_layer(run, [](const LayerStats& l) { return l.std; }),
                   per_layer(run, [](const LayerStats& l) { return l.saturated; }, "{:.2f}"));
    }
}

void print_verdicts(const std::vector<Run>& runs) {
    const auto std_of = [](const LayerStats& l) { return l.std; };
    const auto saturated = [](const LayerStats& l) { return l.saturated; };
    const auto mean_offset = [](const LayerStats& l) { return std::abs(l.mean - 0.5); };

    const Run& sig_1 = find(runs, "sigmoid", "std_1");
    const Run& sig_001 = find(runs, "sigmoid", "std_0.01");
    const Run& sig_xavier = find(runs, "sigmoid", "xavier");
    support::verdict("std 1 + sigmoid piles up at 0 and 1 (most units saturated in every layer)",
                   fmt::format("saturated fraction per layer {} (Xavier: {})", per_layer(sig_1, saturated, "{:.2f}"),
                               per_layer(sig_xavier, saturated, "{:.2f}")),
                   min_over_layers(sig_1, saturated) > 0.5);

    // A uniform spread over [0, 1] has std 0.29; 0.05 is a sixth of that.
    support::verdict("std 0.01 + sigmoid piles up at 0.5 (every layer: mean within 0.05 of 0.5, std below 0.05)",
                   fmt::format("std per layer {}, largest |mean - 0.5| {:.3g}", per_layer(sig_001, std_of),
                               max_over_layers(sig_001, mean_offset)),
                   max_over_layers(sig_001, std_of) < 0.05 && max_over_layers(sig_001, mean_offset) < 0.05);

    support::verdict("Xavier spreads sigmoid's activations (every layer's std >= 5x the std-0.01 run's, <= 10% saturated)",
                   fmt::format("std per layer {} vs {}; largest saturated fraction {:.2f}", per_layer(sig_xavier, std_of),
                               per_layer(sig_001, std_of), max_over_layers(sig_xavier, saturated)),
                   [&] {
                       bool spread = max_over_layers(sig_xavier, saturated) <= 0.10;
                       for (std::size_t l = 0; l < sig_xavier.layers.size(); ++l)
                           spread &= sig_xavier.layers[l].std >= 5 * sig_001.layers[l].std;
                       return spread;
                   }());

    const Run& tanh_1 = find(runs, "tanh", "std_1");
    support::verdict("std 1 saturates tanh too (most units at -1 or 1 in every layer)",
                   fmt::format("saturated fraction per layer {}", per_layer(tanh_1, saturated, "{:.2f}")),
                   min_over_layers(tanh_1, saturated) > 0.5);

    // ReLU: the spread after the last layer relative to the first says whether the signal keeps its
    // size through depth. He's factor 2 compensates for the half of the units ReLU zeroes.
    const auto ratio = [](const Run& r) { return r.layers.back().std / r.layers.front().std; };
    const Run& relu_he = find(runs, "relu", "he");
    const Run& relu_xavier = find(runs, "relu", "xavier");
    const Run& relu_001 = find(runs, "relu", "std_0.01");
    const std::size_t last = relu_he.layers.size();
    support::verdict(fmt::format("He suits ReLU: activation std stays roughly constant (layer {} / layer 1 within [0.5, 2])", last),
                   fmt::format("ReLU std per layer with He {}; ratio {:.3g}", per_layer(relu_he, std_of), ratio(relu_he)),
                   ratio(relu_he) >= 0.5 && ratio(relu_he) <= 2);
    support::verdict(fmt::format("with ReLU, Xavier's activations shrink layer by layer (ratio < 0.5) and std 0.01's vanish "
                               "(ratio < 0.01)"),
                   fmt::format("layer {} / layer 1 std: Xavier {:.3g}, std 0.01 {:.3g}", last, ratio(relu_xavier),
                               ratio(relu_001)),
                   ratio(relu_xavier) < 0.5 && ratio(relu_001) < 0.01);
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("weight_init_activation_histogram", [&] {
        support::Cli cli("weight_init_activation_histogram",
                       "Activation histograms of a 5-layer net for 4 weight scales and 3 activations "
                       "(Deep Learning from Scratch 6.2).");
        cli.options().add_options()
            ("inputs", flag::value(flag::Integer<std::size_t>{2, 100'000}), "input rows, >= 2 (default 1000; --quick: 200)");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const std::size_t rows = cli.get_or<std::size_t>("inputs", common->quick ? 200 : 1000);
        constexpr std::size_t units = 100;
        constexpr std::size_t depth = 5;

        std::mt19937 engine(common->seed);
        const xg::Array<float> input = xt::random::randn<float>({rows, units}, 0.0f, 1.0f, engine);
        std::vector<xg::Array<float>> standard_weights;
        for (std::size_t l = 0; l < depth; ++l)
            standard_weights.push_back(xt::random::randn<float>({units, units}, 0.0f, 1.0f, engine));

        std::vector<Run> runs;
        for (const Activation& act : activations)
            for (const Init& init : inits) runs.push_back(forward(act, init, input, standard_weights));

        fmt::print("input {}x{} from N(0, 1), {} layers of {} units, seed {}\n", rows, units, depth, units, common->seed);
        print_table(runs);
        write_csvs(runs, common->out);
        for (const Activation& act : activations) plot(runs, act, rows, common->out);
        print_verdicts(runs);
        fmt::print("wrote {}/histograms.csv, layer_stats.csv, sigmoid.png, tanh.png, relu.png (and their .gp)\n",
                   common->out.string());
        return 0;
    });
}
