// Deep Learning from Scratch 5.7.3 (gradient_check.py) and EXPERIMENTS.md section 8: the gradient
// from back-propagation against central differences (f(x + h) - f(x - h)) / 2h, all in float64.
//
// 1. Single ops: xg::gradcheck on a dozen ops (a non-scalar output is checked through sum(w * f)
//    with fixed random w), reporting the max absolute and relative error per input.
// 2. The book's check: a 784-50-10 ReLU net (weights N(0, 0.01^2)) on the first 3 training images;
//    numerical gradient of the loss with the book's h = 1e-4, per parameter the mean |difference|
//    (what the book prints: ~1e-10 to 1e-13) and the max relative error.
// 3. A harder net: 196 inputs (the images 2x2-average-pooled), 3 tanh layers of 30 with batch norm,
//    dropout 0.2 (the masks re-drawn identically for every evaluation) and weight decay 0.1.
// Nets 2 and 3 are also run through xg::gradcheck_params (the library's pass/fail check).
//
// 4. The same differences for h from 1e-2 to 1e-7: they follow the finite differences' own error
//    (truncation ~h^2, rounding ~1/h), which says the remaining differences are not back-propagation's.
//
// Writes to --out: ops.csv, params.csv (per net and parameter), h_sweep.csv, errors.png (bar charts
// on a log scale and the h sweep).
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data/dataset.hpp"
#include "nn/nn.hpp"
#include "ops/gradcheck.hpp"
#include "support/cli.hpp"
#include "train/csv.hpp"
#include "support/plot.hpp"
#include "xgrad.hpp"

namespace {

namespace flag = xg::support::flag;
namespace nn = xg::nn;
namespace support = xg::support;
namespace train = xg::train;
namespace data = xg::data;
namespace fs = std::filesystem;
using V = xg::Variable<double>;
using A = xg::Array<double>;

// N(0, 1) by Box-Muller on mt19937_64's bits: the same numbers with every standard library.
class Normal {
public:
    explicit Normal(std::uint64_t seed) : rng_(seed) {}
    double operator()() {
        const double u1 = (static_cast<double>(rng_() >> 11) + 0.5) * 0x1.0p-53;
        const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    }
    A array(std::vector<std::size_t> shape, double offset = 0, double scale = 1) {
        A a = A::from_shape(shape);
        for (double& v : a) v = offset + scale * (*this)();
        return a;
    }

private:
    std::mt19937_64 rng_;
};

struct OpCase {
    std::string name;
    xg::VariableFn<double> f;
    std::vector<A> inputs;
};

// Inputs of relu and abs stay at least 0.1 from their kink; log's and sqrt's are positive.
std::vector<OpCase> op_cases(Normal& n, std::shared_ptr<nn::BatchNorm1d<double>> bn) {
    auto away_from_zero = [](A a) {
        for (double& v : a) v = v >= 0 ? v + 0.1 : v - 0.1;
        return a;
    };
    auto positive = [](A a) {
        for (double& v : a) v = std::abs(v) + 0.2;
        return a;
    };
    const xg::Labels labels = {1, 0, 4, 2};
    return {
        {"sigmoid", [](const std::vector<V>& x) { return xg::sigmoid(x[0]); }, {n.array({4, 5})}},
        {"tanh", [](const std::vector<V>& x) { return xg::tanh(x[0]); }, {n.array({4, 5})}},
        {"relu", [](const std::vector<V>& x) { return xg::relu(x[0]); }, {away_from_zero(n.array({4, 5}))}},
        {"softplus", [](const std::vector<V>& x) { return xg::softplus(x[0]); }, {n.array({4, 5}, 0, 3)}},
        {"exp", [](const std::vector<V>& x) { return xg::exp(x[0]); }, {n.array({4, 5})}},
        {"log", [](const std::vector<V>& x) { return xg::log(x[0]); }, {positive(n.array({4, 5}))}},
        {"pow (x^3)", [](const std::vector<V>& x) { return xg::pow(x[0], 3.0); }, {n.array({4, 5})}},
        {"mul and div (broadcast)", [](const std::vector<V>& x) { return x[0] * x[1] / (x[2] * x[2] + 1.0); },
         {n.array({4, 5}), n.array({5}), n.array({4, 1})}},
        {"matmul", [](const std::vector<V>& x) { return xg::matmul(x[0], x[1]); }, {n.array({4, 5}), n.array({5, 3})}},
        {"linear (affine)", [](const std::vector<V>& x) { return xg::linear(x[0], x[1], x[2]); },
         {n.array({4, 5}), n.array({5, 3}), n.array({3})}},
        {"sum over axis 0", [](const std::vector<V>& x) { return xg::sum(x[0], 0); }, {n.array({4, 5})}},
        {"max over axis 1", [](const std::vector<V>& x) { return xg::max(x[0], 1); }, {n.array({4, 5})}},
        {"softmax", [](const std::vector<V>& x) { return xg::softmax(x[0]); }, {n.array({4, 5})}},
        {"softmax_cross_entropy", [labels](const std::vector<V>& x) { return xg::softmax_cross_entropy(x[0], labels); },
         {n.array({4, 5})}},
        {"mean_squared_error", [](const std::vector<V>& x) { return xg::mean_squared_error(x[0], x[1]); },
         {n.array({4, 5}), n.array({4, 5})}},
        {"BatchNorm1d (training)", [bn](const std::vector<V>& x) { return (*bn)(x[0]); }, {n.array({6, 5}, 0.5, 2)}},
    };
}

// The book's numerical_gradient: each parameter element perturbed by +-h in place, the loss
// evaluated twice, the element restored (xg::central_difference).
std::vector<A> numerical_gradient_params(const std::function<V()>& loss, const std::vector<V>& params, double h) {
    std::vector<A> grads;
    for (const V& p : params) {
        A g = A::from_shape(p.shape());
        for (std::size_t j = 0; j < p.size(); ++j)
            g.data()[j] = xg::central_difference<double>(p, j, [&] { return loss().item(); }, h);
        grads.push_back(std::move(g));
    }
    return grads;
}

struct ParamError {
    std::string net, name;
    std::size_t elements = 0;
    double mean_abs = 0, max_abs = 0;
    double max_rel = 0;        // over elements with max(|a|, |n|) > rel_floor
    std::size_t rel_counted = 0;
    double norm_rel = 0;       // ||a - n|| / max(||a||, ||n||)
    bool library_ok = true;    // xg::gradcheck_params' verdict for this parameter
    double library_max_rel = 0;
};

constexpr double rel_floor = 1e-7;   // below this a gradient element is noise-level for h = 1e-4
constexpr double norm_floor = 1e-8;  // the same for a whole parameter's gradient norm

ParamError compare(const std::string& net, const std::string& name, const A& a, const A& n) {
    ParamError e{net, name, a.size()};
    double diff2 = 0, a2 = 0, n2 = 0;
    for (std::size_t j = 0; j < a.size(); ++j) {
        const double x = a.data()[j], y = n.data()[j], d = std::abs(x - y);
        e.mean_abs += d;
        e.max_abs = std::max(e.max_abs, d);
        const double scale = std::max(std::abs(x), std::abs(y));
        if (scale > rel_floor) {
            e.max_rel = std::max(e.max_rel, d / scale);
            ++e.rel_counted;
        }
        diff2 += d * d;
        a2 += x * x;
        n2 += y * y;
    }
    e.mean_abs /= static_cast<double>(a.size());
    // A parameter whose gradient is exactly zero (a bias right before batch norm, which subtracts the batch
    // mean) would otherwise divide noise by noise.
    e.norm_rel = std::sqrt(diff2) / std::max(std::sqrt(std::max(a2, n2)), norm_floor);
    return e;
}

// 2x2 average pooling of 28x28 images (rows of 784) into 14x14 (rows of 196).
A pool2x2(const A& x) {
    const std::size_t rows = x.shape()[0];
    A out = A::from_shape({rows, 196});
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i = 0; i < 14; ++i)
            for (std::size_t j = 0; j < 14; ++j) {
                double s = 0;
                for (std::size_t di = 0; di < 2; ++di)
                    for (std::size_t dj = 0; dj < 2; ++dj) s += x(r, (2 * i + di) * 28 + 2 * j + dj);
                out(r, i * 14 + j) = s / 4;
            }
    return out;
}

// Checks one net: backprop vs the book's numerical gradient, and xg::gradcheck_params.
std::vector<ParamError> check_net(const std::string& label, nn::MultiLayerNet<double>& net, const A& x,
                                  const xg::Labels& y, double h, const std::function<void()>& before_each_loss) {
    const std::vector<xg::nn::Named<double>> named = net.named_parameters();
    std::vector<V> params;
    for (const auto& [name, p] : named) params.push_back(p);
    const std::function<V()> loss = [&] {
        before_each_loss();
        return net.loss(V(x), y);
    };
    net.zero_grad();
    loss().backward();
    std::vector<A> analytic;
    for (const V& p : params) analytic.push_back(p.grad().data());
    net.zero_grad();
    const std::vector<A> numeric = numerical_gradient_params(loss, params, h);
    const xg::GradcheckReport lib = xg::gradcheck_params<double>(loss, params);
    std::vector<ParamError> out;
    for (std::size_t i = 0; i < params.size(); ++i) {
        out.push_back(compare(label, named[i].first, analytic[i], numeric[i]));
        out.back().library_ok = lib.inputs[i].ok;
        out.back().library_max_rel = lib.inputs[i].max_rel_error;
    }
    return out;
}

// Finite differences have errors of their own: truncation, which falls as h^2, and rounding, which grows
// as 1/h. For up to 64 elements of every parameter (evenly spaced), the norm-wise relative difference
// between back-propagation and central differences for each h: if back-propagation is right, the
// difference follows that V, with a minimum near h = 1e-5 in float64.
struct SweepPoint {
    double h, norm_rel;
};

std::vector<SweepPoint> sweep_h(nn::MultiLayerNet<double>& net, const A& x, const xg::Labels& y,
                                const std::function<void()>& before_each_loss, const std::vector<double>& hs) {
    std::vector<V> params;
    for (const auto& [name, p] : net.named_parameters()) params.push_back(p);
    const auto loss = [&] {
        before_each_loss();
        return net.loss(V(x), y).item();
    };
    net.zero_grad();
    before_each_loss();
    net.loss(V(x), y).backward();
    std::vector<std::pair<std::size_t, std::size_t>> picks;  // (parameter, element)
    std::vector<double> analytic;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const std::size_t n = params[i].data().size(), k = std::min<std::size_t>(64, n);
        for (std::size_t j = 0; j < k; ++j) {
            picks.emplace_back(i, j * n / k);
            analytic.push_back(params[i].grad().data().data()[j * n / k]);
        }
    }
    net.zero_grad();
    std::vector<SweepPoint> out;
    for (const double h : hs) {
        double diff2 = 0, a2 = 0, n2 = 0;
        for (std::size_t k = 0; k < picks.size(); ++k) {
            const double num = xg::central_difference<double>(params[picks[k].first], picks[k].second, loss, h);
            diff2 += (num - analytic[k]) * (num - analytic[k]);
            a2 += analytic[k] * analytic[k];
            n2 += num * num;
        }
        out.push_back({h, std::sqrt(diff2) / std::max(std::sqrt(std::max(a2, n2)), norm_floor)});
    }
    return out;
}

void print_params(const std::vector<ParamError>& errors) {
    fmt::print("{:<22} {:>8} {:>14} {:>12} {:>14} {:>12}   {}\n", "parameter", "elements", "mean |diff|", "max |diff|",
               "max rel error", "norm rel", "gradcheck_params");
    for (const ParamError& e : errors)
        fmt::print("{:<22} {:>8} {:>14.3e} {:>12.3e} {:>14.3e} {:>12.3e}   {}\n", e.name, e.elements, e.mean_abs,
                   e.max_abs, e.max_rel, e.norm_rel, e.library_ok ? "ok" : "FAILED");
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("gradient_check", [&] {
        support::Cli cli("gradient_check",
                       "Back-propagation against central differences on single ops and whole networks, float64 "
                       "(Deep Learning from Scratch 5.7.3).",
                       1);
        cli.add_data_flag();
        cli.options().add_options()
            ("h", flag::value(flag::Real{.min = 0, .max = 1, .min_open = true})->default_value(1e-4),
             "the book's difference step for the networks, in (0, 1]")
            ("samples", flag::value(flag::Integer<std::size_t>{1, 10'000})->default_value(3),
             "training images in the book's check")
            ("hidden", flag::value(flag::Integer<std::size_t>{1, 10'000}),
             "hidden units of the book's net (default 50; --quick: 10)");
        const auto common = cli.parse(argc, argv);
        if (!common) return 0;
        const double h = cli.get<double>("h");
        const std::size_t samples = cli.get<std::size_t>("samples");
        const std::size_t hidden = cli.get_or<std::size_t>("hidden", common->quick ? 10 : 50);

        // 1. Single ops.
        Normal normal(common->seed);
        auto bn = std::make_shared<nn::BatchNorm1d<double>>(5);
        fmt::print("1. single ops, xg::gradcheck (central differences, eps 1e-6), float64:\n");
        fmt::print("{:<26} {:>14} {:>14}  {}\n", "op", "max abs error", "max rel error", "");
        train::CsvWriter ops_csv(common->out / "ops.csv", {"op", "input", "max_abs_error", "max_rel_error", "ok"});
        double ops_worst_abs = 0;
        bool ops_ok = true;
        std::size_t op_count = 0;
        for (const OpCase& c : op_cases(normal, bn)) {
            std::vector<V> in;
            for (const A& a : c.inputs) in.emplace_back(a);
            const xg::GradcheckReport r = xg::gradcheck<double>(c.f, in);
            double worst_abs = 0, worst_rel = 0;
            for (const xg::GradcheckInput& i : r.inputs) {
                ops_csv.row({c.name, i.index, i.max_abs_error, i.max_rel_error, i.ok ? 1 : 0});
                worst_abs = std::max(worst_abs, i.max_abs_error);
                worst_rel = std::max(worst_rel, i.max_rel_error);
            }
            fmt::print("{:<26} {:>14.3e} {:>14.3e}  {}\n", c.name, worst_abs, worst_rel, r.ok ? "ok" : "FAILED");
            ops_worst_abs = std::max(ops_worst_abs, worst_abs);
            ops_ok = ops_ok && r.ok;
            ++op_count;
        }
        ops_csv.close();

        // 2. The book's net on real images.
        const std::string dir = cli.data_dir();
        const data::TrainTest sets = cli.load_data();
        const data::Dataset first = support::first_samples(sets.train, samples, "samples");
        const A x784 = xt::cast<double>(first.images);
        const std::size_t inputs = common->quick ? 196 : 784;
        const A x_book = common->quick ? pool2x2(x784) : x784;
        nn::MultiLayerNet<double> book_net({.input_size = inputs,
                                            .hidden_sizes = {hidden},
                                            .output_size = 10,
                                            .activation = nn::Activation::relu,
                                            .init = nn::Init::normal(0.01),
                                            .seed = common->seed});
        const std::string book_label = fmt::format("{}-{}-10 ReLU", inputs, hidden);
        fmt::print("\n2. the book's check: {} net, weights N(0, 0.01^2), the first {} training images of {}{}; "
                   "numerical gradient with h = {}\n",
                   book_label, samples, dir, common->quick ? " (2x2-pooled to 14x14 in --quick)" : "", h);
        const std::vector<ParamError> book = check_net(book_label, book_net, x_book, first.labels, h, [] {});
        print_params(book);

        // 3. Batch norm, tanh, dropout and weight decay.
        const data::Dataset batch8 = data::take(sets.train, 8);
        const A x196 = pool2x2(xt::cast<double>(batch8.images));
        nn::MultiLayerNet<double> deep_net({.input_size = 196,
                                            .hidden_sizes = {30, 30, 30},
                                            .output_size = 10,
                                            .activation = nn::Activation::tanh,
                                            .init = nn::Init::xavier(),
                                            .use_batchnorm = true,
                                            .dropout = 0.2,
                                            .weight_decay = 0.1,
                                            .seed = common->seed});
        std::vector<nn::Dropout<double>*> dropouts;
        for (const auto& layer : deep_net.layers())
            if (auto* d = dynamic_cast<nn::Dropout<double>*>(layer.get())) dropouts.push_back(d);
        const auto same_masks = [&] {
            for (std::size_t i = 0; i < dropouts.size(); ++i) dropouts[i]->seed(1000 + i);
        };
        const std::string deep_label = "196-30x3-10 tanh+BN+dropout+wd";
        fmt::print("\n3. {} net: batch norm (training mode), dropout 0.2 (same masks for every evaluation), weight "
                   "decay 0.1, 8 pooled images, h = {}\n",
                   deep_label, h);
        const std::vector<ParamError> deep = check_net(deep_label, deep_net, x196, batch8.labels, h, same_masks);
        print_params(deep);
        fmt::print("(max rel error over elements with max(|backprop|, |numerical|) > {:g}; norm rel = ||backprop - "
                   "numerical|| / max of the norms; gradcheck_params: the library's check, eps 1e-6, atol 1e-5, rtol "
                   "1e-3)\n",
                   rel_floor);

        const std::vector<double> hs = {1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7};
        const std::vector<SweepPoint> book_sweep = sweep_h(book_net, x_book, first.labels, [] {}, hs);
        const std::vector<SweepPoint> deep_sweep = sweep_h(deep_net, x196, batch8.labels, same_masks, hs);
        fmt::print("\nnorm-wise relative difference vs h (up to 64 elements per parameter):\n{:<32}", "h");
        for (const double hh : hs) fmt::print(" {:>10.0e}", hh);
        for (const auto& [label, points] : {std::pair{book_label, &book_sweep}, std::pair{deep_label, &deep_sweep}}) {
            fmt::print("\n{:<32}", label);
            for (const SweepPoint& p : *points) fmt::print(" {:>10.2e}", p.norm_rel);
        }
        fmt::print("\n");
        train::CsvWriter scsv(common->out / "h_sweep.csv", {"net", "h", "norm_rel_error"});
        for (const auto& [label, points] : {std::pair{book_label, &book_sweep}, std::pair{deep_label, &deep_sweep}})
            for (const SweepPoint& p : *points) scsv.row({label, p.h, p.norm_rel});
        scsv.close();

        train::CsvWriter pcsv(common->out / "params.csv",
                              {"net", "parameter", "index", "elements", "mean_abs_diff", "max_abs_diff", "max_rel_error",
                               "norm_rel_error", "gradcheck_params_ok", "gradcheck_params_max_rel"});
        std::size_t index = 0;
        for (const auto* group : {&book, &deep})
            for (const ParamError& e : *group)
                pcsv.row({e.net, e.name, ++index, e.elements, e.mean_abs, e.max_abs, e.max_rel, e.norm_rel,
                          e.library_ok ? 1 : 0, e.library_max_rel});
        pcsv.close();

        // Bar charts: one bar per parameter, log scale.
        const fs::path path = common->out / "params.csv";
        support::Figure fig{.title = "Back-propagation vs central differences (h = " + fmt::format("{}", h) +
                                   "), float64: one bar per parameter",
                          .rows = 2, .cols = 2, .width = 1600, .height = 1200, .panels = {}};
        std::vector<std::string> xtics;
        index = 0;
        for (const auto* group : {&book, &deep})
            for (const ParamError& e : *group) xtics.push_back(fmt::format("\"{}\" {}", e.name, ++index));
        const std::string xtic_cmd = fmt::format("set xtics rotate by 60 right ({})", fmt::join(xtics, ", "));
        for (const auto& [column, label, title] :
             {std::tuple{"mean_abs_diff", "mean |backprop - numerical|", "mean |backprop - numerical| per parameter (the book's measure)"},
              std::tuple{"max_rel_error", "max relative error",
                         "max relative error per element (elements above 1e-7; no bar: gradient exactly 0)"},
              std::tuple{"norm_rel_error", "||backprop - numerical|| / ||backprop||",
                         "norm-wise relative error per parameter"}}) {
            fig.panels.push_back({
                .title = title,
                .x = {.label = "parameter", .min = 0.3, .max = static_cast<double>(index) + 0.7},
                .y = {.label = label, .log = true},
                .series = {{.csv = path, .x = "index", .y = column, .title = book_label, .style = support::Style::boxes,
                            .where = {{"net", book_label}}, .color = "#1f77b4", .box_width = 0.7},
                           {.csv = path, .x = "index", .y = column, .title = deep_label, .style = support::Style::boxes,
                            .where = {{"net", deep_label}}, .color = "#ff7f0e", .box_width = 0.7}},
                .contours = {},
                .legend = "outside top center horizontal",
                .commands = {xtic_cmd, "set format y \"%.0e\""},
            });
        }
        const fs::path spath = common->out / "h_sweep.csv";
        fig.panels.push_back({
            .title = "the differences are the finite differences' own: truncation ~h^2 (ReLU: kinks crossed at large h), "
                     "rounding ~1/h",
            .x = {.label = "h (log scale)", .log = true, .min = 5e-8, .max = 2e-2},
            .y = {.label = "norm-wise relative difference", .log = true},
            .series = {{.csv = spath, .x = "h", .y = "norm_rel_error", .title = book_label,
                        .style = support::Style::linespoints, .where = {{"net", book_label}}, .color = "#1f77b4",
                        .line_width = 2},
                       {.csv = spath, .x = "h", .y = "norm_rel_error", .title = deep_label,
                        .style = support::Style::linespoints, .where = {{"net", deep_label}}, .color = "#ff7f0e",
                        .line_width = 2}},
            .contours = {},
            .legend = "top center",
            .commands = {"set format y \"%.0e\"", "set format x \"%.0e\""},
        });
        support::save_png(fig, common->out / "errors.png");

        // Verdicts.
        double book_worst_mean = 0, all_worst_rel = 0, all_worst_norm = 0;
        bool library_ok = true;
        for (const ParamError& e : book) book_worst_mean = std::max(book_worst_mean, e.mean_abs);
        for (const auto* group : {&book, &deep})
            for (const ParamError& e : *group) {
                all_worst_rel = std::max(all_worst_rel, e.max_rel);
                all_worst_norm = std::max(all_worst_norm, e.norm_rel);
                library_ok = library_ok && e.library_ok;
            }
        support::verdict(fmt::format("every single op passes xg::gradcheck ({} ops)", op_count),
                       fmt::format("{}; largest abs error {:.2e}", ops_ok ? "all pass" : "some FAIL", ops_worst_abs), ops_ok);
        support::verdict("the book's net: mean |backprop - numerical| per parameter is tiny (the book: ~1e-10 to 1e-13; "
                       "here: below 1e-9)",
                       fmt::format("largest mean |diff| {:.2e} over {} parameters", book_worst_mean, book.size()),
                       book_worst_mean < 1e-9);
        support::verdict("every parameter of both nets: relative error below 1e-6 (norm-wise, ||backprop - numerical|| / "
                       "||backprop||)",
                       fmt::format("largest norm-wise relative error {:.2e}; element-wise the largest is {:.2e}, on "
                                   "elements whose gradient is near the finite differences' own error (see h_sweep)",
                                   all_worst_norm, all_worst_rel),
                       all_worst_norm < 1e-6);
        // Truncation error of central differences is ~h^2 f''': from h = 1e-3 to 1e-4 it should fall ~100x.
        const double fall = deep_sweep[1].norm_rel / deep_sweep[2].norm_rel;
        support::verdict("the remaining differences are the finite differences' truncation error: 10x smaller h gives "
                       "~100x smaller differences (30x..300x) from h = 1e-3 to 1e-4 on the deep net",
                       fmt::format("{:.2e} at h = 1e-3, {:.2e} at h = 1e-4: {:.0f}x", deep_sweep[1].norm_rel,
                                   deep_sweep[2].norm_rel, fall),
                       fall >= 30 && fall <= 300);
        support::verdict("xg::gradcheck_params passes every parameter of both nets",
                       library_ok ? "all pass" : "some FAIL", library_ok);
        fmt::print("wrote {}: ops.csv, params.csv, errors.png\n", common->out.string());
        return 0;
    });
}
