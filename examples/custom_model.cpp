// A user's own model, all in this one file: what a library user writes when MultiLayerNet is not
// the model they need.
//   - a custom op, swish(x) = x * sigmoid(x): forward on arrays, backward written with ops;
//   - a residual block, y = x + W2 swish(W1 x): a UnaryModule, so a Sequential chains it;
//   - a gate taking two inputs, h * sigmoid(c Wg): a Module with a forward of its own signature;
//   - the model: each image enters twice, as its pixels and as its profile (the 28 row and 28
//     column means), the two inputs of a data::TensorDataset.
// The model is gradchecked in float64 on a small batch first, then trained on Fashion-MNIST by
// train::Trainer with accuracy on the test set, early stopping and the best epoch kept on disk.
//
// Writes to --out: metrics.csv (per epoch), accuracy.png, best.npz (the best epoch's checkpoint).
// Verdicts: every gradient check passes (else the program fails); the test accuracy reaches 0.85
// (0.70 with --quick).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include <fmt/format.h>

#include "support/cli.hpp"
#include "support/plot.hpp"
#include "xgrad.hpp"

namespace data = xg::data;
namespace flag = xg::support::flag;
namespace fs = std::filesystem;
namespace nn = xg::nn;
namespace support = xg::support;
namespace train = xg::train;

namespace {

// ---- The custom op ----

template <class T>
struct Swish : xg::Function<T> {
    std::string_view name() const override { return "swish"; }
    xg::Array<T> forward(const xg::ArrayRefs<T>& xs) override {
        const xg::Array<T>& x = xs[0];
        xg::Array<T> y = xg::Array<T>::from_shape(x.shape());
        for (std::size_t i = 0; i < x.size(); ++i) y.data()[i] = x.data()[i] / (T(1) + std::exp(-x.data()[i]));
        return y;
    }
    // swish'(x) = s + x s (1 - s) with s = sigmoid(x), written with ops: differentiable again.
    std::vector<xg::Variable<T>> backward(const xg::Variable<T>& gy) override {
        const xg::Variable<T>& x = this->input(0);
        const xg::Variable<T> s = xg::sigmoid(x);
        return {gy * (s + x * s * (T(1) - s))};
    }
};

template <class T>
xg::Variable<T> swish(const xg::Variable<T>& x) {
    return xg::apply<Swish<T>>({x});
}

// ---- The modules ----

template <class T>
class Residual : public nn::UnaryModule<T> {
public:
    Residual(std::size_t width, nn::Generator& gen) : width_(width) {
        inner_ = this->register_module(
            "inner", std::make_shared<nn::Linear<T>>(width, width, nn::LinearOptions{.generator = &gen}));
        // Small outer weights: each block starts close to the identity, so a deep stack trains.
        outer_ = this->register_module(
            "outer",
            std::make_shared<nn::Linear<T>>(width, width,
                                            nn::LinearOptions{.init = nn::Init::normal(0.01), .generator = &gen}));
    }
    xg::Variable<T> forward(const xg::Variable<T>& x) override { return x + (*outer_)(swish((*inner_)(x))); }
    std::string repr() const override { return fmt::format("Residual({})", width_); }

private:
    std::size_t width_;
    std::shared_ptr<nn::Linear<T>> inner_, outer_;
};

template <class T>
class Gate : public nn::Module<T> {
public:
    Gate(std::size_t width, std::size_t context, nn::Generator& gen) {
        project_ = this->register_module(
            "project",
            std::make_shared<nn::Linear<T>>(context, width, nn::LinearOptions{.init = nn::Init::xavier(), .generator = &gen}));
    }
    xg::Variable<T> forward(const xg::Variable<T>& h, const xg::Variable<T>& context) {
        return h * xg::sigmoid((*project_)(context));
    }

private:
    std::shared_ptr<nn::Linear<T>> project_;
};

struct ProfileNetOptions {
    std::size_t pixels = 784, profile = 56, width = 128, blocks = 2, classes = 10;
    std::uint64_t seed = 0;
};

template <class T>
class ProfileNet : public nn::Module<T> {
public:
    explicit ProfileNet(const ProfileNetOptions& o) {
        nn::Generator gen(o.seed);
        stem_ = this->register_module("stem",
                                      std::make_shared<nn::Linear<T>>(o.pixels, o.width, nn::LinearOptions{.generator = &gen}));
        blocks_ = this->register_module("blocks", std::make_shared<nn::Sequential<T>>());
        for (std::size_t i = 0; i < o.blocks; ++i) blocks_->push_back(std::make_shared<Residual<T>>(o.width, gen));
        gate_ = this->register_module("gate", std::make_shared<Gate<T>>(o.width, o.profile, gen));
        head_ = this->register_module(
            "head", std::make_shared<nn::Linear<T>>(o.width, o.classes, nn::LinearOptions{.init = nn::Init::xavier(), .generator = &gen}));
    }
    // Logits (N, classes) of images given as pixels (N, pixels) and profiles (N, profile).
    xg::Variable<T> forward(const xg::Variable<T>& pixels, const xg::Variable<T>& profile) {
        const xg::Variable<T> h = (*blocks_)(swish((*stem_)(pixels)));
        return (*head_)(gate_->forward(h, profile));
    }

private:
    std::shared_ptr<nn::Linear<T>> stem_, head_;
    std::shared_ptr<nn::Sequential<T>> blocks_;
    std::shared_ptr<Gate<T>> gate_;
};

// ---- Data: pixels and profiles ----

// The row and column means of each square image: (N, 2 * side).
xg::Array<float> profiles(const xg::Array<float>& images) {
    const std::size_t n = images.shape(0), features = images.shape(1);
    const auto side = static_cast<std::size_t>(std::lround(std::sqrt(static_cast<double>(features))));
    if (side * side != features)
        throw xg::ShapeError(fmt::format("custom_model: images of {} pixels are not square", features));
    xg::Array<float> out = xg::Array<float>::from_shape({n, 2 * side});
    std::fill(out.begin(), out.end(), 0.0f);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t r = 0; r < side; ++r)
            for (std::size_t c = 0; c < side; ++c) {
                const float v = images(i, r * side + c) / static_cast<float>(side);
                out(i, r) += v;
                out(i, side + c) += v;
            }
    return out;
}

// The images move into the data set (a braced list of arrays would copy them: an
// initializer_list's elements are const).
data::TensorDataset<float> two_views(data::Dataset set) {
    xg::Array<float> profile = profiles(set.images);
    std::vector<xg::Array<float>> views;
    views.push_back(std::move(set.images));
    views.push_back(std::move(profile));
    return data::TensorDataset<float>(std::move(views), std::move(set.labels));
}

using Batch = data::TensorBatch<float>;

// The Trainer hands the batch over (an rvalue): its arrays become the inputs without a copy.
xg::Variable<float> loss(ProfileNet<float>& net, Batch&& b) {
    return xg::softmax_cross_entropy(
        net.forward(xg::Variable<float>(std::move(b.x[0])), xg::Variable<float>(std::move(b.x[1]))), b.y);
}

double accuracy(ProfileNet<float>& net, const Batch& b) {
    const xg::Variable<float> logits = net.forward(xg::Variable<float>(b.x[0]), xg::Variable<float>(b.x[1]));
    return static_cast<double>(nn::count_correct(logits.data(), b.y)) / static_cast<double>(b.y.size());
}

// ---- Gradient checks in float64, before any training ----

bool check_gradients(std::uint64_t seed) {
    using V = xg::Variable<double>;
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    auto random = [&](std::size_t rows, std::size_t cols) {
        xg::Array<double> a = xg::Array<double>::from_shape({rows, cols});
        for (double& v : a) v = normal(rng);
        return a;
    };
    // The op alone, at random points and at 0, once and twice differentiated.
    xg::Array<double> points = random(3, 4);
    points(0, 0) = 0.0;
    auto f = [](const std::vector<V>& in) { return swish(in[0]); };
    const xg::GradcheckReport op = xg::gradcheck<double>(f, {V(points, true)});
    const xg::GradcheckReport op2 = xg::gradgradcheck<double>(f, {V(points, true)});
    // The same values as the composed ops.
    const V x(points);
    const bool same = xt::allclose(swish(x).data(), (x * xg::sigmoid(x)).data(), 1e-15, 0.0);
    // The whole model on a small batch: every parameter.
    ProfileNet<double> net({.pixels = 9, .profile = 6, .width = 5, .blocks = 2, .classes = 3, .seed = seed});
    const V pixels(random(4, 9)), profile(random(4, 6));
    const xg::Labels labels{0, 2, 1, 2};
    const xg::GradcheckReport model = xg::gradcheck_params<double>(
        [&] { return xg::softmax_cross_entropy(net.forward(pixels, profile), labels); }, net.parameters());
    fmt::print("gradcheck swish: {}\ngradgradcheck swish: {}\ngradcheck of the model's {} parameters:\n{}\n", op.str(),
               op2.str(), net.parameters().size(), model.str());
    return support::verdict("back-propagation through the custom op and model matches central differences",
                            fmt::format("swish {} / {}, composed values {}, model {}", op.ok ? "ok" : "FAILED",
                                        op2.ok ? "ok" : "FAILED", same ? "equal" : "DIFFER",
                                        model.ok ? "ok" : "FAILED"),
                            op.ok && op2.ok && same && model.ok);
}

void plot(const fs::path& out) {
    support::Figure fig{.title = "custom_model: a residual, gated two-input model", .width = 800, .height = 500};
    fig.panels.push_back({.title = "accuracy per epoch",
                          .x = {.label = "epoch"},
                          .y = {.label = "accuracy"},
                          .series = {{.csv = out / "metrics.csv", .x = "epoch", .y = "train_accuracy", .title = "train",
                                      .style = support::Style::linespoints},
                                     {.csv = out / "metrics.csv", .x = "epoch", .y = "test_accuracy", .title = "test",
                                      .style = support::Style::linespoints}},
                          .legend = "bottom right"});
    support::save_png(fig, out / "accuracy.png");
}

int run(int argc, char** argv) {
    support::Cli cli("custom_model", "Trains a user-defined residual, gated two-input model on Fashion-MNIST.", 7);
    cli.add_data_flag();
    cli.options().add_options()
        ("epochs", flag::value(flag::Integer<std::size_t>{1, 100'000}), "epochs (default 10; --quick: 3)")
        ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(128), "mini-batch size")
        ("lr", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(1e-3), "Adam's learning rate")
        ("width", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(128), "hidden width")
        ("blocks", flag::value(flag::Integer<std::size_t>{0, 1'000})->default_value(2), "residual blocks")
        ("patience", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(3),
         "early stopping: epochs without a better test accuracy");
    const auto common = cli.parse(argc, argv);
    if (!common) return 0;
    const bool quick = common->quick;

    // A wrong gradient is a bug, not a finding: the program fails (exit 1) after its report.
    const bool gradients_ok = check_gradients(common->seed);

    data::TrainTest sets = cli.load_data();
    if (quick) {
        sets.train = data::take(sets.train, std::min<std::size_t>(5000, sets.train.size()));
        sets.test = data::take(sets.test, std::min<std::size_t>(1000, sets.test.size()));
    }
    const std::size_t pixels = sets.train.features(), classes = std::max(sets.train.classes(), sets.test.classes());
    const data::TensorDataset<float> train_set = two_views(std::move(sets.train)),
                                     test_set = two_views(std::move(sets.test));
    ProfileNet<float> net({.pixels = pixels,
                           .profile = train_set.tensors()[1].shape(1),
                           .width = cli.get<std::size_t>("width"),
                           .blocks = cli.get<std::size_t>("blocks"),
                           .classes = classes,
                           .seed = common->seed});
    std::cout << net;
    xg::optim::Adam<float> adam(net.parameters(), {.lr = cli.get<double>("lr")});
    train::Trainer trainer(net, adam, train_set, loss,
                           {.epochs = cli.get_or<std::size_t>("epochs", quick ? 3 : 10),
                            .batch_size = cli.get<std::size_t>("batch-size"),
                            .seed = common->seed,
                            .metrics_csv = (common->out / "metrics.csv").string()});
    trainer.add_metric("accuracy", accuracy);
    trainer.evaluate_on("test", test_set);
    trainer.add_callback(std::make_shared<train::EarlyStopping>(
        "test_accuracy", train::EarlyStoppingOptions{.patience = cli.get<std::size_t>("patience")}));
    auto best = std::make_shared<train::BestCheckpoint>((common->out / "best.npz").string(), "test_accuracy");
    trainer.add_callback(best);

    const train::History& history = trainer.fit();
    plot(common->out);
    const double target = quick ? 0.70 : 0.85;
    support::verdict(fmt::format("the model reaches a test accuracy of at least {:.2f}", target),
                               fmt::format("best {:.4f} over {} epochs{}", best->best(), history.epochs.size(),
                                           history.stop_reason.empty() ? "" : " (" + history.stop_reason + ")"),
                               best->best() >= target);
    fmt::print("wrote {}, {} and {}\n", (common->out / "metrics.csv").string(), (common->out / "accuracy.png").string(),
               (common->out / "best.npz").string());
    return gradients_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("custom_model", [&] { return run(argc, argv); });
}
