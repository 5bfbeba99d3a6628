// train/: the Trainer learns, resumes exactly where it stopped, follows a schedule and reports
// divergence; optimizers by name; CSV files are all-or-nothing; progress lines.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "expect_error.hpp"
#include "data/dataset.hpp"
#include "fixtures.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"
#include "support/side_by_side.hpp"
#include "train/csv.hpp"
#include "train/progress.hpp"
#include "train/train.hpp"

namespace fs = std::filesystem;
namespace tt = boost::test_tools;
using namespace xg;

namespace {
using xgt::read_all;

constexpr auto mlp_loss = support::multilayer_net_loss;

nn::MultiLayerNetOptions net_options() {
    return {.input_size = 4, .hidden_sizes = {8}, .output_size = 3, .use_batchnorm = true, .seed = 5};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(train_layer)

BOOST_AUTO_TEST_CASE(trainer_learns_and_records_history) {
    xgt::TempDir dir{"train"};
    const data::Dataset train = xgt::blobs(300, 1), test = xgt::blobs(90, 2);
    nn::MultiLayerNet<float> net(net_options());
    optim::Adam<float> opt(net.parameters(), {.lr = 0.01});
    train::Trainer trainer(net, opt, train, mlp_loss,
                           {.epochs = 6, .batch_size = 32, .verbose = false, .metrics_csv = dir / "m.csv"});
    trainer.add_metric("accuracy", train::accuracy);
    trainer.evaluate_on("test", test);
    std::size_t epochs_seen = 0, batches_seen = 0;
    auto counter = std::make_shared<train::LambdaCallback>();
    counter->epoch_end = [&](train::TrainerBase&, const train::EpochMetrics& m) { BOOST_TEST(m.epoch == ++epochs_seen); };
    counter->batch_end = [&](train::TrainerBase&, const train::BatchEnd& b) {
        ++batches_seen;
        BOOST_TEST(b.rows == (b.iteration == 10 ? 300u - 9u * 32u : 32u));
    };
    trainer.add_callback(counter);
    const train::History& h = trainer.fit();
    BOOST_TEST(epochs_seen == 6u);
    BOOST_TEST(batches_seen == 60u);
    BOOST_TEST(h.epochs.size() == 6u);
    BOOST_TEST(h.iteration_loss.size() == 6u * 10u);  // ceil(300 / 32) batches per epoch
    BOOST_TEST(h.epochs.back().at("train_accuracy") > 0.95);
    BOOST_TEST(h.epochs.back().at("test_accuracy") > 0.95);
    // The metric is what MultiLayerNet::accuracy computes.
    BOOST_TEST(h.epochs.back().at("test_accuracy") == net.accuracy(test.images, test.labels), tt::tolerance(1e-12));
    BOOST_TEST(trainer.evaluate(test, "accuracy") == h.epochs.back().at("test_accuracy"), tt::tolerance(1e-12));
    BOOST_TEST(h.epochs.back().train_loss < h.epochs.front().train_loss);
    xgt::expect_error<ValueError>([&] { h.epochs.back().at("test_loss"); }, {});
    const std::string csv = read_all(dir / "m.csv");
    BOOST_TEST(csv.rfind("epoch,train_loss,train_accuracy,test_accuracy,seconds\n", 0) == 0u);
    BOOST_TEST(std::count(csv.begin(), csv.end(), '\n') == 7);
}

// The loss gets the batch as an rvalue: one that moves the images into its input (no copy) trains
// to the very bits of one that copies them from a const reference; a data set whose batch(rows)
// returns a reference gives the loss a copy, its own cache untouched.
BOOST_AUTO_TEST_CASE(loss_may_take_the_batch_whole) {
    const data::Dataset train = xgt::blobs(200, 3);
    const auto fit = [&](auto loss) {
        nn::MultiLayerNet<float> net(net_options());
        optim::Adam<float> opt(net.parameters(), {.lr = 0.01});
        train::Trainer trainer(net, opt, train, loss, {.epochs = 3, .batch_size = 32, .verbose = false});
        trainer.fit();
        std::vector<Array<float>> params;
        for (const Variable<float>& p : net.parameters()) params.push_back(p.data());
        return params;
    };
    std::size_t moved_rows = 0;
    const auto copied = fit([](nn::MultiLayerNet<float>& m, const data::Batch& b) {
        return m.loss(Variable<float>(b.x), b.y);
    });
    const auto moved = fit([&](nn::MultiLayerNet<float>& m, data::Batch&& b) {
        BOOST_TEST(b.x.shape(0) == b.y.size());
        moved_rows += b.y.size();
        Variable<float> x(std::move(b.x));
        return m.loss(x, b.y);
    });
    BOOST_TEST(moved_rows == 3u * 200u);
    BOOST_REQUIRE(copied.size() == moved.size());
    for (std::size_t i = 0; i < copied.size(); ++i) BOOST_TEST(copied[i] == moved[i], tt::per_element());

    struct Cached {  // batch(rows) returns a reference to its last batch
        const data::Dataset* d;
        mutable data::Batch last;
        std::size_t size() const { return d->size(); }
        const data::Batch& batch(train::Rows rows) const { return last = data::gather(*d, rows); }
    } cached{&train, {}};
    nn::MultiLayerNet<float> net(net_options());
    optim::SGD<float> opt(net.parameters(), {.lr = 0.1});
    train::Trainer trainer(net, opt, cached,
                           [&](nn::MultiLayerNet<float>& m, data::Batch&& b) {
                               Variable<float> x(std::move(b.x));
                               BOOST_TEST(cached.last.x.size() == x.data().size());  // moved from a copy
                               return m.loss(x, b.y);
                           },
                           {.epochs = 1, .batch_size = 50, .verbose = false});
    BOOST_TEST(trainer.fit().iteration_loss.size() == 4u);
}

BOOST_AUTO_TEST_CASE(random_sampling_draws_n_over_batch_iterations) {
    const data::Dataset train = xgt::blobs(100, 1);
    nn::MultiLayerNet<float> net(net_options());
    optim::SGD<float> opt(net.parameters(), {.lr = 0.1});
    train::Trainer trainer(net, opt, train, mlp_loss,
                           {.epochs = 2, .batch_size = 30, .sampling = train::Sampling::random, .verbose = false});
    const train::History& h = trainer.fit();
    BOOST_TEST(h.iteration_loss.size() == 2u * 3u);  // the book: max(N / batch, 1) per epoch
    BOOST_TEST(h.epochs.back().metrics.empty());     // no metric was asked for
}

BOOST_AUTO_TEST_CASE(resume_continues_exactly_where_it_stopped) {
    xgt::TempDir dir{"train"};
    const data::Dataset train = xgt::blobs(120, 3), test = xgt::blobs(40, 4);
    auto run = [&](std::size_t epochs, const std::string& checkpoint, bool resume, nn::MultiLayerNet<float>& net) {
        optim::Adam<float> opt(net.parameters(), {.lr = 0.01});
        train::Trainer t(net, opt, train, mlp_loss,
                         {.epochs = epochs, .batch_size = 16, .seed = 9, .verbose = false, .checkpoint = checkpoint});
        t.add_metric("accuracy", train::accuracy);
        t.evaluate_on("test", test);
        if (resume) t.resume(checkpoint);
        return t.fit();
    };
    nn::MultiLayerNet<float> straight(net_options());
    const train::History whole = run(4, "", false, straight);

    nn::MultiLayerNet<float> first(net_options());
    run(2, dir / "ckpt.npz", false, first);
    nn::MultiLayerNet<float> second(net_options());  // a fresh process would start like this
    const train::History resumed = run(4, dir / "ckpt.npz", true, second);

    BOOST_TEST(resumed.epochs.size() == 4u);
    BOOST_TEST(resumed.iteration_loss.size() == whole.iteration_loss.size());
    for (std::size_t i = 0; i < whole.iteration_loss.size(); ++i)
        BOOST_TEST(resumed.iteration_loss[i] == whole.iteration_loss[i], tt::tolerance(1e-6));
    for (std::size_t e = 0; e < 4; ++e)  // the restored epochs keep their metrics
        BOOST_TEST(resumed.epochs[e].at("test_accuracy") == whole.epochs[e].at("test_accuracy"), tt::tolerance(1e-6));
    for (std::size_t i = 0; i < straight.parameters().size(); ++i)
        BOOST_TEST(xt::allclose(second.parameters()[i].data(), straight.parameters()[i].data(), 1e-5, 1e-6),
                   "parameter " << i << ": max difference "
                                << xt::amax(xt::abs(second.parameters()[i].data() - straight.parameters()[i].data()))());

    nn::MultiLayerNet<float> other({.input_size = 4, .hidden_sizes = {5}, .output_size = 3});
    optim::Adam<float> opt(other.parameters());
    train::Trainer t(other, opt, train, mlp_loss, {.verbose = false});
    xgt::expect_error<IoError>([&] { t.resume(dir / "ckpt.npz"); }, {});
}

BOOST_AUTO_TEST_CASE(schedule_sets_each_epochs_rate) {
    const data::Dataset train = xgt::blobs(60, 4);
    nn::MultiLayerNet<float> net(net_options());
    optim::SGD<float> opt(net.parameters(), {.lr = 0.1});
    optim::StepLR<float> schedule(opt, 1, 0.5);
    std::vector<double> rates;
    train::Trainer t(net, opt, train, mlp_loss, {.epochs = 3, .batch_size = 20, .verbose = false});
    t.set_schedule(schedule);
    auto record = std::make_shared<train::LambdaCallback>();
    record->epoch_end = [&](train::TrainerBase& tr, const train::EpochMetrics&) { rates.push_back(tr.lr()); };
    t.add_callback(record);
    t.fit();
    BOOST_REQUIRE(rates.size() == 3u);
    BOOST_TEST(rates[0] == 0.1, tt::tolerance(1e-7));
    BOOST_TEST(rates[1] == 0.05, tt::tolerance(1e-7));
    BOOST_TEST(rates[2] == 0.025, tt::tolerance(1e-7));
}

BOOST_AUTO_TEST_CASE(divergence_is_reported) {
    const data::Dataset train = xgt::blobs(60, 4);
    nn::MultiLayerNet<float> net({.input_size = 4, .hidden_sizes = {8}, .output_size = 3});
    optim::SGD<float> opt(net.parameters(), {.lr = 1e30});
    train::Trainer t(net, opt, train, mlp_loss, {.epochs = 5, .batch_size = 20, .verbose = false});
    BOOST_CHECK_EXCEPTION(t.fit(), ValueError, [](const ValueError& e) {
        return std::string(e.what()).find("the loss is") != std::string::npos;
    });
    nn::MultiLayerNet<float> net2({.input_size = 4, .hidden_sizes = {8}, .output_size = 3});
    optim::SGD<float> opt2(net2.parameters(), {.lr = 1e30});
    train::Trainer quiet(net2, opt2, train, mlp_loss,
                         {.epochs = 5, .batch_size = 20, .verbose = false, .stop_on_divergence = false});
    BOOST_TEST(quiet.fit().diverged);
}

BOOST_AUTO_TEST_CASE(trainer_rejects_mismatched_data) {
    const data::Dataset train = xgt::blobs(60, 4);
    nn::MultiLayerNet<float> net({.input_size = 5, .hidden_sizes = {8}, .output_size = 3});
    optim::SGD<float> opt(net.parameters());
    train::Trainer t(net, opt, train, mlp_loss, {.batch_size = 20, .verbose = false});
    xgt::expect_error<ShapeError>([&] { t.fit(); }, {});  // the model's first Linear names both shapes
    nn::MultiLayerNet<float> ok(net_options());
    optim::SGD<float> opt2(ok.parameters());
    xgt::expect_error<ValueError>([&] { train::Trainer(ok, opt2, train, mlp_loss, {.batch_size = 0}); }, {});
    xgt::expect_error<ValueError>([&] { train::Trainer(ok, opt2, train, nullptr, {.batch_size = 20}); },
                                  {});  // no loss
    train::Trainer named(ok, opt2, train, mlp_loss, {.batch_size = 20});
    named.add_metric("accuracy", train::accuracy);
    xgt::expect_error<ValueError>([&] { named.add_metric("accuracy", train::accuracy); }, {});  // twice
    xgt::expect_error<ValueError>([&] { named.evaluate_on("a,b", train); }, {});               // a CSV column
    xgt::expect_error<ValueError>([&] { named.add_callback(nullptr); }, {});
}

BOOST_AUTO_TEST_CASE(optimizers_by_name) {
    Variable<double> w(Array<double>{1.0, 2.0}, true);
    for (const std::string& name : optim::optimizer_names()) {
        auto opt = optim::make_optimizer<double>(name, {w}, {.lr = 0.5});
        BOOST_TEST(opt->lr() == 0.5);
    }
    BOOST_TEST(optim::make_optimizer<double>("SGD", {w})->lr() == 0.01);  // the seeds' default
    BOOST_TEST(optim::make_optimizer<double>("adam", {w})->lr() == 0.001);
    BOOST_TEST(optim::make_optimizer<double>("adamw", {w}, {.weight_decay = 0.2})->weight_decay() == 0.2);
    BOOST_CHECK_EXCEPTION(optim::make_optimizer<double>("adamax", {w}), ValueError, [](const ValueError& e) {
        return std::string(e.what()).find("'adamax'") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(csv_is_published_whole_or_not_at_all) {
    xgt::TempDir dir{"train"};
    {
        train::CsvWriter csv(dir / "t.csv", {"name", "value"});
        csv.row({"a,b", 0.1}).row({"plain", 3});
        xgt::expect_error<ValueError>([&] { csv.row({1}); }, {});
        BOOST_TEST(!fs::exists(dir / "t.csv"));  // not before close()
        csv.close();
    }
    BOOST_TEST(read_all(dir / "t.csv") == "name,value\n\"a,b\",0.1\nplain,3\n");
    {
        train::CsvWriter abandoned(dir / "t.csv", {"other"});
        abandoned.row({1});
    }  // destroyed without close(): the old file stays
    BOOST_TEST(read_all(dir / "t.csv") == "name,value\n\"a,b\",0.1\nplain,3\n");
    BOOST_TEST(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
    xgt::expect_error<IoError>([&] { train::CsvWriter(dir / "missing/t.csv", {"x"}); }, {});
}

BOOST_AUTO_TEST_CASE(progress_prints_plain_lines_off_a_terminal) {
    std::ostringstream out;
    double now = 0;
    {
        train::Progress p(out, false, 10, "fit", 5, [&] { return now; });
        for (long s = 1; s <= 10; ++s) {
            now = static_cast<double>(s);
            p.update(s, {.loss = 1.0 / static_cast<double>(s)});
        }
    }
    const std::string text = out.str();
    BOOST_TEST(std::count(text.begin(), text.end(), '\n') >= 2);
    BOOST_TEST(text.find("5/10") != std::string::npos, text);
    BOOST_TEST(text.find("10/10") != std::string::npos, text);
    BOOST_TEST(text.find("0.1000") != std::string::npos, text);  // the last loss
    BOOST_TEST(text.find('\r') == std::string::npos);            // no bar redraws in a log
}

BOOST_AUTO_TEST_SUITE_END()
