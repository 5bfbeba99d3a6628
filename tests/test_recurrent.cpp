// The recurrent layers (nn/recurrent.hpp): parameter names and shapes (torch's), float64
// gradient checks of every cell and layer (two layers, batch_first both ways, with and without
// initial states and biases), agreement with PyTorch on shared weights (tests/data/torch_recurrent.npz,
// written by scripts/torch_recurrent_fixture.py: outputs, final states and every gradient, relative
// 1e-10), truncated back-propagation through time, N = 0 and L = 0, saturated gates, errors.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

#ifndef XGT_DATA_DIR
#error "tests/meson.build defines XGT_DATA_DIR, the folder of the committed fixtures"
#endif

namespace nn = xg::nn;
namespace tt = boost::test_tools;
using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::expect_error;
using xgt::agrees;
using xgt::close;
using xgt::random_array;

namespace {

constexpr std::size_t H_IN = 4, H = 3, L = 3, N = 2;

enum class Kind { rnn, gru, lstm, rnn_cell, gru_cell, lstm_cell };

bool is_cell(Kind k) { return k == Kind::rnn_cell || k == Kind::gru_cell || k == Kind::lstm_cell; }
bool is_lstm(Kind k) { return k == Kind::lstm || k == Kind::lstm_cell; }

struct Config {
    Kind kind;
    std::size_t layers = 2;
    bool bias = true;
    bool batch_first = false;
    bool state = true;  // initial state given
    bool relu = false;
};

// What a forward returns, the same way for every kind: out (cells: h'), h_n (layers only) and c
// (LSTM: c_n, LSTMCell: c').
struct Outs {
    V out, h, c;
};

struct Model {
    std::shared_ptr<nn::Module<double>> module;
    std::function<Outs(const V&, const V&, const V&)> run;
};

Model make(const Config& cfg, std::uint64_t seed = 1) {
    nn::Generator gen(seed);
    nn::RecurrentOptions o{.num_layers = is_cell(cfg.kind) ? 1 : cfg.layers,
                           .bias = cfg.bias,
                           .batch_first = is_cell(cfg.kind) ? false : cfg.batch_first,
                           .nonlinearity = cfg.relu ? nn::RNNNonlinearity::relu : nn::RNNNonlinearity::tanh,
                           .generator = &gen};
    switch (cfg.kind) {
        case Kind::rnn: {
            auto m = std::make_shared<nn::RNN<double>>(H_IN, H, o);
            return {m, [m](const V& x, const V& h, const V&) {
                        auto [out, hn] = m->forward(x, h);
                        return Outs{out, hn, {}};
                    }};
        }
        case Kind::gru: {
            auto m = std::make_shared<nn::GRU<double>>(H_IN, H, o);
            return {m, [m](const V& x, const V& h, const V&) {
                        auto [out, hn] = m->forward(x, h);
                        return Outs{out, hn, {}};
                    }};
        }
        case Kind::lstm: {
            auto m = std::make_shared<nn::LSTM<double>>(H_IN, H, o);
            return {m, [m](const V& x, const V& h, const V& c) {
                        auto [out, state] = m->forward(x, {h, c});
                        return Outs{out, state.h, state.c};
                    }};
        }
        case Kind::rnn_cell: {
            auto m = std::make_shared<nn::RNNCell<double>>(H_IN, H, o);
            return {m, [m](const V& x, const V& h, const V&) { return Outs{m->forward(x, h), {}, {}}; }};
        }
        case Kind::gru_cell: {
            auto m = std::make_shared<nn::GRUCell<double>>(H_IN, H, o);
            return {m, [m](const V& x, const V& h, const V&) { return Outs{m->forward(x, h), {}, {}}; }};
        }
        case Kind::lstm_cell: {
            auto m = std::make_shared<nn::LSTMCell<double>>(H_IN, H, o);
            return {m, [m](const V& x, const V& h, const V& c) {
                        auto [h2, c2] = m->forward(x, {h, c});
                        return Outs{h2, {}, c2};
                    }};
        }
    }
    throw std::logic_error("kind");
}

xg::Shape input_shape(const Config& cfg, std::size_t seq = L, std::size_t batch = N) {
    if (is_cell(cfg.kind)) return {batch, H_IN};
    return cfg.batch_first ? xg::Shape{batch, seq, H_IN} : xg::Shape{seq, batch, H_IN};
}

xg::Shape state_shape(const Config& cfg, std::size_t batch = N) {
    if (is_cell(cfg.kind)) return {batch, H};
    return {cfg.layers, batch, H};
}

// Every output flattened into one vector (gradcheck weighs it with random weights).
V joined(const Outs& o) {
    std::vector<V> parts{xg::flatten(o.out)};
    if (o.h.defined()) parts.push_back(xg::flatten(o.h));
    if (o.c.defined()) parts.push_back(xg::flatten(o.c));
    return xg::concatenate(parts);
}

std::string describe(const Config& c) {
    constexpr const char* names[] = {"RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"};
    return fmt::format("{} layers={} bias={} batch_first={} state={} relu={}", names[static_cast<int>(c.kind)],
                       c.layers, c.bias, c.batch_first, c.state, c.relu);
}

// Gradient check of the forward w.r.t. the input, the initial states and every parameter.
void check_gradients(const Config& cfg) {
    BOOST_TEST_CONTEXT(describe(cfg)) {
        Model m = make(cfg);
        const V x(random_array(input_shape(cfg), 11), true);
        V h0, c0;
        if (cfg.state) {
            h0 = V(random_array(state_shape(cfg), 12, -1, 1), true);
            if (is_lstm(cfg.kind)) c0 = V(random_array(state_shape(cfg), 13, -1, 1), true);
        }
        std::vector<V> leaves{x};
        if (h0.defined()) leaves.push_back(h0);
        if (c0.defined()) leaves.push_back(c0);
        for (const V& p : m.module->parameters()) leaves.push_back(p);
        const auto r = xg::gradcheck_params<double>([&] { return joined(m.run(x, h0, c0)); }, leaves, 1e-6, 1e-8, 1e-6);
        BOOST_TEST(r.ok, r.str());
    }
}

std::vector<std::string> names(const nn::Module<double>& m) {
    std::vector<std::string> out;
    for (const auto& [name, v] : m.named_parameters()) out.push_back(name + " " + xg::shape_str(v.shape()));
    return out;
}

// One fixture case's arrays, by the key after the case name ("x", "grad/param/weight_ih_l0").
using Entry = std::map<std::string, A>;

const std::map<std::string, Entry>& fixture() {
    static const std::map<std::string, Entry> cases = [] {
        std::map<std::string, Entry> out;
        for (auto& [key, array] : nn::load_npz<double>(std::string(XGT_DATA_DIR) + "/torch_recurrent.npz")) {
            const auto slash = key.find('/');
            out[key.substr(0, slash)][key.substr(slash + 1)] = std::move(array);
        }
        return out;
    }();
    return cases;
}

xg::StateDict<double> params_of(const Entry& e) {
    xg::StateDict<double> state;
    for (const auto& [key, array] : e)
        if (key.rfind("param/", 0) == 0) state.emplace_back(key.substr(6), array);
    return state;
}

void expect_agrees(const V& got, const Entry& e, const std::string& key, const std::string& what) {
    std::string why;
    BOOST_TEST_REQUIRE(got.defined(), what << " " << key << ": undefined");
    BOOST_TEST(agrees(got.data(), e.at(key), why), what << " " << key << ": " << why);
}

void expect_grad_agrees(const V& leaf, const Entry& e, const std::string& key, const std::string& what) {
    std::string why;
    const A g = leaf.has_grad() ? A(leaf.grad().data()) : A(xt::zeros_like(leaf.data()));
    BOOST_TEST(agrees(g, e.at(key), why), what << " " << key << ": " << why);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(recurrent)

// ---- LSTM first (what the char_lm example uses) ----

BOOST_AUTO_TEST_CASE(lstm_names_shapes_and_outputs) {
    nn::Generator gen(3);
    nn::LSTM<double> lstm(H_IN, H, {.num_layers = 2, .generator = &gen});
    BOOST_TEST(names(lstm) == (std::vector<std::string>{"weight_ih_l0 (12, 4)", "weight_hh_l0 (12, 3)", "bias_ih_l0 (12,)",
                                                        "bias_hh_l0 (12,)", "weight_ih_l1 (12, 3)", "weight_hh_l1 (12, 3)",
                                                        "bias_ih_l1 (12,)", "bias_hh_l1 (12,)"}),
               boost::test_tools::per_element());
    BOOST_TEST(lstm.repr() == "LSTM(4, 3, num_layers=2)");
    const auto [out, state] = lstm(V(random_array({5, 2, H_IN}, 1)));
    BOOST_TEST(xg::shape_str(out.shape()) == "(5, 2, 3)");
    BOOST_TEST(xg::shape_str(state.h.shape()) == "(2, 2, 3)");
    BOOST_TEST(xg::shape_str(state.c.shape()) == "(2, 2, 3)");
    // the output's last step is the last layer's h_n
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t j = 0; j < H; ++j) BOOST_TEST(out.data()(4, n, j) == state.h.data()(1, n, j));

    // an explicit zero state is the default one
    const V x(random_array({3, 2, H_IN}, 2));
    const A zeros = xt::zeros<double>({2, 2, 3});
    const auto a = lstm(x);
    const auto b = lstm(x, {V(zeros), V(zeros)});
    BOOST_TEST(xt::allclose(a.first.data(), b.first.data(), 1e-15, 1e-15));
    BOOST_TEST(xt::allclose(a.second.c.data(), b.second.c.data(), 1e-15, 1e-15));
}

// LSTM by hand from its definition (torch's documentation), one layer, two steps.
BOOST_AUTO_TEST_CASE(lstm_matches_its_definition) {
    nn::Generator gen(5);
    nn::LSTM<double> lstm(2, 2, {.generator = &gen});
    const auto& w = lstm.weights(0);
    const A x = random_array({2, 1, 2}, 4), h0 = random_array({1, 1, 2}, 5), c0 = random_array({1, 1, 2}, 6);
    const auto [out, state] = lstm(V(x), {V(h0), V(c0)});
    const auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
    double h[2] = {h0(0, 0, 0), h0(0, 0, 1)}, c[2] = {c0(0, 0, 0), c0(0, 0, 1)};
    for (std::size_t t = 0; t < 2; ++t) {
        double pre[8];
        for (std::size_t r = 0; r < 8; ++r) {
            pre[r] = w.b_ih.data()(r) + w.b_hh.data()(r);
            for (std::size_t k = 0; k < 2; ++k)
                pre[r] += w.w_ih.data()(r, k) * x(t, 0, k) + w.w_hh.data()(r, k) * h[k];
        }
        for (std::size_t j = 0; j < 2; ++j) {
            const double i = sig(pre[j]), f = sig(pre[2 + j]), g = std::tanh(pre[4 + j]), o = sig(pre[6 + j]);
            c[j] = f * c[j] + i * g;
            h[j] = o * std::tanh(c[j]);
        }
        for (std::size_t j = 0; j < 2; ++j) BOOST_TEST(out.data()(t, 0, j) == h[j], boost::test_tools::tolerance(1e-14));
    }
    for (std::size_t j = 0; j < 2; ++j) BOOST_TEST(state.c.data()(0, 0, j) == c[j], boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(lstm_gradcheck) {
    for (bool bf : {false, true})
        for (bool state : {true, false}) check_gradients({Kind::lstm, 2, true, bf, state});
    check_gradients({Kind::lstm, 2, false, false, true});
    check_gradients({Kind::lstm, 1, false, true, false});
}

// ---- every cell and layer: gradients, PyTorch ----

BOOST_AUTO_TEST_CASE(rnn_gru_and_cells_gradcheck) {
    for (Kind k : {Kind::rnn, Kind::gru})
        for (bool bf : {false, true})
            for (bool state : {true, false}) check_gradients({k, 2, true, bf, state});
    check_gradients({Kind::rnn, 2, true, false, true, true});   // relu
    check_gradients({Kind::rnn, 2, false, true, true, true});   // relu, no bias, batch_first
    check_gradients({Kind::gru, 2, false, false, true});
    check_gradients({Kind::gru, 1, false, true, false});
    for (Kind k : {Kind::rnn_cell, Kind::gru_cell, Kind::lstm_cell})
        for (bool bias : {true, false})
            for (bool state : {true, false}) check_gradients({k, 1, bias, false, state});
    check_gradients({Kind::rnn_cell, 1, true, false, true, true});
}

// The fixture's cases, configured as scripts/torch_recurrent_fixture.py's CASES.
static const std::vector<std::pair<std::string, Config>>& torch_cases() {
    static const std::vector<std::pair<std::string, Config>> cases{
        {"rnn_tanh", {Kind::rnn, 2, true, false, true, false}},
        {"rnn_tanh_bf", {Kind::rnn, 2, true, true, true, false}},
        {"rnn_relu", {Kind::rnn, 2, true, false, true, true}},
        {"rnn_relu_bf", {Kind::rnn, 2, true, true, false, true}},
        {"gru", {Kind::gru, 2, true, false, true}},
        {"gru_bf", {Kind::gru, 2, true, true, true}},
        {"gru_nobias_nostate", {Kind::gru, 2, false, false, false}},
        {"lstm", {Kind::lstm, 2, true, false, true}},
        {"lstm_bf", {Kind::lstm, 2, true, true, true}},
        {"lstm_nobias_nostate_bf", {Kind::lstm, 2, false, true, false}},
        {"lstm_one_layer", {Kind::lstm, 1, true, false, true}},
        {"rnn_relu_long", {Kind::rnn, 2, true, false, true, true}},  // L = 9, 17, 10, 21: the step slicing's tree
        {"gru_long_bf", {Kind::gru, 2, true, true, true}},
        {"lstm_long", {Kind::lstm, 2, true, false, false}},
        {"lstm_long_bf", {Kind::lstm, 2, true, true, true}},
        {"rnn_cell", {Kind::rnn_cell, 1, true, false, true}},
        {"rnn_cell_relu", {Kind::rnn_cell, 1, true, false, true, true}},
        {"gru_cell", {Kind::gru_cell, 1, true, false, true}},
        {"gru_cell_nostate", {Kind::gru_cell, 1, true, false, false}},
        {"lstm_cell", {Kind::lstm_cell, 1, true, false, true}},
        {"lstm_cell_nobias_nostate", {Kind::lstm_cell, 1, false, false, false}},
    };
    return cases;
}

BOOST_AUTO_TEST_CASE(agrees_with_pytorch) {
    const auto& fx = fixture();
    BOOST_TEST(fx.size() == torch_cases().size() + 1);  // + lstm_tbptt
    for (const auto& [name, cfg] : torch_cases()) {
        BOOST_TEST_CONTEXT(name) {
            BOOST_REQUIRE(fx.count(name));
            const Entry& e = fx.at(name);
            Model m = make(cfg, 99);
            m.module->load_state_dict(params_of(e));  // torch's names and shapes, or it throws
            const V x(e.at("x"), true);
            V h0, c0;
            if (e.count("h0")) h0 = V(e.at("h0"), true);
            if (e.count("c0")) c0 = V(e.at("c0"), true);
            BOOST_TEST(cfg.state == h0.defined());
            const Outs o = m.run(x, h0, c0);
            expect_agrees(o.out, e, "out", name);
            V loss = xg::sum(o.out * V(e.at("gout")));
            if (e.count("h_n")) {
                expect_agrees(o.h, e, "h_n", name);
                loss = loss + xg::sum(o.h * V(e.at("gh_n")));
            }
            if (e.count("c_n")) {
                expect_agrees(o.c, e, "c_n", name);
                loss = loss + xg::sum(o.c * V(e.at("gc_n")));
            }
            loss.backward();
            expect_grad_agrees(x, e, "grad/x", name);
            if (h0.defined()) expect_grad_agrees(h0, e, "grad/h0", name);
            if (c0.defined()) expect_grad_agrees(c0, e, "grad/c0", name);
            std::size_t checked = 0;
            for (const auto& [pname, p] : m.module->named_parameters()) {
                expect_grad_agrees(p, e, "grad/param/" + pname, name);
                ++checked;
            }
            BOOST_TEST(checked == params_of(e).size());
        }
    }
}

// Truncated back-propagation through time: the state carried into the second chunk is detached,
// so no gradient flows back into the first chunk from the second's loss; torch's gradients match.
BOOST_AUTO_TEST_CASE(truncated_bptt_agrees_with_pytorch) {
    const Entry& e = fixture().at("lstm_tbptt");
    nn::LSTM<double> lstm(H_IN, H, {.num_layers = 2});
    lstm.load_state_dict(params_of(e));
    const V x(e.at("x"), true), h0(e.at("h0"), true), c0(e.at("c0"), true);
    const auto [out1, s1] = lstm(xg::slice(x, 0, 0, L), {h0, c0});
    const auto [out2, s2] = lstm(xg::slice(x, 0, L, 2 * L), {s1.h.detach(), s1.c.detach()});
    expect_agrees(out1, e, "out1", "tbptt");
    expect_agrees(out2, e, "out2", "tbptt");
    expect_agrees(s2.h, e, "h_n", "tbptt");
    expect_agrees(s2.c, e, "c_n", "tbptt");
    const V loss = xg::sum(out1 * V(e.at("gout1"))) + xg::sum(out2 * V(e.at("gout2"))) +
                   xg::sum(s2.h * V(e.at("gh_n"))) + xg::sum(s2.c * V(e.at("gc_n")));
    loss.backward();
    for (const auto& [key, leaf] : {std::pair{"x", x}, std::pair{"h0", h0}, std::pair{"c0", c0}})
        expect_grad_agrees(leaf, e, std::string("grad/") + key, "tbptt");
    for (const auto& [pname, p] : lstm.named_parameters()) expect_grad_agrees(p, e, "grad/param/" + pname, "tbptt");

    // the second chunk's loss alone gives the first chunk's inputs no gradient
    lstm.zero_grad();
    const V x2(e.at("x"), true);
    const auto [a1, t1] = lstm(xg::slice(x2, 0, 0, L));
    const auto [a2, t2] = lstm(xg::slice(x2, 0, L, 2 * L), {t1.h.detach(), t1.c.detach()});
    xg::sum(a2).backward();
    const A g = x2.grad().data();
    for (std::size_t t = 0; t < 2 * L; ++t) {
        double norm = 0;
        for (std::size_t n = 0; n < N; ++n)
            for (std::size_t k = 0; k < H_IN; ++k) norm += std::abs(g(t, n, k));
        if (t < L)
            BOOST_TEST(norm == 0.0);
        else
            BOOST_TEST(norm > 0.0);
    }
}


// The number of ops in the graph behind `outs` (each Function once).
std::size_t op_count(const std::vector<V>& outs) {
    std::set<const xg::Function<double>*> seen;
    std::vector<std::shared_ptr<xg::Function<double>>> todo;
    for (const V& v : outs)
        if (v.defined() && v.creator()) todo.push_back(v.creator());
    while (!todo.empty()) {
        auto f = todo.back();
        todo.pop_back();
        if (!seen.insert(f.get()).second) continue;
        for (const V& in : f->inputs())
            if (in.creator()) todo.push_back(in.creator());
    }
    return seen.size();
}

BOOST_AUTO_TEST_CASE(ops_per_step) {
    // one more step adds the hidden GEMM, the gates (RNN 3 ops with its slice of the projection,
    // GRU 16 with it, LSTM 3: lstm_cell reads the projection in place) and the unsqueeze by which
    // stack takes its h into the output (as docs/nn.md says)
    const std::vector<std::pair<Kind, std::size_t>> expected{{Kind::rnn, 5}, {Kind::gru, 18}, {Kind::lstm, 5}};
    for (const auto& [kind, per_step] : expected) {
        const Config cfg{kind, 1, true, false, true};
        Model m = make(cfg);
        const V h0(random_array(state_shape(cfg), 2));
        const V c0 = kind == Kind::lstm ? V(random_array(state_shape(cfg), 3)) : V();
        const Outs a = m.run(V(random_array(input_shape(cfg, 3), 1)), h0, c0);
        const Outs b = m.run(V(random_array(input_shape(cfg, 4), 1)), h0, c0);
        BOOST_TEST(op_count({b.out, b.h, b.c}) - op_count({a.out, a.h, a.c}) == per_step,
                   describe(cfg) << ": " << op_count({a.out, a.h, a.c}) << " then " << op_count({b.out, b.h, b.c}));
    }
}

// A layer is its cell unrolled: one-layer RNN, GRU and LSTM over 11 steps (past the step slicing's
// first level of blocks) against their cells run step by step on the same weights.
BOOST_AUTO_TEST_CASE(layer_equals_its_cell_unrolled) {
    const std::size_t steps = 11;
    const std::vector<std::pair<Kind, Kind>> pairs{
        {Kind::rnn, Kind::rnn_cell}, {Kind::gru, Kind::gru_cell}, {Kind::lstm, Kind::lstm_cell}};
    for (const auto& [layer_kind, cell_kind] : pairs)
        for (bool bf : {false, true})
            for (bool state : {false, true}) {
                const Config lc{layer_kind, 1, true, bf, state}, cc{cell_kind, 1, true, false, state};
                BOOST_TEST_CONTEXT(describe(lc)) {
                    Model layer = make(lc, 5), cell = make(cc, 6);
                    xg::StateDict<double> sd;
                    for (auto [name, a] : layer.module->state_dict()) sd.emplace_back(name.substr(0, name.size() - 3), a);
                    cell.module->load_state_dict(sd);  // weight_ih_l0 -> weight_ih, ...
                    const A xa = random_array(input_shape(lc, steps), 7);
                    const V x1(xa, true), x2(xa, true);
                    V h1, c1, h2, c2;
                    if (state) {
                        const A ha = random_array({1, N, H}, 8, -1, 1), ca = random_array({1, N, H}, 9, -1, 1);
                        h1 = V(ha, true), h2 = V(xt::eval(xt::view(ha, 0)), true);
                        if (is_lstm(layer_kind)) c1 = V(ca, true), c2 = V(xt::eval(xt::view(ca, 0)), true);
                    }
                    const Outs o1 = layer.run(x1, h1, c1);
                    std::vector<V> hs;
                    V h = h2, c = c2;
                    for (std::size_t t = 0; t < steps; ++t) {
                        const V xt_ = bf ? xg::squeeze(xg::slice(x2, 1, t, t + 1), 1) : xg::squeeze(xg::slice(x2, 0, t, t + 1), 0);
                        const Outs o = cell.run(xt_, h, c);
                        h = o.out, c = o.c;
                        hs.push_back(h);
                    }
                    const V out2 = xg::stack(hs, bf ? 1 : 0);
                    BOOST_TEST(xt::allclose(o1.out.data(), out2.data(), 1e-13, 1e-15));
                    const A w = random_array(out2.shape(), 10);
                    xg::sum(o1.out * V(w)).backward();
                    xg::sum(out2 * V(w)).backward();
                    BOOST_TEST(xt::allclose(x1.grad().data(), x2.grad().data(), 1e-12, 1e-14));
                    if (state) BOOST_TEST(xt::allclose(xt::eval(xt::view(h1.grad().data(), 0)), h2.grad().data(), 1e-12, 1e-14));
                    const auto p1 = layer.module->parameters(), p2 = cell.module->parameters();
                    for (std::size_t i = 0; i < p1.size(); ++i)
                        BOOST_TEST(xt::allclose(p1[i].grad().data(), p2[i].grad().data(), 1e-12, 1e-14));
                }
            }
}

BOOST_AUTO_TEST_CASE(gradcheck_longer_sequences) {
    // 6 steps: the projection is sliced through a level of blocks
    const auto check = [](Kind kind, bool bf) {
        const Config cfg{kind, 1, true, bf, true};
        BOOST_TEST_CONTEXT(describe(cfg)) {
            Model m = make(cfg);
            const V x(random_array(input_shape(cfg, 6), 31), true);
            const V h0(random_array(state_shape(cfg), 32, -1, 1), true);
            const V c0 = is_lstm(kind) ? V(random_array(state_shape(cfg), 33, -1, 1), true) : V();
            std::vector<V> leaves{x, h0};
            if (c0.defined()) leaves.push_back(c0);
            for (const V& p : m.module->parameters()) leaves.push_back(p);
            const auto r = xg::gradcheck_params<double>([&] { return joined(m.run(x, h0, c0)); }, leaves, 1e-6, 1e-8, 1e-6);
            BOOST_TEST(r.ok, r.str());
        }
    };
    check(Kind::lstm, true);
    check(Kind::gru, false);
}


BOOST_AUTO_TEST_CASE(second_derivatives) {
    // built from graph ops, so create_graph differentiates through a layer again
    for (Kind kind : {Kind::rnn, Kind::gru, Kind::lstm}) {
        const Config cfg{kind, 1, true, true, true};
        BOOST_TEST_CONTEXT(describe(cfg)) {
            Model m = make(cfg);
            const xg::VariableFn<double> f = [&](const std::vector<V>& xs) { return joined(m.run(xs[0], xs[1], {})); };
            const auto r = xg::gradgradcheck<double>(f, {V(random_array(input_shape(cfg, 2), 41)),
                                                         V(random_array(state_shape(cfg), 42, -1, 1))},
                                                     1e-6, 1e-7, 1e-5);
            BOOST_TEST(r.ok, r.str());
        }
    }
}

// ---- sizes, edges, errors ----

BOOST_AUTO_TEST_CASE(parameter_names_are_torchs) {
    nn::RNN<double> rnn(H_IN, H, {.num_layers = 2, .bias = false});
    BOOST_TEST(names(rnn) == (std::vector<std::string>{"weight_ih_l0 (3, 4)", "weight_hh_l0 (3, 3)", "weight_ih_l1 (3, 3)",
                                                       "weight_hh_l1 (3, 3)"}),
               boost::test_tools::per_element());
    nn::GRU<double> gru(H_IN, H);
    BOOST_TEST(names(gru) == (std::vector<std::string>{"weight_ih_l0 (9, 4)", "weight_hh_l0 (9, 3)", "bias_ih_l0 (9,)",
                                                       "bias_hh_l0 (9,)"}),
               boost::test_tools::per_element());
    nn::LSTMCell<double> lc(H_IN, H);
    BOOST_TEST(names(lc) == (std::vector<std::string>{"weight_ih (12, 4)", "weight_hh (12, 3)", "bias_ih (12,)",
                                                      "bias_hh (12,)"}),
               boost::test_tools::per_element());
    nn::GRUCell<double> gc(H_IN, H, {.bias = false});
    BOOST_TEST(names(gc) == (std::vector<std::string>{"weight_ih (9, 4)", "weight_hh (9, 3)"}),
               boost::test_tools::per_element());
    nn::RNNCell<double> rc(H_IN, H, {.nonlinearity = nn::RNNNonlinearity::relu});
    BOOST_TEST(names(rc) == (std::vector<std::string>{"weight_ih (3, 4)", "weight_hh (3, 3)", "bias_ih (3,)",
                                                      "bias_hh (3,)"}),
               boost::test_tools::per_element());
    // weights decay, biases do not (as Linear's)
    BOOST_TEST(gru.decayed_parameters().size() == 2u);
    BOOST_TEST(rnn.repr() == "RNN(4, 3, num_layers=2, bias=false)");
    BOOST_TEST(nn::RNN<double>(2, 5, {.batch_first = true, .nonlinearity = nn::RNNNonlinearity::relu}).repr() ==
               "RNN(2, 5, nonlinearity=relu, batch_first=true)");
    BOOST_TEST(lc.repr() == "LSTMCell(4, 3)");
}

BOOST_AUTO_TEST_CASE(initialisation_is_torchs_uniform_and_seeded) {
    nn::Generator g1(7), g2(7);
    nn::LSTM<double> a(10, 16, {.num_layers = 2, .generator = &g1}), b(10, 16, {.num_layers = 2, .generator = &g2});
    const auto pa = a.parameters(), pb = b.parameters();
    double lo = 1, hi = -1;
    for (std::size_t i = 0; i < pa.size(); ++i) {
        BOOST_TEST(xt::all(xt::equal(pa[i].data(), pb[i].data())));
        lo = std::min(lo, double(xt::amin(pa[i].data())()));
        hi = std::max(hi, double(xt::amax(pa[i].data())()));
    }
    BOOST_TEST(lo >= -0.25);  // U(-1/sqrt(16), 1/sqrt(16)), every parameter
    BOOST_TEST(hi <= 0.25);
    BOOST_TEST(lo < -0.24);
    BOOST_TEST(hi > 0.24);
}

BOOST_AUTO_TEST_CASE(empty_batch_and_empty_sequence) {
    // N = 0 works (as torch): empty outputs and states, and backward runs
    for (Kind k : {Kind::rnn, Kind::gru, Kind::lstm})
        for (bool bf : {false, true}) {
            const Config cfg{k, 2, true, bf, true};
            BOOST_TEST_CONTEXT(describe(cfg)) {
                Model m = make(cfg);
                const V x(A::from_shape(input_shape(cfg, L, 0)), true);
                const V h0(A::from_shape(state_shape(cfg, 0)), true);
                const V c0 = is_lstm(k) ? V(A::from_shape(state_shape(cfg, 0)), true) : V();
                const Outs o = m.run(x, h0, c0);
                BOOST_TEST(xg::shape_str(o.out.shape()) == (bf ? "(0, 3, 3)" : "(3, 0, 3)"));
                BOOST_TEST(xg::shape_str(o.h.shape()) == "(2, 0, 3)");
                xg::sum(joined(o)).backward();
                for (const V& p : m.module->parameters()) {
                    BOOST_REQUIRE(p.has_grad());
                    BOOST_TEST(xt::all(xt::equal(p.grad().data(), 0.0)));
                }
            }
        }
    nn::LSTMCell<double> cell(H_IN, H);
    BOOST_TEST(xg::shape_str(cell(V(A::from_shape({0, H_IN}))).second.shape()) == "(0, 3)");
    // L = 0 is refused, as torch refuses it
    nn::GRU<double> gru(H_IN, H, {.batch_first = true});
    expect_error<xg::ShapeError>([&] { gru(V(A::from_shape({2, 0, H_IN}))); },
                                 {"GRU", "sequence length must be positive", "(2, 0, 4)"});
    nn::LSTM<double> lstm(H_IN, H);
    expect_error<xg::ShapeError>([&] { lstm(V(A::from_shape({0, 2, H_IN}))); }, {"LSTM", "(0, 2, 4)"});
}

BOOST_AUTO_TEST_CASE(saturated_gates_stay_finite) {
    // inputs of 1e3 saturate every sigmoid and tanh: values stay bounded and gradients finite
    for (Kind k : {Kind::rnn, Kind::gru, Kind::lstm}) {
        const Config cfg{k, 2, true, false, true};
        Model m = make(cfg);
        const V x(random_array(input_shape(cfg), 21, -1000, 1000), true);
        const V h0(random_array(state_shape(cfg), 22, -1, 1), true);
        const V c0 = k == Kind::lstm ? V(random_array(state_shape(cfg), 23, -1, 1), true) : V();
        const Outs o = m.run(x, h0, c0);
        BOOST_TEST(xt::all(xt::abs(o.out.data()) <= 1.0));
        xg::sum(joined(o)).backward();
        BOOST_TEST(xt::all(xt::isfinite(x.grad().data())));
        for (const V& p : m.module->parameters()) BOOST_TEST(xt::all(xt::isfinite(p.grad().data())));
    }
}

BOOST_AUTO_TEST_CASE(float32_agrees_with_float64) {
    nn::Generator g(4);
    nn::LSTM<float> lf(H_IN, H, {.num_layers = 2, .batch_first = true, .generator = &g});
    nn::LSTM<double> ld(H_IN, H, {.num_layers = 2, .batch_first = true});
    xg::StateDict<double> sd;
    for (const auto& [name, a] : lf.state_dict()) sd.emplace_back(name, xt::cast<double>(a));
    ld.load_state_dict(sd);
    const A x = random_array({N, 5, H_IN}, 8);
    const auto [of, sf] = lf(xg::Variable<float>(xt::cast<float>(x)));
    const auto [od, sdd] = ld(V(x));
    BOOST_TEST(xt::allclose(xt::cast<double>(of.data()), od.data(), 1e-5, 1e-6));
    BOOST_TEST(xt::allclose(xt::cast<double>(sf.c.data()), sdd.c.data(), 1e-5, 1e-6));
}

BOOST_AUTO_TEST_CASE(errors_name_the_layer_and_the_shapes) {
    nn::LSTM<double> lstm(H_IN, H, {.num_layers = 2});
    expect_error<xg::ShapeError>([&] { lstm(V(A::from_shape({3, H_IN}))); }, {"LSTM", "(L, N, 4)", "(3, 4)"});
    expect_error<xg::ShapeError>([&] { lstm(V(A::from_shape({3, 2, 5}))); }, {"LSTM", "(L, N, 4)", "(3, 2, 5)"});
    const V x(A::from_shape({3, 2, H_IN}));
    expect_error<xg::ShapeError>([&] { lstm(x, {V(A::from_shape({1, 2, 3})), {}}); },
                                 {"LSTM", "h0", "(2, 2, 3)", "(1, 2, 3)"});
    expect_error<xg::ShapeError>([&] { lstm(x, {{}, V(A::from_shape({2, 3, 3}))}); },
                                 {"LSTM", "c0", "(2, 2, 3)", "(2, 3, 3)"});
    nn::GRU<double> gru(H_IN, H, {.batch_first = true});
    expect_error<xg::ShapeError>([&] { gru(V(A::from_shape({3, 2, 3}))); }, {"GRU", "(N, L, 4) (batch_first)", "(3, 2, 3)"});
    expect_error<xg::ShapeError>([&] { gru(V(A::from_shape({2, 3, H_IN})), V(A::from_shape({1, 3, 3}))); },
                                 {"GRU", "h0", "(1, 2, 3)", "(1, 3, 3)"});  // states are not batch_first
    expect_error<xg::ValueError>([&] { gru(V()); }, {"GRU", "undefined"});
    nn::RNNCell<double> rc(H_IN, H);
    expect_error<xg::ShapeError>([&] { rc(V(A::from_shape({2, 3}))); }, {"RNNCell", "(N, 4)", "(2, 3)"});
    expect_error<xg::ShapeError>([&] { rc(V(A::from_shape({2, 1, 4}))); }, {"RNNCell", "(N, 4)", "(2, 1, 4)"});
    expect_error<xg::ShapeError>([&] { rc(V(A::from_shape({2, 4})), V(A::from_shape({3, 3}))); },
                                 {"RNNCell", "h", "(2, 3)", "(3, 3)"});
    nn::LSTMCell<double> lc(H_IN, H);
    expect_error<xg::ShapeError>([&] { lc(V(A::from_shape({2, 4})), {{}, V(A::from_shape({2, 4}))}); },
                                 {"LSTMCell", "c", "(2, 3)", "(2, 4)"});
    // construction
    expect_error<xg::ShapeError>([] { nn::LSTM<double>(0, 3); }, {"LSTM", "input_size 0"});
    expect_error<xg::ShapeError>([] { nn::GRUCell<double>(3, 0); }, {"GRUCell", "hidden_size 0"});
    expect_error<xg::ValueError>([] { nn::RNN<double>(3, 3, {.num_layers = 0}); }, {"RNN", "num_layers"});
    expect_error<xg::ValueError>([] { nn::LSTMCell<double>(3, 3, {.num_layers = 2}); }, {"LSTMCell", "num_layers 2"});
    expect_error<xg::ValueError>([] { nn::GRUCell<double>(3, 3, {.batch_first = true}); }, {"GRUCell", "batch_first"});
    expect_error<xg::ValueError>([] { nn::GRU<double>(3, 3, {.nonlinearity = nn::RNNNonlinearity::relu}); },
                                 {"GRU", "nonlinearity"});
    expect_error<xg::ResourceError>([] { nn::LSTM<double>(1u << 20, 1u << 20); }, {"LSTM(1048576, 1048576"});
    for (double p : {-0.1, 1.0, std::numeric_limits<double>::quiet_NaN()})
        expect_error<xg::ValueError>([p] { nn::LSTM<double>(3, 3, {.num_layers = 2, .dropout = p}); }, {"LSTM", "dropout"});
    expect_error<xg::ValueError>([] { nn::GRUCell<double>(3, 3, {.dropout = 0.5}); }, {"GRUCell", "dropout", "cell"});
}

// torch's dropout option: between layers, in training only; the parameters and their names are
// those of the layer without it (same seed, same values).
BOOST_AUTO_TEST_CASE(dropout_between_layers) {
    constexpr std::size_t H_IN = 3, H = 4;
    nn::Generator g1(7), g2(7);
    nn::LSTM<double> plain(H_IN, H, {.num_layers = 2, .generator = &g1});
    nn::LSTM<double> dropped(H_IN, H, {.num_layers = 2, .dropout = 0.5, .generator = &g2});
    BOOST_TEST(xgt::names_and_shapes(dropped.named_parameters()) == xgt::names_and_shapes(plain.named_parameters()),
               tt::per_element());
    for (std::size_t i = 0; i < plain.parameters().size(); ++i)
        BOOST_TEST(close(dropped.parameters()[i].data(), plain.parameters()[i].data(), 0.0));
    BOOST_TEST(dropped.repr() == "LSTM(3, 4, num_layers=2, dropout=0.5)");
    const V x(random_array({5, 2, H_IN}, 11));
    const auto [want, want_state] = plain(x);
    dropped.eval();
    const auto [same, same_state] = dropped(x);
    BOOST_TEST(close(same.data(), want.data(), 0.0));  // evaluation: no dropout
    BOOST_TEST(close(same_state.c.data(), want_state.c.data(), 0.0));
    dropped.train();
    const auto [y, state] = dropped(x);
    // The first layer's outputs (h_n[0], c_n[0]) are untouched; the second layer sees dropped inputs.
    BOOST_TEST(close(xg::slice(state.h, 0, 0, 1).data(), xg::slice(want_state.h, 0, 0, 1).data(), 0.0));
    BOOST_TEST(!close(y.data(), want.data(), 1e-6));
    // One layer: nothing between layers, so nothing changes.
    nn::Generator g3(7), g4(7);
    nn::GRU<double> one(H_IN, H, {.generator = &g3}), one_dropped(H_IN, H, {.dropout = 0.5, .generator = &g4});
    BOOST_TEST(close(one_dropped(x).first.data(), one(x).first.data(), 0.0));
}

// ---- the fused op lstm_cell (ops/recurrent.cpp) against its composition ----

namespace {

template <class T>
xg::Array<T> random_of(const xg::Shape& shape, unsigned seed, double scale = 1.0) {
    const A a = random_array(shape, seed);
    xg::Array<T> b = xg::Array<T>::from_shape(shape);
    std::transform(a.begin(), a.end(), b.begin(), [&](double v) { return static_cast<T>(v * scale); });
    return b;
}

template <class T>
bool near(const xg::Array<T>& got, const xg::Array<T>& want, double tol) {
    if (got.shape() != want.shape()) return false;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (!(std::abs(double(got.flat(i)) - double(want.flat(i))) <= tol * (1 + std::abs(double(want.flat(i))))))
            return false;
    return true;
}

// The LSTM step written with slice, sigmoid, tanh, mul and add, as the layers ran it before.
template <class T>
std::pair<xg::Variable<T>, xg::Variable<T>> composed_cell(const xg::Variable<T>& xg_, const xg::Variable<T>& hg,
                                                          const xg::Variable<T>& c, long step) {
    xg::Variable<T> gates = step >= 0 ? xg::squeeze(xg::slice(xg_, 0, step, step + 1), 0) : xg_;
    if (hg.defined()) gates = gates + hg;
    const std::size_t h = gates.shape()[1] / 4;
    const auto part = [&](std::size_t k) { return xg::slice(gates, 1, k * h, (k + 1) * h); };
    const xg::Variable<T> i = xg::sigmoid(part(0)), f = xg::sigmoid(part(1)), g = xg::tanh(part(2)),
                          o = xg::sigmoid(part(3));
    const xg::Variable<T> c_next = c.defined() ? f * c + i * g : i * g;
    return {o * xg::tanh(c_next), c_next};
}

// Every step of a (L, N, 4H) projection through `cell`, all sharing x_gates, h_gates and c (so the
// gradient sums are offered to add_input_grad), weighted into one loss; its gradients.
template <class T, class Cell>
std::vector<xg::Array<T>> cell_gradients(Cell cell, const std::vector<xg::Variable<T>>& in, bool has_h, bool has_c,
                                         std::vector<xg::Array<T>>& outputs) {
    const std::size_t steps = in[0].shape()[0];
    xg::Variable<T> loss;
    for (std::size_t t = 0; t < steps; ++t) {
        auto [h, c] = cell(in[0], has_h ? in[1] : xg::Variable<T>(), has_c ? in[2] : xg::Variable<T>(),
                           static_cast<long>(t));
        outputs.push_back(h.data());
        outputs.push_back(c.data());
        const xg::Variable<T> wh(random_of<T>(h.shape(), 40 + t)), wc(random_of<T>(c.shape(), 60 + t));
        const xg::Variable<T> term = xg::sum(h * wh) + xg::sum(c * wc);
        loss = loss.defined() ? loss + term : term;
    }
    for (const auto& v : in) v.zero_grad();
    loss.backward();
    std::vector<xg::Array<T>> grads;
    for (const auto& v : in) grads.push_back(v.has_grad() ? v.grad().data() : xg::Array<T>());
    return grads;
}

template <class T>
void check_cell_equals_composition(std::size_t steps, std::size_t n, std::size_t h, double scale, double tol) {
    for (bool has_h : {true, false})
        for (bool has_c : {true, false}) {
            BOOST_TEST_CONTEXT("T size " << sizeof(T) << ", L " << steps << ", N " << n << ", H " << h << ", scale "
                                         << scale << ", h_gates " << has_h << ", c " << has_c) {
                const std::vector<xg::Variable<T>> in{xg::Variable<T>(random_of<T>({steps, n, 4 * h}, 1, scale), true),
                                                      xg::Variable<T>(random_of<T>({n, 4 * h}, 2, scale), true),
                                                      xg::Variable<T>(random_of<T>({n, h}, 3, scale), true)};
                std::vector<xg::Array<T>> fused_out, composed_out;
                const auto fused = cell_gradients<T>(
                    [](const auto& x, const auto& hg, const auto& c, long t) { return xg::lstm_cell(x, hg, c, t); }, in,
                    has_h, has_c, fused_out);
                const auto composed = cell_gradients<T>(composed_cell<T>, in, has_h, has_c, composed_out);
                for (std::size_t k = 0; k < fused_out.size(); ++k)
                    BOOST_TEST(near(fused_out[k], composed_out[k], tol), "output " << k);
                for (std::size_t k = 0; k < 3; ++k) {
                    BOOST_TEST(fused[k].size() == composed[k].size(), "gradient " << k << " defined alike");
                    if (fused[k].size() == composed[k].size() && fused[k].size() > 0)
                        BOOST_TEST(near(fused[k], composed[k], tol), "gradient " << k);
                }
            }
        }
}

}  // namespace

// The fused cell gives the composition's outputs and gradients: float64 and float32 (SIMD lanes
// and a scalar tail: H = 5), pre-activations of magnitude up to 60 (saturated gates), one row
// and an empty batch.
BOOST_AUTO_TEST_CASE(lstm_cell_equals_its_composition) {
    check_cell_equals_composition<double>(4, 3, 5, 1.0, 1e-13);
    check_cell_equals_composition<double>(3, 2, 8, 30.0, 1e-13);
    check_cell_equals_composition<double>(2, 1, 1, 1.0, 1e-13);
    check_cell_equals_composition<float>(4, 3, 5, 1.0, 1e-5);
    check_cell_equals_composition<float>(3, 2, 9, 30.0, 1e-5);
    check_cell_equals_composition<double>(2, 0, 3, 1.0, 0.0);
}

// lstm_output keeps tanh(c') from its forward pass; c' changed in place since is still caught.
BOOST_AUTO_TEST_CASE(lstm_cell_state_changed_in_place_throws) {
    const V x(random_array({2, 8}, 1), true), c(random_array({2, 2}, 2), true);
    auto [h, c_next] = xg::lstm_cell(x, V(), c);
    const V loss = xg::sum(h);
    c_next.mutable_data()(0, 0) = 5.0;
    expect_error<xg::GraphError>([&] { loss.backward(); }, {"lstm_output", "input 1", "changed in place"});
}

BOOST_AUTO_TEST_CASE(lstm_cell_errors_name_the_op_and_the_shapes) {
    const V x(random_array({2, 8}, 1)), seq(random_array({3, 2, 8}, 2)), hg(random_array({2, 8}, 3)),
        c(random_array({2, 2}, 4));
    expect_error<xg::ValueError>([&] { xg::lstm_cell(V(), hg, c); }, {"lstm_cell", "x_gates is undefined"});
    expect_error<xg::ShapeError>([&] { xg::lstm_cell(V(random_array({2, 7}, 1))); }, {"lstm_cell", "multiple of 4", "(2, 7)"});
    expect_error<xg::ShapeError>([&] { xg::lstm_cell(seq); }, {"lstm_cell", "(3, 2, 8)", "without a step"});
    expect_error<xg::ShapeError>([&] { xg::lstm_cell(x, hg, c, 0); }, {"lstm_cell", "(2, 8)", "for a step index"});
    expect_error<xg::ShapeError>([&] { xg::lstm_cell(seq, hg, c, 3); }, {"lstm_cell", "step 3", "(3, 2, 8)"});
    expect_error<xg::ValueError>([&] { xg::lstm_cell(seq, hg, c, -2); }, {"lstm_cell", "-2"});
    expect_error<xg::ShapeError>([&] { xg::lstm_cell(x, V(random_array({2, 4}, 5)), c); },
                                 {"lstm_cell", "h_gates", "(2, 8)", "(2, 4)"});
    expect_error<xg::ShapeError>([&] { xg::lstm_cell(seq, hg, V(random_array({3, 2}, 6)), 1); },
                                 {"lstm_cell", "c must have shape (2, 2)", "(3, 2)"});
}

BOOST_AUTO_TEST_SUITE_END()
