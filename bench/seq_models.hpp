#pragma once
// The sequence-model benchmark's models and data, shared by bench/seq_step.cpp (xgrad, and the
// step's GEMMs alone) and bench/torch_seq_step.cpp (libtorch): a character-level language model's
// training step on a batch of 32 sequences of 64 tokens over a vocabulary of 96, as issue 15 asks,
//   lstm:        Embedding(96, 64) -> 2-layer LSTM(64 -> 256, batch_first) -> Linear(256 -> 96)
//   transformer: Embedding(96, 128) + learned positions Embedding(64, 128) -> 2 pre-norm
//                TransformerBlocks (4 heads, causal, MLP 128 -> 512 -> 128 with GELU)
//                -> LayerNorm(128) -> Linear(128 -> 96)
// with softmax cross-entropy over all 32 * 64 positions (the mean) and Adam (lr 1e-3). Every
// parameter is listed here by the name both frameworks give it (torch's layouts: a Linear's weight
// is (out, in)) with its initial values drawn from a fixed seed, so that both train the very same
// network on the very same batch.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bench::seq {

inline constexpr long batch = 32, length = 64, vocab = 96;
inline constexpr long lstm_embed = 64, lstm_hidden = 256, lstm_layers = 2;
inline constexpr long d_model = 128, heads = 4, blocks = 2, mlp_ratio = 4;
inline constexpr double adam_lr = 1e-3;

// One parameter: values U(-bound, bound) when bound > 0, else all `fill`.
struct Param {
    std::string name;
    std::vector<long> shape;  // torch's layout
    double bound = 0;
    double fill = 0;
};

inline std::vector<Param> lstm_params() {
    std::vector<Param> p;
    p.push_back({"embed.weight", {vocab, lstm_embed}, std::sqrt(3.0)});  // unit variance, as torch's N(0, 1)
    const double k = 1.0 / std::sqrt(static_cast<double>(lstm_hidden));  // torch's LSTM init
    for (long l = 0; l < lstm_layers; ++l) {
        const std::string s = "_l" + std::to_string(l);
        const long in = l == 0 ? lstm_embed : lstm_hidden;
        p.push_back({"lstm.weight_ih" + s, {4 * lstm_hidden, in}, k});
        p.push_back({"lstm.weight_hh" + s, {4 * lstm_hidden, lstm_hidden}, k});
        p.push_back({"lstm.bias_ih" + s, {4 * lstm_hidden}, k});
        p.push_back({"lstm.bias_hh" + s, {4 * lstm_hidden}, k});
    }
    const double h = 1.0 / std::sqrt(static_cast<double>(lstm_hidden));
    p.push_back({"head.weight", {vocab, lstm_hidden}, h});
    p.push_back({"head.bias", {vocab}, h});
    return p;
}

inline std::vector<Param> transformer_params() {
    const long d = d_model, m = mlp_ratio * d_model;
    const auto lin = [](long in) { return 1.0 / std::sqrt(static_cast<double>(in)); };
    std::vector<Param> p;
    p.push_back({"embed.weight", {vocab, d}, std::sqrt(3.0)});
    p.push_back({"positions.weight", {length, d}, std::sqrt(3.0)});
    for (long b = 0; b < blocks; ++b) {
        const std::string s = "blocks." + std::to_string(b) + ".";
        p.push_back({s + "ln1.weight", {d}, 0, 1});
        p.push_back({s + "ln1.bias", {d}, 0, 0});
        p.push_back({s + "attn.in_proj_weight", {3 * d, d}, std::sqrt(6.0 / static_cast<double>(4 * d))});
        p.push_back({s + "attn.in_proj_bias", {3 * d}, 0, 0});
        p.push_back({s + "attn.out_proj.weight", {d, d}, lin(d)});
        p.push_back({s + "attn.out_proj.bias", {d}, 0, 0});
        p.push_back({s + "ln2.weight", {d}, 0, 1});
        p.push_back({s + "ln2.bias", {d}, 0, 0});
        p.push_back({s + "mlp.0.weight", {m, d}, lin(d)});
        p.push_back({s + "mlp.0.bias", {m}, lin(d)});
        p.push_back({s + "mlp.2.weight", {d, m}, lin(m)});
        p.push_back({s + "mlp.2.bias", {d}, lin(m)});
    }
    p.push_back({"norm.weight", {d}, 0, 1});
    p.push_back({"norm.bias", {d}, 0, 0});
    p.push_back({"head.weight", {vocab, d}, lin(d)});
    p.push_back({"head.bias", {vocab}, lin(d)});
    return p;
}

inline std::vector<Param> params(std::string_view model) {
    if (model == "lstm") return lstm_params();
    if (model == "transformer") return transformer_params();
    throw std::invalid_argument("model: expected lstm or transformer");
}

inline std::size_t numel(const Param& p) {
    std::size_t n = 1;
    for (const long s : p.shape) n *= static_cast<std::size_t>(s);
    return n;
}

// Parameter `index` of the list (its place in it seeds its values), row-major in torch's layout.
inline std::vector<float> values(const Param& p, std::size_t index) {
    std::vector<float> v(numel(p), static_cast<float>(p.fill));
    if (p.bound > 0) {
        std::mt19937_64 gen(20261130 + 7919 * index);
        std::uniform_real_distribution<double> u(-p.bound, p.bound);
        for (float& x : v) x = static_cast<float>(u(gen));
    }
    return v;
}

// The batch: a random token stream per sequence, inputs its first 64 tokens and targets the
// following 64 (next-token prediction), both (batch, length) row-major.
struct Tokens {
    std::vector<std::int64_t> inputs, targets;
};
inline Tokens tokens() {
    std::mt19937_64 gen(20261201);
    std::uniform_int_distribution<std::int64_t> u(0, vocab - 1);
    Tokens t;
    for (long n = 0; n < batch; ++n) {
        std::vector<std::int64_t> s(static_cast<std::size_t>(length + 1));
        for (auto& x : s) x = u(gen);
        t.inputs.insert(t.inputs.end(), s.begin(), s.end() - 1);
        t.targets.insert(t.targets.end(), s.begin() + 1, s.end());
    }
    return t;
}

}  // namespace bench::seq
