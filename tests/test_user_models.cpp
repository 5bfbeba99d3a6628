// Users' own models: modules with any forward signature or state, Sequential with any one-input
// module, the Trainer on a two-input model over a TensorDataset, its callbacks, and printing.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <random>
#include <sstream>
#include <tuple>

#include "data/tensor_dataset.hpp"
#include "expect_error.hpp"
#include "fixtures.hpp"
#include "graph/error.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"
#include "train/train.hpp"

namespace tt = boost::test_tools;
using namespace xg;
using xgt::expect_error;
using F = Variable<float>;

namespace {

// Two inputs: h = tanh(x1 W1) * sigmoid(x2 Wg) + tanh(x2 W2), logits = h Wo. A forward of its own
// signature, not UnaryModule's.
struct GatedNet : nn::Module<float> {
    std::shared_ptr<nn::Linear<float>> a, gate, b, out;
    explicit GatedNet(std::size_t in, std::uint64_t seed) {
        nn::Generator gen(seed);
        const nn::LinearOptions o{.init = nn::Init::xavier(), .generator = &gen};
        a = register_module("a", std::make_shared<nn::Linear<float>>(in, 16, o));
        gate = register_module("gate", std::make_shared<nn::Linear<float>>(in, 16, o));
        b = register_module("b", std::make_shared<nn::Linear<float>>(in, 16, o));
        out = register_module("out", std::make_shared<nn::Linear<float>>(16, 2, o));
    }
    F forward(const F& x1, const F& x2) {
        return (*out)(xg::tanh((*a)(x1)) * xg::sigmoid((*gate)(x2)) + xg::tanh((*b)(x2)));
    }
};

// N rows of two 4-feature inputs; the class is whether x1[0] + x2[0] > 0.
data::TensorDataset<float> two_input_set(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    Array<float> x1 = Array<float>::from_shape({n, 4}), x2 = Array<float>::from_shape({n, 4});
    Labels y = Labels::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < 4; ++j) {
            x1(i, j) = normal(rng);
            x2(i, j) = normal(rng);
        }
        y(i) = x1(i, 0) + x2(i, 0) > 0 ? 1 : 0;
    }
    return data::TensorDataset<float>({std::move(x1), std::move(x2)}, std::move(y));
}

F gated_loss(GatedNet& m, const data::TensorBatch<float>& b) {
    return softmax_cross_entropy(m.forward(F(b.x[0]), F(b.x[1])), b.y);
}

double gated_accuracy(GatedNet& m, const data::TensorBatch<float>& b) {
    const F logits = m.forward(F(b.x[0]), F(b.x[1]));
    return static_cast<double>(nn::count_correct(logits.data(), b.y)) / static_cast<double>(b.y.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(user_models)

BOOST_AUTO_TEST_CASE(a_two_input_module_trains_through_the_trainer) {
    const data::TensorDataset<float> train = two_input_set(512, 1), test = two_input_set(256, 2);
    GatedNet net(4, 3);
    optim::Adam<float> adam(net.parameters(), {.lr = 0.01});
    train::Trainer trainer(net, adam, train, gated_loss, {.epochs = 8, .batch_size = 32, .verbose = false});
    trainer.add_metric("accuracy", gated_accuracy);
    trainer.evaluate_on("test", test);
    const double before = trainer.evaluate(test, "accuracy");
    const train::History& h = trainer.fit();
    BOOST_TEST_MESSAGE("accuracy " << before << " -> " << h.epochs.back().at("test_accuracy"));
    BOOST_TEST(h.epochs.size() == 8u);
    BOOST_TEST(h.epochs.back().train_loss < 0.5 * h.epochs.front().train_loss);
    BOOST_TEST(h.epochs.back().at("test_accuracy") > 0.95);
    BOOST_TEST(h.epochs.back().at("test_accuracy") > before + 0.2);
    BOOST_TEST(net.is_training());  // evaluation put the mode back
    BOOST_TEST(net.str().find("(gate): xg::nn::Linear<float>") == std::string::npos);  // Linear's own repr
    BOOST_TEST(net.str().find("(gate): Linear(4 -> 16") != std::string::npos, net.str());
}

BOOST_AUTO_TEST_CASE(modules_take_any_signature_and_carry_state) {
    // (x, mask) -> (masked sum, count), and a call counter: nothing the base class prescribes.
    struct MaskedMean : nn::Module<double> {
        int calls = 0;
        std::tuple<Variable<double>, double> forward(const Variable<double>& x, const Array<double>& mask) {
            ++calls;
            double count = 0;
            for (double m : mask) count += m;
            return {xg::sum(x * Variable<double>(mask)) / count, count};
        }
    } m;
    Variable<double> x(Array<double>{1.0, 2.0, 3.0, 4.0}, true);
    auto [mean, count] = m.forward(x, Array<double>{1.0, 0.0, 1.0, 0.0});
    BOOST_TEST(mean.item() == 2.0);
    BOOST_TEST(count == 2.0);
    mean.backward();
    BOOST_TEST(x.grad().data() == (Array<double>{0.5, 0.0, 0.5, 0.0}), tt::per_element());
    BOOST_TEST(m.calls == 1);
    BOOST_TEST(m.repr().find("MaskedMean") != std::string::npos, m.repr());  // the default repr
}

BOOST_AUTO_TEST_CASE(sequential_holds_any_one_input_module) {
    // Not a UnaryModule: forward is neither virtual nor inherited.
    struct Scale : nn::Module<double> {
        double k;
        explicit Scale(double k) : k(k) {}
        Variable<double> forward(const Variable<double>& x) const { return x * k; }
    };
    auto scale = std::make_shared<Scale>(3.0);
    nn::Sequential<double> seq(std::make_shared<nn::ReLU<double>>(), scale);
    seq.push_back(nn::AnyModule<double>(std::make_shared<Scale>(0.5)));
    const Variable<double> y = seq(Variable<double>(Array<double>{-1.0, 2.0}));
    BOOST_TEST(y.data() == (Array<double>{0.0, 3.0}), tt::per_element());
    BOOST_TEST(seq.size() == 3u);
    BOOST_TEST(seq.get<Scale>(1) == scale);
    BOOST_TEST(seq.get<Scale>(0) == nullptr);
    BOOST_TEST(seq.named_children()[2].first == "2");
    expect_error<ValueError>([] { nn::AnyModule<double>().forward(Variable<double>(Array<double>{1.0})); },
                             {"AnyModule", "empty"});
    expect_error<ValueError>([&] { seq.push_back(nn::AnyModule<double>()); }, {"Sequential", "empty"});
}

BOOST_AUTO_TEST_CASE(early_stopping_stops_and_a_resumed_run_stops_alike) {
    xgt::TempDir dir{"user_models"};
    const data::TensorDataset<float> train = two_input_set(128, 4);
    // A metric that never improves: stopping comes after `patience` epochs past the first.
    auto run = [&](std::size_t epochs, bool resume, const std::string& checkpoint) {
        GatedNet net(4, 5);
        optim::SGD<float> sgd(net.parameters(), {.lr = 0.05});
        train::Trainer t(net, sgd, train, gated_loss,
                         {.epochs = epochs, .batch_size = 32, .verbose = false, .checkpoint = checkpoint});
        t.add_metric("flat", [](GatedNet&, const data::TensorBatch<float>&) { return 1.0; });
        t.add_callback(std::make_shared<train::EarlyStopping>("train_flat", train::EarlyStoppingOptions{.patience = 3}));
        if (resume) t.resume(checkpoint);
        return t.fit();
    };
    const train::History whole = run(20, false, "");
    BOOST_TEST(whole.epochs.size() == 4u);
    BOOST_TEST(whole.stop_reason.find("train_flat") != std::string::npos, whole.stop_reason);
    run(2, false, dir / "c.npz");
    const train::History resumed = run(20, true, dir / "c.npz");
    BOOST_TEST(resumed.epochs.size() == 4u);
    // A checkpoint written by a run that had stopped: resuming it trains no further epoch.
    run(20, false, dir / "stopped.npz");
    const train::History again = run(20, true, dir / "stopped.npz");
    BOOST_TEST(again.epochs.size() == 4u);
    BOOST_TEST(!again.stop_reason.empty());
    expect_error<ValueError>([] { train::EarlyStopping("x", {.patience = 0}); }, {"patience"});
    // A metric the epochs do not have is named.
    GatedNet net(4, 5);
    optim::SGD<float> sgd(net.parameters());
    train::Trainer t(net, sgd, train, gated_loss, {.epochs = 1, .batch_size = 32, .verbose = false});
    t.add_callback(std::make_shared<train::EarlyStopping>("test_accuracy"));
    expect_error<ValueError>([&] { t.fit(); }, {"test_accuracy", "train_loss"});
}

BOOST_AUTO_TEST_CASE(best_checkpoint_keeps_the_best_epoch) {
    xgt::TempDir dir{"user_models"};
    const data::TensorDataset<float> train = two_input_set(128, 6);
    GatedNet net(4, 7);
    optim::Adam<float> adam(net.parameters(), {.lr = 0.01});
    train::Trainer t(net, adam, train, gated_loss, {.epochs = 3, .batch_size = 32, .verbose = false});
    auto best = std::make_shared<train::BestCheckpoint>(dir / "best.npz", "train_loss");
    t.add_callback(best);
    const train::History& h = t.fit();
    double lowest = h.epochs[0].train_loss;
    for (const auto& e : h.epochs) lowest = std::min(lowest, e.train_loss);
    BOOST_TEST(best->best() == lowest);
    BOOST_TEST(std::filesystem::exists(dir / "best.npz"));
    GatedNet other(4, 8);
    optim::Adam<float> adam2(other.parameters(), {.lr = 0.01});
    train::Trainer t2(other, adam2, train, gated_loss, {.epochs = 3, .batch_size = 32, .verbose = false});
    t2.resume(dir / "best.npz");  // what it wrote is a checkpoint the Trainer reads
    BOOST_TEST(t2.history().epochs.size() >= 1u);
}

BOOST_AUTO_TEST_CASE(tensor_dataset_gathers_rows_of_any_rank) {
    Array<double> seq = Array<double>::from_shape({3, 2, 2});  // (N, time, features)
    for (std::size_t i = 0; i < seq.size(); ++i) seq.data()[i] = static_cast<double>(i);
    const data::TensorDataset<double> set({seq}, Labels{0, 1, 2});
    const std::vector<std::size_t> rows{2, 0, 2};
    const data::TensorBatch<double> b = set.batch(rows);
    BOOST_TEST(shape_str(b.x[0].shape()) == "(3, 2, 2)");
    BOOST_TEST(b.x[0](0, 1, 1) == 11.0);
    BOOST_TEST(b.x[0](1, 0, 0) == 0.0);
    BOOST_TEST(b.y == (Labels{2, 0, 2}), tt::per_element());
    BOOST_TEST(set.batch(std::vector<std::size_t>{}).x[0].shape()[0] == 0u);
    const std::vector<std::size_t> out_of_range{3};
    expect_error<IndexError>([&] { set.batch(out_of_range); }, {"TensorDataset::batch", "3"});
    expect_error<ShapeError>([] { data::TensorDataset<double>({Array<double>::from_shape({3, 2}), Array<double>::from_shape({4})}); },
                             {"TensorDataset", "(3, 2)", "(4,)"});
    expect_error<ShapeError>([] { data::TensorDataset<double>({Array<double>::from_shape({3})}, Labels{1, 2}); },
                             {"TensorDataset", "labels"});
    expect_error<ShapeError>([] { data::TensorDataset<double>({Array<double>(1.0)}); }, {"TensorDataset", "()"});
    expect_error<ValueError>([] { data::TensorDataset<double>({}); }, {"TensorDataset"});
}

BOOST_AUTO_TEST_CASE(variables_print_values_shape_dtype_and_op) {
    std::ostringstream os;
    Variable<double> w(Array<double>{{1.0, -2.0}, {3.0, 4.0}}, true, "W");
    os << w;
    BOOST_TEST(os.str() == "Variable({{ 1., -2.},\n          { 3.,  4.}}, shape=(2, 2), dtype=float64, name=\"W\", requires_grad)",
               os.str());
    os.str("");
    os << xg::tanh(Variable<float>(Array<float>{0.0f}));
    BOOST_TEST(os.str() == "Variable({ 0.}, shape=(1,), dtype=float32)", os.str());  // no graph: nothing requires grad
    os.str("");
    os << xg::tanh(w);
    BOOST_TEST(os.str().find("op=tanh") != std::string::npos, os.str());
    os.str("");
    os << Variable<float>();
    BOOST_TEST(os.str() == "Variable(undefined)");
}

BOOST_AUTO_TEST_SUITE_END()
