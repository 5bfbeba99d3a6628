// Seed 003 (back-propagation): a 2-2-1 network of sigmoid units learns XOR by plain gradient
// descent, W(t+1) = W(t) - eta * dE/dW on the mean squared error over the four patterns, while a
// single sigmoid unit (no hidden layer) cannot: XOR is not linearly separable, so at most 3 of the
// 4 patterns land on the right side of 0.5 and the error cannot fall to 0.
//
// Small 2-2-1 nets can end in a local minimum from some starting points, so besides the main run
// (seed --seed) both models are trained from --restarts further seeds and the successes counted.
//
// Writes to --out: loss.csv (error per iteration, both models, main run), outputs.csv (the four
// patterns' outputs), restarts.csv (final error and success per seed and model), surface_mlp.csv
// and surface_perceptron.csv (the output over a grid of inputs), loss.png and surface.png.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "support/cli.hpp"
#include "train/csv.hpp"
#include "support/plot.hpp"
#include "xgrad.hpp"
#include "nn/nn.hpp"

namespace {

namespace flag = xg::support::flag;
namespace nn = xg::nn;
namespace support = xg::support;
namespace train = xg::train;
namespace fs = std::filesystem;
using V = xg::Variable<double>;

const xg::Array<double> patterns = xt::xtensor<double, 2>{{0.0, 0.0}, {0.0, 1.0}, {1.0, 0.0}, {1.0, 1.0}};
const xg::Array<double> targets = xt::xtensor<double, 2>{{0.0}, {1.0}, {1.0}, {0.0}};

struct Model {
    std::string name;   // "mlp" or "perceptron"
    std::string label;  // for titles
    std::shared_ptr<nn::Sequential<double>> net;
};

// 2-2-1 with sigmoid hidden and output units, or a single sigmoid unit 2-1. Weights N(0, std^2),
// biases zero (nn::Linear's default); the generator is seeded per run.
Model make_model(bool hidden, double init_std, std::uint64_t seed) {
    nn::Generator gen(seed);
    const nn::LinearOptions lin{.init = nn::Init::normal(init_std), .bias = true, .generator = &gen};
    auto net = std::make_shared<nn::Sequential<double>>();
    if (hidden) {
        net->push_back(std::make_shared<nn::Linear<double>>(2, 2, lin));
        net->push_back(std::make_shared<nn::Sigmoid<double>>());
        net->push_back(std::make_shared<nn::Linear<double>>(2, 1, lin));
    } else {
        net->push_back(std::make_shared<nn::Linear<double>>(2, 1, lin));
    }
    net->push_back(std::make_shared<nn::Sigmoid<double>>());
    return hidden ? Model{"mlp", "2-2-1 sigmoid net", net} : Model{"perceptron", "single sigmoid unit (2-1)", net};
}

struct Result {
    std::vector<double> loss;      // E before each update, and after the last one
    std::vector<double> outputs;   // the four patterns' outputs at the end
    double final_loss() const { return loss.back(); }
    int correct() const {  // patterns on the right side of 0.5
        int n = 0;
        for (std::size_t i = 0; i < 4; ++i) n += (outputs[i] > 0.5) == (targets(i, 0) > 0.5);
        return n;
    }
    double max_output_error() const {
        double m = 0;
        for (std::size_t i = 0; i < 4; ++i) m = std::max(m, std::abs(outputs[i] - targets(i, 0)));
        return m;
    }
};

Result fit(Model& model, double lr, long iterations) {
    xg::optim::SGD<double> sgd(model.net->parameters(), {.lr = lr});
    const V x(patterns), t(targets);
    Result r;
    for (long it = 0;; ++it) {
        sgd.zero_grad();
        const V y = (*model.net)(x);
        const V e = xg::mean_squared_error(y, t);  // mean over the 4 patterns of (y - t)^2
        r.loss.push_back(e.item());
        if (it == iterations) {
            r.outputs.assign(y.data().begin(), y.data().end());
            break;
        }
        e.backward();
        sgd.step();  // W <- W - eta * dE/dW
    }
    return r;
}

double output_at(Model& model, double x1, double x2) {
    xg::NoGradGuard no_grad;
    return (*model.net)(V(xg::Array<double>{{x1, x2}})).item();
}

// A run solves XOR when every pattern is on the right side of 0.5 and E < 0.05.
bool solved(const Result& r) { return r.correct() == 4 && r.final_loss() < 0.05; }

void plot_loss(const fs::path& out, const Result& mlp, const Result& perc, double lr, long iterations, std::uint32_t seed) {
    train::CsvWriter csv(out / "loss.csv", {"model", "iteration", "mse"});
    for (std::size_t i = 0; i < mlp.loss.size(); ++i) csv.row({"mlp", i, mlp.loss[i]});
    for (std::size_t i = 0; i < perc.loss.size(); ++i) csv.row({"perceptron", i, perc.loss[i]});
    csv.close();
    support::Figure fig{.title = "", .rows = 1, .cols = 1, .width = 900, .height = 550, .panels = {}};
    fig.panels.push_back({
        .title = fmt::format("XOR by gradient descent (lr {}, {} iterations, seed {}): mean squared error", lr,
                             iterations, seed),
        .x = {.label = "iteration"},
        .y = {.label = "mean squared error over the 4 patterns", .min = 0.0, .max = 0.4},
        .series = {{.csv = out / "loss.csv", .x = "iteration", .y = "mse", .title = "2-2-1 sigmoid net",
                    .where = {{"model", "mlp"}}, .color = "#1f77b4", .line_width = 2},
                   {.csv = out / "loss.csv", .x = "iteration", .y = "mse", .title = "single sigmoid unit (no hidden layer)",
                    .where = {{"model", "perceptron"}}, .color = "#d62728", .line_width = 2}},
        .contours = {},
        .legend = "top right",
        .commands = {"set arrow 1 from graph 0, first 0.25 to graph 1, first 0.25 nohead dt 3 lc rgb \"gray40\"",
                     "set label 2 \"0.25: every output 0.5\" at graph 0.02, first 0.262 tc rgb \"gray30\""},
    });
    support::save_png(fig, out / "loss.png");
}

void plot_surfaces(const fs::path& out, Model& mlp, Model& perc, const Result& rm, const Result& rp, bool quick) {
    const std::size_t n = quick ? 41 : 121;
    std::vector<double> grid(n);
    for (std::size_t i = 0; i < n; ++i) grid[i] = -0.5 + 2.0 * static_cast<double>(i) / static_cast<double>(n - 1);
    double lo[2] = {1, 1}, hi[2] = {0, 0};  // the output's range over the plane, per model
    for (int k = 0; k < 2; ++k) {
        Model& m = k == 0 ? mlp : perc;
        support::write_grid_csv(out / fmt::format("surface_{}.csv", m.name), "x1", "x2", "output", grid, grid,
                              [&](double a, double b) {
                                  const double y = output_at(m, a, b);
                                  lo[k] = std::min(lo[k], y);
                                  hi[k] = std::max(hi[k], y);
                                  return y;
                              });
    }
    train::CsvWriter pts(out / "outputs.csv", {"model", "x1", "x2", "target", "output"});
    for (std::size_t i = 0; i < 4; ++i) pts.row({"mlp", patterns(i, 0), patterns(i, 1), targets(i, 0), rm.outputs[i]});
    for (std::size_t i = 0; i < 4; ++i)
        pts.row({"perceptron", patterns(i, 0), patterns(i, 1), targets(i, 0), rp.outputs[i]});
    pts.close();

    support::Figure fig{.title = "Output over the input plane after training (contour lines of the output; black: 0.5, "
                               "the decision boundary)",
                      .rows = 1, .cols = 2, .width = 1400, .height = 650, .panels = {}};
    for (const auto* m : {&mlp, &perc}) {
        const Result& r = m == &mlp ? rm : rp;
        const fs::path csv = out / fmt::format("surface_{}.csv", m->name);
        fig.panels.push_back({
            .title = fmt::format("{}: {}/4 patterns right, E = {:.3g}\noutput between {:.4f} and {:.4f} on this plane",
                                 m->label, r.correct(), r.final_loss(), lo[m == &mlp ? 0 : 1], hi[m == &mlp ? 0 : 1]),
            .x = {.label = "x1", .min = -0.5, .max = 1.5},
            .y = {.label = "x2", .min = -0.5, .max = 1.5},
            .series = {{.csv = out / "outputs.csv", .x = "x1", .y = "x2", .title = "target 0", .style = support::Style::points,
                        .where = {{"model", m->name}, {"target", "0"}}, .color = "#1f77b4", .line_width = 3},
                       {.csv = out / "outputs.csv", .x = "x1", .y = "x2", .title = "target 1", .style = support::Style::points,
                        .where = {{"model", m->name}, {"target", "1"}}, .color = "#d62728", .line_width = 3}},
            .contours = {{.csv = csv, .x = "x1", .y = "x2", .z = "output", .levels = {0.1, 0.3}, .color = "#6baed6",
                          .title = "output 0.1, 0.3"},
                         {.csv = csv, .x = "x1", .y = "x2", .z = "output", .levels = {0.5}, .color = "black",
                          .title = "output 0.5"},
                         {.csv = csv, .x = "x1", .y = "x2", .z = "output", .levels = {0.7, 0.9}, .color = "#fc9272",
                          .title = "output 0.7, 0.9"}},
            .legend = "outside right top",
            .commands = {"set size ratio -1", "set pointsize 2.5"},
        });
    }
    support::save_png(fig, out / "surface.png");
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("xor", [&] {
        support::Cli cli("xor", "A 2-2-1 sigmoid net learns XOR by gradient descent; a single sigmoid unit cannot (seed 003).",
                       3);
        cli.options().add_options()
            ("lr", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(2.0),
             "learning rate eta of W <- W - eta dE/dW")
            ("iterations", flag::value(flag::Integer<long>{1, 10'000'000}),
             "gradient-descent steps (default 10000; --quick: 3000)")
            ("init-std", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(1.0),
             "initial weights N(0, std^2); biases 0")
            ("restarts", flag::value(flag::Integer<long>{0, 100'000}),
             "further seeds seed+1.. to count successes (default 20; --quick: 5)");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const double lr = cli.get<double>("lr");
        const long iterations = cli.get_or<long>("iterations", common->quick ? 3000 : 10000);
        const long restarts = cli.get_or<long>("restarts", common->quick ? 5 : 20);
        const double init_std = cli.get<double>("init-std");

        fmt::print("XOR: 4 patterns, E = mean (y - t)^2, full-batch gradient descent, lr {}, {} iterations, "
                   "init N(0, {}^2), seed {}\n", lr, iterations, init_std, common->seed);
        Model mlp = make_model(true, init_std, common->seed);
        Model perc = make_model(false, init_std, common->seed);
        const Result rm = fit(mlp, lr, iterations);
        const Result rp = fit(perc, lr, iterations);
        fmt::print("{:<12} {:>9} {:>9} {:>9} {:>9}   {:>8}  {}\n", "pattern", "(0,0)", "(0,1)", "(1,0)", "(1,1)",
                   "E", "right");
        fmt::print("{:<12} {:>9} {:>9} {:>9} {:>9}\n", "target", 0, 1, 1, 0);
        for (const auto& [name, r] : {std::pair{"2-2-1 net", &rm}, std::pair{"perceptron", &rp}})
            fmt::print("{:<12} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f}   {:>8.4g}  {}/4\n", name, r->outputs[0],
                       r->outputs[1], r->outputs[2], r->outputs[3], r->final_loss(), r->correct());
        fmt::print("error E at iterations 0, 10%, 50%, 100%: net {:.4f} {:.4f} {:.4f} {:.4f}; perceptron {:.4f} {:.4f} "
                   "{:.4f} {:.4f}\n",
                   rm.loss.front(), rm.loss[iterations / 10], rm.loss[iterations / 2], rm.final_loss(),
                   rp.loss.front(), rp.loss[iterations / 10], rp.loss[iterations / 2], rp.final_loss());

        // Restarts: how often does each model solve XOR?
        train::CsvWriter rcsv(common->out / "restarts.csv", {"model", "seed", "final_mse", "correct", "solved"});
        int mlp_solved = solved(rm), perc_solved = solved(rp), perc_best_correct = rp.correct();
        double perc_min_loss = rp.final_loss();
        rcsv.row({"mlp", common->seed, rm.final_loss(), rm.correct(), solved(rm) ? 1 : 0});
        rcsv.row({"perceptron", common->seed, rp.final_loss(), rp.correct(), solved(rp) ? 1 : 0});
        std::vector<double> stuck;
        for (long k = 1; k <= restarts; ++k) {
            const auto seed = static_cast<std::uint64_t>(common->seed) + static_cast<std::uint64_t>(k);
            Model m = make_model(true, init_std, seed), p = make_model(false, init_std, seed);
            const Result a = fit(m, lr, iterations), b = fit(p, lr, iterations);
            mlp_solved += solved(a);
            perc_solved += solved(b);
            perc_best_correct = std::max(perc_best_correct, b.correct());
            perc_min_loss = std::min(perc_min_loss, b.final_loss());
            if (!solved(a)) stuck.push_back(a.final_loss());
            rcsv.row({"mlp", seed, a.final_loss(), a.correct(), solved(a) ? 1 : 0});
            rcsv.row({"perceptron", seed, b.final_loss(), b.correct(), solved(b) ? 1 : 0});
        }
        rcsv.close();
        const long runs = restarts + 1;
        fmt::print("over {} seeds ({}..{}): the 2-2-1 net solves XOR in {}/{} runs{}; the single unit in {}/{} "
                   "(at best {}/4 patterns right, lowest E {:.4f})\n",
                   runs, common->seed, common->seed + restarts, mlp_solved, runs,
                   stuck.empty() ? "" : fmt::format(" (the others stop in a local minimum, E {:.3f} .. {:.3f})",
                                                     *std::min_element(stuck.begin(), stuck.end()),
                                                     *std::max_element(stuck.begin(), stuck.end())),
                   perc_solved, runs, perc_best_correct, perc_min_loss);

        plot_loss(common->out, rm, rp, lr, iterations, common->seed);
        plot_surfaces(common->out, mlp, perc, rm, rp, common->quick);

        support::verdict("the 2-2-1 sigmoid net learns XOR (all 4 patterns on the right side of 0.5, E < 0.05)",
                       fmt::format("seed {}: outputs {:.3f} {:.3f} {:.3f} {:.3f}, E = {:.4g}, {}/4 right",
                                   common->seed, rm.outputs[0], rm.outputs[1], rm.outputs[2], rm.outputs[3],
                                   rm.final_loss(), rm.correct()),
                       solved(rm));
        support::verdict("from most starting points, too (a 2-2-1 net can stop in a local minimum)",
                       fmt::format("solved in {}/{} seeds", mlp_solved, runs), 2 * mlp_solved > runs);
        support::verdict("a single sigmoid unit cannot: at most 3/4 right and E stays near 0.25 (>= 0.2) for every seed",
                       fmt::format("best {}/4 right, lowest final E {:.4f}, outputs at seed {}: {:.3f} {:.3f} {:.3f} "
                                   "{:.3f}",
                                   perc_best_correct, perc_min_loss, common->seed, rp.outputs[0], rp.outputs[1],
                                   rp.outputs[2], rp.outputs[3]),
                       perc_solved == 0 && perc_best_correct <= 3 && perc_min_loss >= 0.2);
        fmt::print("wrote {}: loss.csv, outputs.csv, restarts.csv, surface_mlp.csv, surface_perceptron.csv, "
                   "loss.png, surface.png\n", common->out.string());
        return 0;
    });
}
