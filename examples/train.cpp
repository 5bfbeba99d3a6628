// The main job: trains a MultiLayerNet on Fashion-MNIST (or any directory of the four MNIST IDX
// files) and reports per-epoch progress and the final test accuracy. scripts/run runs it.
// Started by mpirun (`scripts/run --np 2`), it trains data-parallel: each rank takes its share of
// every global batch of --batch-size rows, gradients are averaged over the ranks, and rank 0
// prints and writes the files. Batch norm's statistics are then each rank's own part's.
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data/dataset.hpp"
#include "dist/context.hpp"
#include "nn/nn.hpp"
#include "optim/factory.hpp"
#include "support/cli.hpp"
#include "train/csv.hpp"
#include "support/plot.hpp"
#include "support/side_by_side.hpp"
#include "train/train.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace flag = xg::support::flag;
using namespace xg;

namespace {

void plot_history(const fs::path& out, const train::History& history) {
    train::CsvWriter loss(out / "loss.csv", {"iteration", "loss"});
    for (std::size_t i = 0; i < history.iteration_loss.size(); ++i) loss.row({i + 1, history.iteration_loss[i]});
    loss.close();
    support::Figure fig{.title = "xgrad: MultiLayerNet training", .rows = 1, .cols = 2, .width = 1200, .height = 500};
    fig.panels.push_back({.title = "mini-batch loss",
                          .x = {.label = "iteration"},
                          .y = {.label = "loss", .log = true},
                          .series = {{.csv = out / "loss.csv", .x = "iteration", .y = "loss", .title = "loss"}}});
    fig.panels.push_back(
        {.title = "accuracy per epoch",
         .x = {.label = "epoch"},
         .y = {.label = "accuracy"},
         .series = {{.csv = out / "metrics.csv", .x = "epoch", .y = "train_accuracy", .title = "train",
                     .style = support::Style::linespoints},
                    {.csv = out / "metrics.csv", .x = "epoch", .y = "test_accuracy", .title = "test",
                     .style = support::Style::linespoints}},
         .legend = "bottom right"});
    support::save_png(fig, out / "training.png");
}

int run(int argc, char** argv, const dist::Context& world) {
    support::Cli cli("train", "Trains a MultiLayerNet on Fashion-MNIST (or --data DIR) and reports test accuracy.", 1);
    cli.add_data_flag();
    cli.options().add_options()
        ("epochs", flag::value(flag::Integer<std::size_t>{1, 100'000}), "epochs (default 12; --quick: 2)")
        ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(128),
         "mini-batch size (>= 2 with --batchnorm)")
        ("optimizer", flag::value(flag::Choice{optim::optimizer_names()})->default_value("adam"),
         "sgd, momentum, nesterov, adagrad, rmsprop, adam or adamw")
        ("lr", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(1e-3), "learning rate")
        ("schedule", flag::value(flag::Choice{{"cosine", "step", "none"}})->default_value("cosine"),
         "learning-rate schedule over the epochs: cosine (to 0), step (halved every quarter) or none")
        ("hidden",
         flag::value(flag::ListOf{flag::Integer<std::size_t>{1, 100'000}})->default_value({256, 128}, "256,128"),
         "hidden layer sizes, comma-separated")
        ("activation", flag::value(flag::ParsedBy{nn::parse_activation})->default_value(nn::Activation::relu, "relu"),
         "sigmoid, tanh, relu, leaky_relu or softplus")
        ("init", flag::value(flag::ParsedBy{nn::Init::parse})->default_value(nn::Init::he(), "he"),
         "he, xavier, he_uniform, glorot_uniform or a std")
        ("batchnorm", po::value<bool>()->default_value(true), "batch normalisation after each hidden layer")
        ("dropout", flag::value(flag::Real{.min = 0, .max = 1, .max_open = true})->default_value(0.0),
         "dropout ratio after each hidden activation, in [0, 1)")
        ("weight-decay", flag::value(flag::Real{.min = 0})->default_value(0.0), "lambda of 0.5*lambda*sum W^2")
        ("train-samples", flag::value(flag::Integer<std::size_t>{1, 100'000'000}),
         "use only the first N training samples (default all; --quick: 2000)")
        ("checkpoint", flag::value(flag::FileToWrite{})->default_value(""),
         "save model and optimizer here after every epoch (its folder must exist)")
        ("resume", po::bool_switch(), "continue from --checkpoint");
    const auto common = cli.parse(argc, argv);
    if (!common) return 0;
    const bool quick = common->quick;
    const std::string checkpoint = cli.get<std::string>("checkpoint");
    const bool resume = cli.get<bool>("resume");
    if (resume && checkpoint.empty()) throw ValueError("--resume needs --checkpoint PATH");
    if (resume && !fs::is_regular_file(checkpoint))
        throw ValueError(fmt::format("--resume: the --checkpoint file {} does not exist", checkpoint));
    if (cli.get<bool>("batchnorm") && cli.get<std::size_t>("batch-size") < 2)
        throw ValueError("--batch-size must be >= 2 with --batchnorm (a batch of one row has no variance)");

    data::TrainTest sets = cli.load_data();
    const std::string dir = cli.data_dir();
    if (cli.given("train-samples"))
        sets.train = support::first_samples(sets.train, cli.get<std::size_t>("train-samples"), "train-samples");
    else if (quick)
        sets.train = data::take(sets.train, std::min<std::size_t>(2000, sets.train.size()));
    if (quick) sets.test = data::take(sets.test, std::min<std::size_t>(1000, sets.test.size()));

    nn::MultiLayerNet<float> net({
        .input_size = sets.train.features(),
        .hidden_sizes = cli.get<std::vector<std::size_t>>("hidden"),
        .output_size = std::max(sets.train.classes(), sets.test.classes()),
        .activation = cli.get<nn::Activation>("activation"),
        .init = cli.get<nn::Init>("init"),
        .use_batchnorm = cli.get<bool>("batchnorm"),
        .dropout = cli.get<double>("dropout"),
        .weight_decay = cli.get<double>("weight-decay"),
        .seed = common->seed,
    });
    auto optimizer = optim::make_optimizer<float>(cli.get<std::string>("optimizer"), net.parameters(),
                                                  {.lr = cli.get<double>("lr")});
    const std::size_t epochs = cli.get_or<std::size_t>("epochs", quick ? 2 : 12);
    const std::string schedule_name = cli.get<std::string>("schedule");
    std::unique_ptr<optim::LRScheduler<float>> schedule;
    if (schedule_name == "cosine")
        schedule = std::make_unique<optim::CosineAnnealingLR<float>>(*optimizer, static_cast<long>(epochs));
    else if (schedule_name == "step")
        schedule = std::make_unique<optim::StepLR<float>>(*optimizer, std::max<long>(static_cast<long>(epochs) / 4, 1), 0.5);
    // The book's MultiLayerNet is one client of the Trainer: its loss (with weight decay) per
    // batch, accuracy on the training and test sets after each epoch.
    train::Trainer trainer(
        net, *optimizer, sets.train,
        support::multilayer_net_loss,
        {.epochs = epochs,
         .batch_size = cli.get<std::size_t>("batch-size"),
         .seed = common->seed,
         .metrics_csv = (common->out / "metrics.csv").string(),
         .checkpoint = checkpoint});
    trainer.add_metric("accuracy", train::accuracy);
    trainer.evaluate_on("test", sets.test);
    if (schedule) trainer.set_schedule(*schedule);
    const bool main_rank = world.is_main();
    if (resume) {
        trainer.resume(checkpoint);  // every rank reads it; the run may have had another number of ranks
        if (main_rank) fmt::print("resumed from {} after epoch {}\n", checkpoint, trainer.history().epochs.size());
    }
    trainer.distribute(world);  // rank 0's model to every rank (nothing in a world of one)

    if (main_rank) {
        fmt::print("data: {} ({} train, {} test samples, {} features, {} classes)\n", dir, sets.train.size(),
                   sets.test.size(), sets.train.features(), sets.train.classes());
        fmt::print("model: {}\noptimizer: {} lr {}, schedule {}\n", net.repr(), optimizer->name(), optimizer->lr(),
                   schedule_name);
        if (world.world_size() > 1)
            fmt::print("ranks: {} (a global batch of {} rows split over them)\n", world.world_size(),
                       trainer.options().batch_size);
    }
    const train::History& history = trainer.fit();
    if (history.epochs.empty()) throw ValueError("no epoch was trained");
    double seconds = 0;
    for (const auto& e : history.epochs) seconds += e.seconds;
    const train::EpochMetrics& last = history.epochs.back();
    if (!main_rank) return 0;
    fmt::print("final test accuracy: {:.4f} (train {:.4f}) after {} epochs, {:.1f}s of training\n",
               last.at("test_accuracy"), last.at("train_accuracy"), last.epoch, seconds);
    support::verdict("the default settings reach a test accuracy of at least 0.88 in under two minutes",
                   fmt::format("{:.4f} in {:.1f}s", last.at("test_accuracy"), seconds),
                   last.at("test_accuracy") >= 0.88 && seconds < 120);
    plot_history(common->out, history);
    fmt::print("wrote {}, {} and {}\n", (common->out / "metrics.csv").string(), (common->out / "loss.csv").string(),
               (common->out / "training.png").string());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    dist::Context world(argc, argv);
    return support::guarded_main("train", [&] { return run(argc, argv, world); }, &world);
}
