// seq_step: one training step (forward, softmax cross-entropy over all 32 * 64 positions,
// backward, Adam) of issue 15's character-level language models in float32 (bench/seq_models.hpp:
// a 2-layer LSTM of hidden size 256, or a 2-block transformer of width 128), and, in the same
// process, the step's GEMMs alone through cblas_sgemm on buffers of the shapes xgrad's step
// multiplies (the limit; see Limit below). Also the step's op count (the Functions recorded by
// the forward pass, found by walking the graph from the loss) and its heap allocations (every
// malloc and its kin during one step, bench/alloc_count.hpp).
//
//   seq_step time lstm|transformer       step and limit times, the loss before and after 3 steps,
//                                        ops and allocations per step
//   seq_step ops lstm|transformer        the recorded ops by name, most frequent first
//   seq_step memory lstm|transformer N   peak RSS after N training steps (glibc's default heap)
//   seq_step run lstm|transformer N      just N steps, for a profiler
//
// Run single-threaded (OPENBLAS_NUM_THREADS=1; scripts/bench sets it).
#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bench/alloc_count.hpp"
#include "bench/common.hpp"
#include "bench/gemm_limit.hpp"
#include "bench/seq_models.hpp"
#include "xgrad.hpp"

namespace {

using namespace bench::seq;
using V = xg::Variable<float>;

xg::IndexArray index_array(const std::vector<std::int64_t>& v) {
    xg::IndexArray a = xg::IndexArray::from_shape({static_cast<std::size_t>(batch), static_cast<std::size_t>(length)});
    std::copy(v.begin(), v.end(), a.data());
    return a;
}

// The language models as a user writes them with xgrad's layers (as examples/char_lm.cpp does).
class LM : public xg::nn::Module<float> {
public:
    virtual V logits(const xg::IndexArray& ids) = 0;
};

class LstmLM : public LM {
public:
    LstmLM() {
        xg::nn::Generator gen(1);
        embed_ = register_module("embed", std::make_shared<xg::nn::Embedding<float>>(
                                              vocab, lstm_embed, xg::nn::EmbeddingOptions{.generator = &gen}));
        lstm_ = register_module("lstm", std::make_shared<xg::nn::LSTM<float>>(
                                            lstm_embed, lstm_hidden,
                                            xg::nn::RecurrentOptions{.num_layers = static_cast<std::size_t>(lstm_layers),
                                                                     .batch_first = true,
                                                                     .generator = &gen}));
        head_ = register_module("head", std::make_shared<xg::nn::Linear<float>>(
                                            lstm_hidden, vocab, xg::nn::LinearOptions{.generator = &gen}));
    }
    V logits(const xg::IndexArray& ids) override { return (*head_)(lstm_->forward((*embed_)(ids)).first); }

private:
    std::shared_ptr<xg::nn::Embedding<float>> embed_;
    std::shared_ptr<xg::nn::LSTM<float>> lstm_;
    std::shared_ptr<xg::nn::Linear<float>> head_;
};

class TransformerLM : public LM {
public:
    TransformerLM() {
        xg::nn::Generator gen(1);
        embed_ = register_module("embed", std::make_shared<xg::nn::Embedding<float>>(
                                              vocab, d_model, xg::nn::EmbeddingOptions{.generator = &gen}));
        positions_ = register_module("positions", std::make_shared<xg::nn::Embedding<float>>(
                                                      length, d_model, xg::nn::EmbeddingOptions{.generator = &gen}));
        blocks_ = register_module("blocks", std::make_shared<xg::nn::Sequential<float>>());
        for (long i = 0; i < blocks; ++i)
            blocks_->push_back(std::make_shared<xg::nn::TransformerBlock<float>>(
                d_model, heads,
                xg::nn::TransformerBlockOptions{.mlp_ratio = static_cast<std::size_t>(mlp_ratio), .generator = &gen}));
        norm_ = register_module("norm", std::make_shared<xg::nn::LayerNorm<float>>(xg::Shape{d_model}));
        head_ = register_module("head", std::make_shared<xg::nn::Linear<float>>(d_model, vocab,
                                                                                xg::nn::LinearOptions{.generator = &gen}));
        pos_ = xg::IndexArray::from_shape({static_cast<std::size_t>(length)});
        for (long t = 0; t < length; ++t) pos_(t) = t;
    }
    V logits(const xg::IndexArray& ids) override {
        V x = (*embed_)(ids) + (*positions_)(pos_);  // (N, L, d) + (L, d)
        for (std::size_t i = 0; i < blocks_->size(); ++i)
            x = blocks_->get<xg::nn::TransformerBlock<float>>(i)->forward(x, true);
        return (*head_)((*norm_)(x));
    }

private:
    std::shared_ptr<xg::nn::Embedding<float>> embed_, positions_;
    std::shared_ptr<xg::nn::Sequential<float>> blocks_;
    std::shared_ptr<xg::nn::LayerNorm<float>> norm_;
    std::shared_ptr<xg::nn::Linear<float>> head_;
    xg::IndexArray pos_;
};

struct Model {
    explicit Model(std::string_view name) : name(name) {
        if (name == "lstm")
            lm = std::make_unique<LstmLM>();
        else
            lm = std::make_unique<TransformerLM>();
        // The shared initial values, by name; the library's Linear holds its weight (in, out),
        // the transpose of torch's (out, in) listed in the spec.
        const std::vector<Param> spec = params(name);
        const auto named = lm->named_parameters();
        if (named.size() != spec.size())
            throw std::runtime_error("seq_step: " + std::to_string(named.size()) + " parameters, the spec lists " +
                                     std::to_string(spec.size()));
        for (const auto& [pname, p] : named) {
            const auto it = std::find_if(spec.begin(), spec.end(), [&](const Param& s) { return s.name == pname; });
            if (it == spec.end()) throw std::runtime_error("seq_step: parameter " + pname + " is not in the spec");
            const std::vector<float> v = values(*it, static_cast<std::size_t>(it - spec.begin()));
            xg::Array<float>& a = p.mutable_data();
            if (a.size() != v.size()) throw std::runtime_error("seq_step: parameter " + pname + " has another size");
            if (pname == "head.weight") {
                const auto out = static_cast<std::size_t>(it->shape[0]), in = static_cast<std::size_t>(it->shape[1]);
                for (std::size_t o = 0; o < out; ++o)
                    for (std::size_t j = 0; j < in; ++j) a.data()[j * out + o] = v[o * in + j];
            } else {
                std::copy(v.begin(), v.end(), a.data());
            }
        }
        const Tokens t = tokens();
        ids = index_array(t.inputs);
        y = xg::Labels::from_shape({static_cast<std::size_t>(batch * length)});
        std::copy(t.targets.begin(), t.targets.end(), y.begin());
        adam = std::make_unique<xg::optim::Adam<float>>(lm->parameters(), xg::optim::AdamOptions{.lr = adam_lr});
    }

    V loss() { return xg::softmax_cross_entropy(xg::reshape(lm->logits(ids), {-1, vocab}), y); }

    void step() {
        adam->zero_grad();
        const V l = loss();
        l.backward();
        adam->step();
    }

    std::string name;
    std::unique_ptr<LM> lm;
    xg::IndexArray ids;
    xg::Labels y;
    std::unique_ptr<xg::optim::Adam<float>> adam;
};

// The ops recorded by one forward pass: every Function reachable from the loss, by name.
std::map<std::string, long> recorded_ops(const V& loss) {
    std::map<std::string, long> count;
    std::set<const xg::Function<float>*> seen;
    std::vector<std::shared_ptr<xg::Function<float>>> todo;
    if (loss.creator()) todo.push_back(loss.creator());
    while (!todo.empty()) {
        const auto f = todo.back();
        todo.pop_back();
        if (!seen.insert(f.get()).second) continue;
        ++count[std::string(f->name())];
        for (const V& x : f->inputs())
            if (x.creator() && !seen.count(x.creator().get())) todo.push_back(x.creator());
    }
    return count;
}

// The step's GEMMs, with the shapes xgrad's step multiplies, on buffers allocated once (contents
// fixed, finite). Row-major C (m, n) = op(A) (m, k) op(B) (k, n), `repeats` times (time steps,
// attention heads); the recurrent weight gradients add up over the steps (beta = 1), as they
// would in the best case. Left out: everything that is not a GEMM (gates, softmax, layer norm,
// GELU, embedding, the loss, Adam).
struct Limit : bench::GemmLimit {
    static constexpr CBLAS_TRANSPOSE N_ = CblasNoTrans, T_ = CblasTrans;

    // An affine layer on `rows` rows, y = x W^T (torch's layout) or x W (the library's Linear):
    // the forward product, the weight gradient and the input gradient.
    void linear(int rows, int in, int out) {
        gemms.push_back({N_, T_, rows, out, in});  // y = x W^T
        gemms.push_back({T_, N_, out, in, rows});  // gW = gy^T x
        gemms.push_back({N_, N_, rows, in, out});  // gx = gy W
    }

    explicit Limit(std::string_view name) {
        const int R = static_cast<int>(batch * length), L = static_cast<int>(length), N = static_cast<int>(batch);
        if (name == "lstm") {
            const int H = static_cast<int>(lstm_hidden), G = 4 * H;
            for (long l = 0; l < lstm_layers; ++l) {
                const int in = static_cast<int>(l == 0 ? lstm_embed : lstm_hidden);
                linear(R, in, G);  // every step's input projection in one GEMM
                // h_{t-1} W_hh^T for t = 1..L-1 (the first step's state is zero: no product), and
                // backward: g_h = g_gates W_hh, g_W_hh += g_gates^T h_{t-1}.
                gemms.push_back({N_, T_, N, G, H, L - 1});
                gemms.push_back({N_, N_, N, H, G, L - 1});
                gemms.push_back({T_, N_, G, H, N, L - 1, true});
            }
            linear(R, H, static_cast<int>(vocab));
        } else {
            const int d = static_cast<int>(d_model), hd = d / static_cast<int>(heads),
                      B = static_cast<int>(batch * heads);
            for (long b = 0; b < blocks; ++b) {
                linear(R, d, 3 * d);  // in_proj
                // per (sequence, head): S = Q K^T, O = P V; backward gP = gO V^T, gV = P^T gO,
                // gQ = gS K, gK = gS^T Q
                gemms.push_back({N_, T_, L, L, hd, B});
                gemms.push_back({N_, N_, L, hd, L, B});
                gemms.push_back({N_, T_, L, L, hd, B});
                gemms.push_back({T_, N_, L, hd, L, B});
                gemms.push_back({N_, N_, L, hd, L, B});
                gemms.push_back({T_, N_, L, hd, L, B});
                linear(R, d, d);                                    // out_proj
                linear(R, d, static_cast<int>(mlp_ratio) * d);      // mlp.0
                linear(R, static_cast<int>(mlp_ratio) * d, d);      // mlp.2
            }
            linear(R, d, static_cast<int>(vocab));
        }
        prepare();
    }
};

std::string key(std::string_view what, std::string_view name) {
    return std::string(what) + ".seq_" + std::string(name) + ".f32.b" + std::to_string(batch);
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("seq_step", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const auto usage = [] {
            return bench::ArgError("usage: seq_step time|ops lstm|transformer | memory|run lstm|transformer STEPS");
        };
        if (args.size() < 2) throw usage();
        const std::string_view mode = bench::choice_arg("mode", args[0], {"time", "ops", "memory", "run"});
        const std::string_view name = bench::choice_arg("model", args[1], {"lstm", "transformer"});
        const bool with_steps = mode == "memory" || mode == "run";
        if (args.size() != (with_steps ? 3u : 2u)) throw usage();
        const long steps = with_steps ? bench::integer_arg("STEPS", args[2], 1, 100'000'000) : 0;

        if (mode == "memory") {  // glibc's default heap: what a user's program gets
            Model m(name);
            for (long i = 0; i < steps; ++i) m.step();
            bench::emit(key("xgrad", name) + ".peak_rss_kb", static_cast<double>(bench::status_kb("VmHWM")));
            return 0;
        }
        bench::stable_heap();
        Model m(name);
        if (mode == "run") {
            for (long i = 0; i < steps; ++i) m.step();
            return 0;
        }
        if (mode == "ops") {
            const V l = m.loss();
            std::vector<std::pair<long, std::string>> by_count;
            long total = 0;
            for (const auto& [op, n] : recorded_ops(l)) {
                by_count.emplace_back(n, op);
                total += n;
            }
            std::sort(by_count.rbegin(), by_count.rend());
            std::printf("%s: %ld ops recorded by the forward pass\n", m.name.c_str(), total);
            for (const auto& [n, op] : by_count) std::printf("  %6ld %s\n", n, op.c_str());
            return 0;
        }
        // The first loss, before any update: the same weights and batch give libtorch's value.
        {
            xg::NoGradGuard no_grad;
            bench::emit(key("xgrad", name) + ".loss0", static_cast<double>(m.loss().item()));
        }
        {
            long ops = 0;
            for (const auto& [op, n] : recorded_ops(m.loss())) ops += n;
            bench::emit(key("xgrad", name) + ".ops", static_cast<double>(ops));
        }
        // Allocations of one step once the optimizer's state exists (the third step; all steps
        // after the first allocate alike).
        m.step();
        m.step();
        const unsigned long a0 = bench::allocations(), b0 = bench::allocated_bytes();
        m.step();
        if (bench::counting_allocations) {  // not under ASan or TSan
            bench::emit(key("xgrad", name) + ".allocs", static_cast<double>(bench::allocations() - a0));
            bench::emit(key("xgrad", name) + ".alloc_mb", static_cast<double>(bench::allocated_bytes() - b0) / (1 << 20));
        }
        {  // after three Adam steps: the same again in libtorch if the backward passes agree
            xg::NoGradGuard no_grad;
            bench::emit(key("xgrad", name) + ".loss3", static_cast<double>(m.loss().item()));
        }

        Limit limit(name);
        bench::emit(key("limit", name) + ".gflop", limit.flops() * 1e-9);
        const std::vector<std::function<void()>> bodies = {[&] { m.step(); }, [&] { limit(); }};
        const auto t = bench::interleaved_median_us(bodies, 3, 1, 9, 4 * bench::budget_s());
        bench::emit(key("xgrad", name), t[0]);
        bench::emit(key("limit", name), t[1]);
        return 0;
    });
}
