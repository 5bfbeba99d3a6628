// Hostile command lines and options: every bad flag is refused where Program_options parses it,
// with a ValueError naming the flag and the value; MultiLayerNet and Trainer refuse the same
// mistakes from C++; a last mini-batch of one row with batch norm is dropped, not trained on.
// (tests/check_flags.sh runs the built programs with bad flags.)
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "fixtures.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"
#include "support/cli.hpp"
#include "support/side_by_side.hpp"
#include "train/train.hpp"

namespace fs = std::filesystem;
namespace po = boost::program_options;
namespace flag = xg::support::flag;
using namespace xg;

namespace {

// A program declaring the main job's kinds of flags, the way the examples do.
struct Program {
    xgt::TempDir dir{"cli"};
    support::Cli cli{"prog", "a test program", 7};

    Program() {
        cli.add_data_flag();
        cli.options().add_options()
            ("epochs", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(12), "epochs")
            ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(128), "batch")
            ("lr", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(1e-3), "learning rate")
            ("dropout", flag::value(flag::Real{.min = 0, .max = 1, .max_open = true})->default_value(0.0), "ratio")
            ("hidden", flag::value(flag::ListOf{flag::Integer<std::size_t>{1, 100'000}})->default_value({256, 128}, "256,128"),
             "sizes")
            ("optimizer", flag::value(flag::Choice{optim::optimizer_names()})->default_value("adam"), "rule")
            ("activation", flag::value(flag::ParsedBy{nn::parse_activation})->default_value(nn::Activation::relu, "relu"),
             "activation")
            ("init", flag::value(flag::ParsedBy{nn::Init::parse})->default_value(nn::Init::he(), "he"), "init")
            ("range", flag::value(flag::Interval{flag::Real{.min = -30, .max = 3}})->default_value({-6, -2}, "-6,-2"),
             "log10 range")
            ("checkpoint", flag::value(flag::FileToWrite{})->default_value(""), "file");
    }

    // Parses `args` after the program's name (and --out in the scratch directory).
    std::optional<support::CommonOptions> parse(std::vector<std::string> args) {
        args.insert(args.begin(), {"prog", "--out", (dir.path / "out").string()});
        std::vector<const char*> argv;
        for (const std::string& a : args) argv.push_back(a.c_str());
        return cli.parse(static_cast<int>(argv.size()), argv.data());
    }
};

// Parsing `args` must throw ValueError whose message contains each of `named` (the flag and the
// value), and must not create --out (nothing is done after a bad flag).
void refused(const std::vector<std::string>& args, const std::vector<std::string>& named) {
    Program p;
    std::string what;
    try {
        p.parse(args);
    } catch (const ValueError& e) {
        what = e.what();
    }
    BOOST_TEST_CONTEXT("args: " << [&] {
        std::string s;
        for (const auto& a : args) s += "'" + a + "' ";
        return s;
    }()) {
        BOOST_TEST(!what.empty(), "no ValueError");
        for (const std::string& n : named) BOOST_TEST(what.find(n) != std::string::npos, "'" << what << "' lacks " << n);
        BOOST_TEST(!fs::exists(p.dir.path / "out"));
    }
}

// `f` must throw E with each of `named` in its message.
template <class E, class F>
void throws_naming(F&& f, const std::vector<std::string>& named) {
    std::string what;
    try {
        f();
    } catch (const E& e) {
        what = e.what();
    }
    BOOST_TEST(!what.empty(), "nothing of the expected type was thrown");
    for (const std::string& n : named) BOOST_TEST(what.find(n) != std::string::npos, "'" << what << "' lacks " << n);
}

// What `body` writes to stderr (file descriptor 2) while it runs.
template <class F>
std::string stderr_of(F&& body) {
    xgt::TempDir dir{"cli"};
    const fs::path file = dir.path / "stderr";
    std::fflush(stderr);
    const int saved = ::dup(2);
    std::FILE* sink = std::fopen(file.c_str(), "w");
    ::dup2(::fileno(sink), 2);
    body();
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    std::fclose(sink);
    std::ifstream in(file);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(robustness)
BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(good_flags_give_typed_values_and_defaults) {
    Program p;
    const auto common = p.parse({"--epochs", "3", "--batch-size=64", "--lr", "0.5", "--hidden", "10,20,30",
                                 "--optimizer", "ADAM", "--activation", "tanh", "--init", "0.01", "--range", "-5,-1",
                                 "--seed", "4294967295", "--checkpoint", (p.dir.path / "c.npz").string()});
    BOOST_REQUIRE(common);
    BOOST_TEST(common->seed == 4294967295u);
    BOOST_TEST(p.cli.get<std::size_t>("epochs") == 3u);
    BOOST_TEST(p.cli.get<std::size_t>("batch-size") == 64u);
    BOOST_TEST(p.cli.get<double>("lr") == 0.5);
    BOOST_TEST(p.cli.get<double>("dropout") == 0.0);  // the default
    BOOST_TEST(p.cli.get<std::vector<std::size_t>>("hidden") == (std::vector<std::size_t>{10, 20, 30}));
    BOOST_TEST(p.cli.get<std::string>("optimizer") == "adam");  // as listed, whatever the case given
    BOOST_TEST((p.cli.get<nn::Activation>("activation") == nn::Activation::tanh));
    BOOST_TEST(p.cli.get<nn::Init>("init").str() == "normal(std=0.01)");
    using Range = std::pair<double, double>;
    BOOST_TEST(p.cli.get<Range>("range").first == -5.0);
    BOOST_TEST(p.cli.get<Range>("range").second == -1.0);
    BOOST_TEST(p.cli.given("epochs"));
    BOOST_TEST(!p.cli.given("dropout"));
    BOOST_TEST(p.cli.get_or<std::size_t>("epochs", 99) == 3u);
    BOOST_TEST(fs::is_directory(p.dir.path / "out"));
}

BOOST_AUTO_TEST_CASE(zero_or_non_integer_epochs) {
    refused({"--epochs", "0"}, {"--epochs", "'0'", "[1, 100000]"});
    refused({"--epochs", "1e3"}, {"--epochs", "'1e3'"});
    refused({"--epochs", "3.5"}, {"--epochs"});
    refused({"--epochs", "100001"}, {"--epochs"});
    refused({"--epochs"}, {"--epochs"});               // no value
    refused({"--epochs", "--lr", "1"}, {"--epochs"});  // the next flag is no value
}

BOOST_AUTO_TEST_CASE(negative_batch_size_does_not_wrap_around) {
    // Program_options' own size_t parsing turns "-1" into 2^64 - 1.
    refused({"--batch-size", "-1"}, {"--batch-size", "'-1'"});
    refused({"--batch-size=-1"}, {"--batch-size", "'-1'"});
    refused({"--batch-size", "18446744073709551615"}, {"--batch-size"});
    refused({"--batch-size", "99999999999999999999999"}, {"--batch-size"});  // beyond 64 bits
}

BOOST_AUTO_TEST_CASE(dropout_outside_zero_one_or_nan) {
    for (const char* bad : {"-0.5", "nan", "NaN", "1", "inf", "0.5x", ""})
        refused({"--dropout", bad}, {"--dropout", "[0, 1)"});
}

BOOST_AUTO_TEST_CASE(learning_rate_nan_negative_zero_or_infinite) {
    for (const char* bad : {"nan", "-1", "0", "inf", "-inf", "1e999"}) refused({"--lr", bad}, {"--lr", "> 0"});
}

BOOST_AUTO_TEST_CASE(hidden_sizes_empty_absurd_or_malformed) {
    refused({"--hidden", ""}, {"--hidden"});
    refused({"--hidden", "99999999999"}, {"--hidden", "99999999999"});
    refused({"--hidden", "256,,128"}, {"--hidden", "empty"});
    refused({"--hidden", "256,"}, {"--hidden", "empty"});
    refused({"--hidden", "256,0"}, {"--hidden", "'0'"});
    refused({"--hidden", "256;128"}, {"--hidden"});
}

BOOST_AUTO_TEST_CASE(stray_words_are_not_ignored) {
    refused({"stray"}, {"'stray'"});
    refused({"--epochs", "3", "5"}, {"'5'"});
}

BOOST_AUTO_TEST_CASE(unknown_and_repeated_flags) {
    refused({"--epoch-count", "3"}, {"--epoch-count"});
    refused({"--epochs", "3", "--epochs", "4"}, {"--epochs"});
}

BOOST_AUTO_TEST_CASE(checkpoint_folder_must_exist_at_parse_time) {
    refused({"--checkpoint", "/no-such-folder-xgrad/c.npz"}, {"--checkpoint", "/no-such-folder-xgrad"});
    refused({"--checkpoint", fs::temp_directory_path().string()}, {"--checkpoint", "directory"});
}

BOOST_AUTO_TEST_CASE(data_must_be_a_directory) {
    refused({"--data", "/no-such-folder-xgrad"}, {"--data", "/no-such-folder-xgrad"});
}

BOOST_AUTO_TEST_CASE(seed_outside_32_bits) {
    refused({"--seed", "-1"}, {"--seed", "'-1'"});
    refused({"--seed", "4294967296"}, {"--seed", "4294967296"});
    refused({"--seed", "abc"}, {"--seed"});
}

BOOST_AUTO_TEST_CASE(unknown_names_for_choices) {
    refused({"--optimizer", "adamax"}, {"--optimizer", "'adamax'", "sgd, momentum"});
    refused({"--activation", "swish"}, {"--activation", "'swish'", "relu"});
    refused({"--init", "huge"}, {"--init", "'huge'", "xavier"});
    refused({"--init", "-0.1"}, {"--init"});
    refused({"--range", "-2,-6"}, {"--range", "lo < hi"});
    refused({"--range", "-6"}, {"--range"});
    refused({"--range", "-6,-2,-1"}, {"--range"});
    refused({"--range", "-6,nan"}, {"--range"});
}

BOOST_AUTO_TEST_CASE(more_samples_than_the_data_has) {
    const data::Dataset d = xgt::blobs(10, 1);
    BOOST_TEST(support::first_samples(d, 10, "train-samples").size() == 10u);
    throws_naming<ValueError>([&] { support::first_samples(d, 11, "train-samples"); }, {"--train-samples", "11", "10"});
}

BOOST_AUTO_TEST_CASE(guarded_main_turns_any_exception_into_one_line) {
    int status = 0;
    const std::string oom = stderr_of([&] { status = support::guarded_main("prog", [] () -> int { throw std::bad_alloc(); }); });
    BOOST_TEST(status == 1);
    BOOST_TEST(oom.rfind("prog: error: out of memory", 0) == 0);
    BOOST_TEST(std::count(oom.begin(), oom.end(), '\n') == 1);
    const std::string multi = stderr_of([&] {
        status = support::guarded_main("prog", [] () -> int { throw ValueError("first\nsecond"); });
    });
    BOOST_TEST(status == 1);
    BOOST_TEST(multi == "prog: error: first second\n");
    const std::string other = stderr_of([&] { status = support::guarded_main("prog", [] () -> int { throw 42; }); });
    BOOST_TEST(status == 1);
    BOOST_TEST(other == "prog: error: unknown exception\n");
}

BOOST_AUTO_TEST_SUITE_END()  // cli

// What the flags end up in: the same mistakes made from C++ are refused by name.
BOOST_AUTO_TEST_SUITE(options)

BOOST_AUTO_TEST_CASE(multilayer_net_refuses_bad_options_by_name) {
    using Net = nn::MultiLayerNet<float>;
    const nn::MultiLayerNetOptions base{.input_size = 4, .hidden_sizes = {8}, .output_size = 3};
    for (const double ratio : {-0.5, 1.0, std::nan("")}) {
        auto o = base;
        o.dropout = ratio;
        throws_naming<ValueError>([&] { Net net(o); }, {"dropout"});
    }
    for (const double lambda : {-1.0, std::numeric_limits<double>::infinity(), std::nan("")}) {
        auto o = base;
        o.weight_decay = lambda;
        throws_naming<ValueError>([&] { Net net(o); }, {"weight_decay"});
    }
    auto o = base;
    o.hidden_sizes = {8, 0};
    throws_naming<ValueError>([&] { Net net(o); }, {"hidden_sizes", "[8, 0]"});
    o = base;
    o.input_size = 0;
    throws_naming<ValueError>([&] { Net net(o); }, {"input_size"});
    o = base;
    o.dropout = 0.5;
    o.weight_decay = 0.1;
    BOOST_CHECK_NO_THROW(Net{o});
}

BOOST_AUTO_TEST_CASE(absurd_sizes_are_refused_before_allocating) {
    // 784 x 99999999999 floats: far more than any machine's memory; without the check, bad_alloc
    // (or, for Linear, an element count that wraps around).
    throws_naming<ResourceError>(
        [] { nn::MultiLayerNet<float> net({.input_size = 784, .hidden_sizes = {99'999'999'999}, .output_size = 10}); },
        {"MultiLayerNet", "hidden_sizes", "99999999999", "GiB"});
    throws_naming<ResourceError>([] { nn::Linear<float> l(std::size_t{1} << 40, std::size_t{1} << 40); },
                                 {"Linear(1099511627776 -> 1099511627776)"});
}

namespace {
constexpr auto mlp_loss = support::multilayer_net_loss;
}  // namespace

BOOST_AUTO_TEST_CASE(trainer_refuses_bad_options_by_name) {
    const data::Dataset set = xgt::blobs(30, 2);
    nn::MultiLayerNet<float> plain({.input_size = 4, .hidden_sizes = {8}, .output_size = 3, .seed = 1});
    nn::MultiLayerNet<float> normed({.input_size = 4, .hidden_sizes = {8}, .output_size = 3, .use_batchnorm = true, .seed = 1});
    optim::SGD<float> sgd(plain.parameters()), sgd2(normed.parameters());
    throws_naming<ValueError>([&] { train::Trainer(plain, sgd, set, mlp_loss, {.epochs = 0, .batch_size = 10}); },
                              {"epochs"});
    throws_naming<ValueError>([&] { train::Trainer(plain, sgd, set, mlp_loss, {.epochs = 1, .batch_size = 31}); },
                              {"batch_size", "31", "30"});
    throws_naming<ValueError>([&] { train::Trainer(normed, sgd2, set, mlp_loss, {.epochs = 1, .batch_size = 1}); },
                              {"batch_size", "batch norm"});
    BOOST_CHECK_NO_THROW(train::Trainer(plain, sgd, set, mlp_loss, {.epochs = 1, .batch_size = 1}));
}

// 33 rows in batches of 16: the third batch of every epoch is one row. Its batch variance is 0,
// so BatchNorm1d refuses it in training; the Trainer drops that row (a different one each epoch)
// rather than fail after an epoch of work. Without batch norm nothing is dropped.
BOOST_AUTO_TEST_CASE(last_batch_of_one_row_is_dropped_with_batch_norm) {
    const data::Dataset set = xgt::blobs(33, 3);
    for (const bool batchnorm : {true, false}) {
        nn::MultiLayerNet<float> net(
            {.input_size = 4, .hidden_sizes = {8}, .output_size = 3, .use_batchnorm = batchnorm, .seed = 4});
        optim::SGD<float> sgd(net.parameters(), {.lr = 0.1});
        train::Trainer t(net, sgd, set, mlp_loss, {.epochs = 3, .batch_size = 16, .seed = 5, .verbose = false});
        const train::History& h = t.fit();
        BOOST_TEST(h.epochs.size() == 3u);
        BOOST_TEST(h.iteration_loss.size() == (batchnorm ? 6u : 9u));
        for (const double loss : h.iteration_loss) BOOST_TEST(std::isfinite(loss));
    }
    // One row alone, in training: BatchNorm1d itself still refuses it (PyTorch does the same).
    nn::BatchNorm1d<float> bn(2);
    throws_naming<ValueError>([&] { bn(Variable<float>(Array<float>{{1.0f, 2.0f}})); }, {"BatchNorm1d", "(1, 2)"});
}

BOOST_AUTO_TEST_SUITE_END()  // options
BOOST_AUTO_TEST_SUITE_END()  // robustness
