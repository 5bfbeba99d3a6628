// Checkpoints: round trips restore identical predictions (and optimizer state), mismatches and
// damaged or foreign files raise errors that name the file and the first problem.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <xtensor/xrandom.hpp>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

namespace nn = xg::nn;
namespace fs = std::filesystem;
using F = xg::Variable<float>;

namespace {
using xgt::read_all;
using xgt::write_all;

nn::MultiLayerNetOptions options(std::uint64_t seed) {
    return {.input_size = 6, .hidden_sizes = {5, 4}, .output_size = 3, .use_batchnorm = true, .seed = seed};
}

xg::Array<float> inputs() {
    xt::random::seed(1);
    return xt::random::randn<float>({8, 6});
}

// A few Adam steps so that weights, batch-norm buffers and optimizer state all differ from new.
void train_a_little(nn::MultiLayerNet<float>& net, xg::optim::Adam<float>& opt) {
    const xg::Labels t = {0, 1, 2, 0, 1, 2, 0, 1};
    for (int i = 0; i < 3; ++i) {
        opt.zero_grad();
        net.loss(F(inputs()), t).backward();
        opt.step();
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(round_trip_restores_predictions_and_optimizer_state) {
    xgt::TempDir dir{"ckpt"};
    nn::MultiLayerNet<float> net(options(1));
    xg::optim::Adam<float> opt(net.parameters(), {.lr = 0.01});
    train_a_little(net, opt);
    net.eval();
    const xg::Array<float> before = net(F(inputs())).data();
    nn::save(dir / "model.npz", net, opt.state_dict());

    nn::MultiLayerNet<float> fresh(options(2));  // different weights
    fresh.eval();
    BOOST_TEST(!xt::allclose(fresh(F(inputs())).data(), before));
    xg::optim::Adam<float> fresh_opt(fresh.parameters(), {.lr = 0.01});
    const xg::StateDict<float> opt_state = nn::load(dir / "model.npz", fresh);
    fresh_opt.load_state_dict(opt_state);
    BOOST_TEST(xt::all(xt::equal(fresh(F(inputs())).data(), before)));  // bit for bit
    xg::optim::Adam<float> other_lr(fresh.parameters(), {.lr = 0.5});
    other_lr.load_state_dict(opt_state);
    BOOST_TEST(other_lr.lr() == 0.01, boost::test_tools::tolerance(1e-7));  // the saved rate wins

    // Training on from both gives the same weights: the optimizer state came along.
    net.train();
    fresh.train();
    train_a_little(net, opt);
    train_a_little(fresh, fresh_opt);
    for (std::size_t i = 0; i < net.parameters().size(); ++i)
        BOOST_TEST(xt::allclose(net.parameters()[i].data(), fresh.parameters()[i].data(), 1e-6, 1e-7));
    BOOST_TEST(fs::exists(dir / "model.npz"));
    for (const auto& e : fs::directory_iterator(dir.path))  // no temporary left behind
        BOOST_TEST(e.path().filename() == "model.npz");
}

BOOST_AUTO_TEST_CASE(npz_holds_plain_npy_entries) {
    xgt::TempDir dir{"ckpt"};
    const xg::StateDict<double> state = {{"a", xg::Array<double>{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}},
                                          {"b.c", xg::Array<double>(7.5)}};
    nn::save_npz(dir / "s.npz", state);
    const std::string bytes = read_all(dir / "s.npz");
    BOOST_TEST(bytes.substr(0, 4) == std::string("PK\x03\x04", 4));  // a zip, as np.savez writes
    BOOST_TEST(bytes.find("a.npy") != std::string::npos);
    BOOST_TEST(bytes.find("\x93NUMPY") != std::string::npos);
    const auto back = nn::load_npz<double>(dir / "s.npz");
    BOOST_REQUIRE(back.size() == 2u);
    BOOST_TEST(back[0].first == "a");
    BOOST_TEST(xt::all(xt::equal(back[0].second, state[0].second)));
    BOOST_TEST(back[1].first == "b.c");
    BOOST_TEST(back[1].second.dimension() == 0u);
    BOOST_TEST(back[1].second() == 7.5);
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "s.npz"); }, {"s.npz", "'a.npy'", "<f8", "<f4"});
}

BOOST_AUTO_TEST_CASE(mismatched_models_are_refused_and_left_unchanged) {
    xgt::TempDir dir{"ckpt"};
    nn::MultiLayerNet<float> net(options(1));
    nn::save(dir / "m.npz", net);
    nn::MultiLayerNet<float> wider({.input_size = 6, .hidden_sizes = {7, 4}, .output_size = 3, .use_batchnorm = true});
    const xg::Array<float> kept = wider.parameters()[0].data();
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "m.npz", wider); },
                                   {"m.npz", "layers.0.weight", "(6, 7)", "(6, 5)"});
    BOOST_TEST(xt::all(xt::equal(wider.parameters()[0].data(), kept)));
    nn::MultiLayerNet<float> no_bn({.input_size = 6, .hidden_sizes = {5, 4}, .output_size = 3});
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "m.npz", no_bn); }, {"m.npz", "'layers.2.weight'", "missing"});
    nn::MultiLayerNet<float> deeper({.input_size = 6, .hidden_sizes = {5, 4, 4}, .output_size = 3, .use_batchnorm = true});
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "m.npz", deeper); },
                                   {"m.npz", "'layers.6.weight'", "(4, 4)", "(4, 3)"});
    xg::StateDict<float> extra = net.state_dict();
    extra.emplace_back("layers.9.weight", xg::Array<float>{1.0f});
    xgt::expect_error<xg::ValueError>([&] { net.load_state_dict(extra); }, {"unexpected", "'layers.9.weight'"});
}

BOOST_AUTO_TEST_CASE(damaged_and_foreign_files_raise_clear_errors) {
    xgt::TempDir dir{"ckpt"};
    nn::MultiLayerNet<float> net(options(1));
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "absent.npz", net); }, {"absent.npz"});
    nn::save(dir / "good.npz", net);
    const std::string good = read_all(dir / "good.npz");

    write_all(dir / "empty.npz", "");
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "empty.npz", net); }, {"empty.npz"});
    write_all(dir / "text.npz", "this is not a zip archive at all, just some text\n");
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "text.npz", net); }, {"text.npz"});
    for (std::size_t cut : {good.size() / 2, good.size() - 10, std::size_t(30)}) {
        write_all(dir / "cut.npz", good.substr(0, cut));
        xgt::expect_error<xg::IoError>([&] { nn::load(dir / "cut.npz", net); }, {"cut.npz"});
    }
    // One flipped byte inside an array's data: the entry's CRC no longer matches.
    std::string flipped = good;
    const std::size_t at = flipped.find("\x93NUMPY") + 200;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x55);
    write_all(dir / "flipped.npz", flipped);
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "flipped.npz", net); }, {"flipped.npz", "layers.0.weight"});

    const xg::Array<float> kept = net.parameters()[0].data();
    BOOST_TEST(xt::all(xt::equal(net.parameters()[0].data(), kept)));
}

BOOST_AUTO_TEST_CASE(failed_save_keeps_the_previous_file) {
    xgt::TempDir dir{"ckpt"};
    nn::MultiLayerNet<float> net(options(1));
    nn::save(dir / "m.npz", net);
    const std::string before = read_all(dir / "m.npz");
    // A state that cannot be written (a duplicate name) must not touch the existing file.
    const xg::StateDict<float> dup = {{"x", xg::Array<float>{1.0f}}, {"x", xg::Array<float>{2.0f}}};
    xgt::expect_error<xg::ValueError>([&] { nn::save_npz(dir / "m.npz", dup); }, {});
    BOOST_TEST(read_all(dir / "m.npz") == before);
    xgt::expect_error<xg::IoError>([&] { nn::save(dir / "no-such-dir/m.npz", net); }, {"no-such-dir/m.npz"});
}

BOOST_AUTO_TEST_CASE(optimizer_state_mismatch_is_refused) {
    nn::MultiLayerNet<float> net(options(1));
    xg::optim::Adam<float> opt(net.parameters());
    train_a_little(net, opt);
    xg::StateDict<float> state = opt.state_dict();
    nn::MultiLayerNet<float> other({.input_size = 6, .hidden_sizes = {3}, .output_size = 3});
    xg::optim::Adam<float> other_opt(other.parameters());
    xgt::expect_error<xg::ShapeError>([&] { other_opt.load_state_dict(state); }, {"Adam", "load_state_dict"});
}

BOOST_AUTO_TEST_SUITE_END()
