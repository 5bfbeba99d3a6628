// Deep Learning from Scratch 6.1.7 (figure 6-8): six update rules minimise
// f(x, y) = x^2/20 + y^2 from (-7, 2) for 30 steps. The valley is 20 times flatter along x than
// along y, so the gradient points mostly across it, not at the minimum: SGD zig-zags.
// Gradients come from xgrad's graph (f is built from ops on two scalar Variables each step);
// the updates are xg::optim's.
//
// Writes to --out: paths.csv (every point of every path), summary.csv (one row per rule),
// f_grid.csv (f sampled for the contour lines) and paths.png (one panel per rule, as the book).
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <xtensor/xbuilder.hpp>

#include "support/cli.hpp"
#include "train/csv.hpp"
#include "support/plot.hpp"
#include "xgrad.hpp"

namespace {

namespace flag = xg::support::flag;
namespace optim = xg::optim;
namespace support = xg::support;
namespace train = xg::train;
using V = xg::Variable<double>;

const double start_x = -7.0;
const double start_y = 2.0;

V f(const V& x, const V& y) { return xg::pow(x, 2.0) / 20.0 + xg::pow(y, 2.0); }

double f_value(double x, double y) { return x * x / 20.0 + y * y; }  // only for the contour grid

struct Rule {
    std::string name;
    double lr;
    std::function<std::unique_ptr<optim::Optimizer<double>>(std::vector<V>, double lr)> make;
};

// The book's learning rates for SGD, Momentum, AdaGrad and Adam. The other two are ours:
// - Nesterov at Momentum's lr 0.1 and momentum 0.9, so the two panels differ only by the
//   look-ahead.
// - RMSProp with the book's decay 0.99: over 30 steps h stays close to (1 - 0.99) * sum(g^2), so
//   RMSProp moves like AdaGrad with a rate 1/sqrt(0.01) = 10 times larger; lr 0.15 matches
//   AdaGrad's 1.5 (first step 1.5 along each axis), making the two comparable.
std::vector<Rule> rules() {
    return {
        {"SGD", 0.95, [](std::vector<V> p, double lr) { return std::make_unique<optim::SGD<double>>(p, optim::SGDOptions{.lr = lr}); }},
        {"Momentum", 0.1, [](std::vector<V> p, double lr) { return std::make_unique<optim::Momentum<double>>(p, optim::MomentumOptions{.lr = lr}); }},
        {"Nesterov", 0.1, [](std::vector<V> p, double lr) { return std::make_unique<optim::Nesterov<double>>(p, optim::NesterovOptions{.lr = lr}); }},
        {"AdaGrad", 1.5, [](std::vector<V> p, double lr) { return std::make_unique<optim::AdaGrad<double>>(p, optim::AdaGradOptions{.lr = lr}); }},
        {"RMSProp", 0.15, [](std::vector<V> p, double lr) { return std::make_unique<optim::RMSProp<double>>(p, optim::RMSPropOptions{.lr = lr}); }},
        {"Adam", 0.3, [](std::vector<V> p, double lr) { return std::make_unique<optim::Adam<double>>(p, optim::AdamOptions{.lr = lr}); }},
    };
}

struct Point {
    double x, y, f;
};

struct Path {
    std::string rule;
    double lr;
    std::vector<Point> points;  // the start and the point after each step

    const Point& end() const { return points.back(); }
    double distance_to_minimum() const { return std::hypot(end().x, end().y); }
    // Steps after which y has the opposite sign: the zig-zag across the valley.
    int y_sign_changes() const {
        int n = 0;
        for (std::size_t i = 1; i < points.size(); ++i) n += points[i - 1].y * points[i].y < 0;
        return n;
    }
    double length() const {
        double total = 0;
        for (std::size_t i = 1; i < points.size(); ++i)
            total += std::hypot(points[i].x - points[i - 1].x, points[i].y - points[i - 1].y);
        return total;
    }
};

Path descend(const Rule& rule, long steps) {
    V x = xg::scalar(start_x, true, "x");
    V y = xg::scalar(start_y, true, "y");
    const auto optimizer = rule.make({x, y}, rule.lr);
    Path path{rule.name, rule.lr, {}};
    for (long step = 0;; ++step) {
        optimizer->zero_grad();
        const V loss = f(x, y);
        path.points.push_back({x.item(), y.item(), loss.item()});
        if (step == steps) break;
        loss.backward();
        optimizer->step();
    }
    return path;
}

const Path& find(const std::vector<Path>& paths, const std::string& rule) {
    for (const Path& p : paths)
        if (p.rule == rule) return p;
    throw xg::ValueError("no path for " + rule);
}

void write_csvs(const std::vector<Path>& paths, const std::filesystem::path& out) {
    train::CsvWriter csv(out / "paths.csv", {"optimizer", "lr", "step", "x", "y", "f"});
    for (const Path& p : paths)
        for (std::size_t i = 0; i < p.points.size(); ++i)
            csv.row({p.rule, p.lr, i, p.points[i].x, p.points[i].y, p.points[i].f});
    csv.close();

    train::CsvWriter summary(out / "summary.csv", {"optimizer", "lr", "final_x", "final_y", "final_f",
                                                   "distance_to_minimum", "y_sign_changes", "path_length"});
    for (const Path& p : paths)
        summary.row({p.rule, p.lr, p.end().x, p.end().y, p.end().f, p.distance_to_minimum(), p.y_sign_changes(),
                     p.length()});
    summary.close();
}

void plot(const std::vector<Path>& paths, const std::filesystem::path& out, bool quick, long steps) {
    // A coarse grid in --quick mode: contour lines are then slightly polygonal, which is fine for a test.
    const std::size_t nx = quick ? 41 : 201;
    const std::size_t ny = quick ? 21 : 101;
    const xt::xtensor<double, 1> xs = xt::linspace(-10.0, 10.0, nx);
    const xt::xtensor<double, 1> ys = xt::linspace(-5.0, 5.0, ny);
    support::write_grid_csv(out / "f_grid.csv", "x", "y", "f", {xs.begin(), xs.end()}, {ys.begin(), ys.end()}, f_value);

    support::Figure figure{.title = fmt::format("f(x, y) = x^2/20 + y^2 from ({}, {}), {} steps; grey: contour lines of f",
                                              start_x, start_y, steps),
                         .rows = 2,
                         .cols = 3,
                         .width = 1500,
                         .height = 900,
                         .panels = {}};
    for (const Path& p : paths) {
        figure.panels.push_back({
            .title = fmt::format("{} (lr {}): f = {:.3g} at ({:.3f}, {:.3f})", p.rule, p.lr, p.end().f, p.end().x,
                                 p.end().y),
            .x = {.label = "x", .min = -10.0, .max = 10.0},
            .y = {.label = "y", .min = -5.0, .max = 5.0},
            .series = {{.csv = out / "paths.csv", .x = "x", .y = "y", .title = p.rule + " path",
                        .style = support::Style::linespoints, .where = {{"optimizer", p.rule}}, .color = "#d62728"}},
            .contours = {{.csv = out / "f_grid.csv", .x = "x", .y = "y", .z = "f",
                          .levels = {0.1, 0.25, 0.5, 1, 2, 3, 4.5, f_value(start_x, start_y), 9}}},
            .commands = {"set label 1 \"minimum\" at 0,0 point pt 2 ps 2 lc rgb \"black\" offset 0.8,-0.8"},
        });
    }
    support::save_png(figure, out / "paths.png");
}

void print_verdicts(const std::vector<Path>& paths) {
    const Path& sgd = find(paths, "SGD");
    const Path& momentum = find(paths, "Momentum");
    const Path& nesterov = find(paths, "Nesterov");
    const Path& adagrad = find(paths, "AdaGrad");
    const Path& adam = find(paths, "Adam");
    const std::vector<const Path*> book_four = {&sgd, &momentum, &adagrad, &adam};
    const auto steps = static_cast<int>(sgd.points.size() - 1);

    bool sgd_zigzags_most = 2 * sgd.y_sign_changes() > steps;
    for (const Path* p : book_four) sgd_zigzags_most &= p == &sgd || p->y_sign_changes() < sgd.y_sign_changes();
    support::verdict("SGD zig-zags across the valley (y changes sign at most steps, more often than the others)",
                   fmt::format("y changes sign in {}/{} steps for SGD, {} Momentum, {} AdaGrad, {} Adam",
                               sgd.y_sign_changes(), steps, momentum.y_sign_changes(), adagrad.y_sign_changes(),
                               adam.y_sign_changes()),
                   sgd_zigzags_most);

    bool adagrad_best = true;
    for (const Path* p : book_four) adagrad_best &= p == &adagrad || adagrad.end().f < p->end().f;
    support::verdict("on this problem AdaGrad does best of the book's four (it damps the large y steps at once)",
                   fmt::format("final f: AdaGrad {:.3g}, SGD {:.3g}, Momentum {:.3g}, Adam {:.3g}", adagrad.end().f,
                               sgd.end().f, momentum.end().f, adam.end().f),
                   adagrad_best);

    // A common reading of figure 6-8, though the book judges the paths' shapes, not where they end.
    const double d_sgd = sgd.distance_to_minimum();
    const bool sgd_ends_farthest = d_sgd > momentum.distance_to_minimum() && d_sgd > adagrad.distance_to_minimum() &&
                                   d_sgd > adam.distance_to_minimum();
    support::verdict(fmt::format("SGD ends farther from the minimum than Momentum, AdaGrad and Adam after {} steps", steps),
                   fmt::format("distance to (0, 0): SGD {:.3f}, Momentum {:.3f}, AdaGrad {:.3f}, Adam {:.3f}", d_sgd,
                               momentum.distance_to_minimum(), adagrad.distance_to_minimum(),
                               adam.distance_to_minimum()),
                   sgd_ends_farthest);

    support::verdict("Nesterov's look-ahead tames Momentum's overshoot (same lr, lower final f)",
                   fmt::format("final f: Nesterov {:.3g}, Momentum {:.3g}", nesterov.end().f, momentum.end().f),
                   nesterov.end().f < momentum.end().f);
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("optimizer_compare_naive", [&] {
        support::Cli cli("optimizer_compare_naive",
                       "Six update rules on f(x, y) = x^2/20 + y^2 from (-7, 2) (Deep Learning from Scratch 6.1.7).");
        cli.options().add_options()
            ("steps", flag::value(flag::Integer<long>{1, 100'000})->default_value(30), "update steps per rule");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const long steps = cli.get<long>("steps");

        std::vector<Path> paths;
        fmt::print("f(x, y) = x^2/20 + y^2 from ({}, {}), {} steps; the minimum is f(0, 0) = 0\n", start_x, start_y, steps);
        fmt::print("{:<9} {:>5} {:>10} {:>10} {:>11} {:>9} {:>9} {:>8}\n", "rule", "lr", "x", "y", "f", "distance",
                   "y flips", "length");
        for (const Rule& rule : rules()) {
            paths.push_back(descend(rule, steps));
            const Path& p = paths.back();
            fmt::print("{:<9} {:>5} {:>10.4f} {:>10.4f} {:>11.4g} {:>9.4f} {:>9} {:>8.2f}\n", p.rule, p.lr, p.end().x,
                       p.end().y, p.end().f, p.distance_to_minimum(), p.y_sign_changes(), p.length());
        }
        write_csvs(paths, common->out);
        plot(paths, common->out, common->quick, steps);
        print_verdicts(paths);
        fmt::print("wrote {}/paths.csv, summary.csv, f_grid.csv, paths.png (and paths.gp)\n", common->out.string());
        return 0;
    });
}
