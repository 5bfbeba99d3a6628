// The libtorch peer of bench/seq_step.cpp: the same language models, initial weights and batch
// (bench/seq_models.hpp) with torch's modules: torch::nn::Embedding, torch::nn::LSTM (batch_first),
// torch::nn::Linear, and for the transformer a pre-norm causal block written as xgrad's
// TransformerBlock is (torch::nn::LayerNorm, torch::nn::MultiheadAttention, whose C++ frontend
// has no batch_first and so gets (L, N, E) by a transpose, with need_weights off and an additive
// causal mask, and an MLP Linear-GELU-Linear), torch::optim::Adam. Also its autograd graph's node
// count (AccumulateGrad nodes left out) and heap allocations per step, counted as xgrad's are.
//
//   torch_seq_step time lstm|transformer       as seq_step
//   torch_seq_step memory lstm|transformer N   peak RSS after N training steps
//
// Single-threaded: torch::set_num_threads(1).
#include <torch/torch.h>

#include <limits>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bench/alloc_count.hpp"
#include "bench/common.hpp"
#include "bench/seq_models.hpp"

namespace {

using namespace bench::seq;
namespace F = torch::nn::functional;

struct LM : torch::nn::Module {
    virtual torch::Tensor logits(const torch::Tensor& ids) = 0;
};

struct LstmLM : LM {
    LstmLM() {
        embed = register_module("embed", torch::nn::Embedding(vocab, lstm_embed));
        lstm = register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(lstm_embed, lstm_hidden)
                                                           .num_layers(lstm_layers)
                                                           .batch_first(true)));
        head = register_module("head", torch::nn::Linear(lstm_hidden, vocab));
    }
    torch::Tensor logits(const torch::Tensor& ids) override {
        return head->forward(std::get<0>(lstm->forward(embed->forward(ids))));
    }
    torch::nn::Embedding embed{nullptr};
    torch::nn::LSTM lstm{nullptr};
    torch::nn::Linear head{nullptr};
};

// x + attn(ln1(x)) causal, then + mlp(ln2(x)): xgrad's nn::TransformerBlock, the same names.
struct BlockImpl : torch::nn::Module {
    BlockImpl() {
        ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model}).eps(1e-5)));
        attn = register_module("attn", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(d_model, heads)));
        ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model}).eps(1e-5)));
        mlp = register_module("mlp", torch::nn::Sequential(torch::nn::Linear(d_model, mlp_ratio * d_model),
                                                           torch::nn::GELU(),
                                                           torch::nn::Linear(mlp_ratio * d_model, d_model)));
    }
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) {  // x (N, L, d)
        const torch::Tensor a = ln1->forward(x).transpose(0, 1);                  // (L, N, d)
        const torch::Tensor h = x + std::get<0>(attn->forward(a, a, a, {}, false, mask)).transpose(0, 1);
        return h + mlp->forward(ln2->forward(h));
    }
    torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
    torch::nn::MultiheadAttention attn{nullptr};
    torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(Block);

struct TransformerLM : LM {
    TransformerLM() {
        embed = register_module("embed", torch::nn::Embedding(vocab, d_model));
        positions = register_module("positions", torch::nn::Embedding(length, d_model));
        list = register_module("blocks", torch::nn::ModuleList());
        for (long i = 0; i < blocks; ++i) {
            all.push_back(Block());
            list->push_back(all.back());
        }
        norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model}).eps(1e-5)));
        head = register_module("head", torch::nn::Linear(d_model, vocab));
        pos = torch::arange(length, torch::kInt64);
        mask = torch::triu(torch::full({length, length}, -std::numeric_limits<float>::infinity()), 1);
    }
    torch::Tensor logits(const torch::Tensor& ids) override {
        torch::Tensor x = embed->forward(ids) + positions->forward(pos);
        for (Block& b : all) x = b->forward(x, mask);
        return head->forward(norm->forward(x));
    }
    torch::nn::Embedding embed{nullptr}, positions{nullptr};
    torch::nn::ModuleList list{nullptr};
    std::vector<Block> all;
    torch::nn::LayerNorm norm{nullptr};
    torch::nn::Linear head{nullptr};
    torch::Tensor pos, mask;
};

struct Model {
    explicit Model(std::string_view name) {
        if (name == "lstm")
            lm = std::make_shared<LstmLM>();
        else
            lm = std::make_shared<TransformerLM>();
        const std::vector<Param> spec = params(name);
        const auto named = lm->named_parameters();
        if (named.size() != spec.size())
            throw std::runtime_error("torch_seq_step: " + std::to_string(named.size()) + " parameters, the spec lists " +
                                     std::to_string(spec.size()));
        torch::NoGradGuard no_grad;
        for (const auto& item : named) {
            const auto it = std::find_if(spec.begin(), spec.end(), [&](const Param& s) { return s.name == item.key(); });
            if (it == spec.end()) throw std::runtime_error("torch_seq_step: parameter " + item.key() + " is not in the spec");
            std::vector<float> v = values(*it, static_cast<std::size_t>(it - spec.begin()));
            const torch::Tensor src = torch::from_blob(v.data(), it->shape, torch::kFloat32);
            if (item.value().sizes() != src.sizes())
                throw std::runtime_error("torch_seq_step: parameter " + item.key() + " has another shape");
            item.value().copy_(src);
        }
        Tokens t = tokens();
        ids = torch::from_blob(t.inputs.data(), {batch, length}, torch::kInt64).clone();
        y = torch::from_blob(t.targets.data(), {batch * length}, torch::kInt64).clone();
        adam = std::make_unique<torch::optim::Adam>(lm->parameters(), torch::optim::AdamOptions(adam_lr));
    }

    torch::Tensor loss() { return F::cross_entropy(lm->logits(ids).reshape({-1, vocab}), y); }

    void step() {
        adam->zero_grad();
        torch::Tensor l = loss();
        l.backward();
        adam->step();
    }

    std::shared_ptr<LM> lm;
    torch::Tensor ids, y;
    std::unique_ptr<torch::optim::Adam> adam;
};

// The autograd graph's nodes reachable from the loss, AccumulateGrad (the leaves' sinks) left out.
long graph_nodes(const torch::Tensor& loss) {
    std::set<torch::autograd::Node*> seen;
    std::vector<std::shared_ptr<torch::autograd::Node>> todo{loss.grad_fn()};
    long n = 0;
    while (!todo.empty()) {
        const auto f = todo.back();
        todo.pop_back();
        if (!f || !seen.insert(f.get()).second) continue;
        if (f->name() != "torch::autograd::AccumulateGrad") ++n;
        for (const auto& e : f->next_edges())
            if (e.function) todo.push_back(e.function);
    }
    return n;
}

std::string key(std::string_view name) { return "torch.seq_" + std::string(name) + ".f32.b" + std::to_string(batch); }

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("torch_seq_step", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const auto usage = [] {
            return bench::ArgError("usage: torch_seq_step time lstm|transformer | memory lstm|transformer STEPS");
        };
        if (args.size() < 2) throw usage();
        const std::string_view mode = bench::choice_arg("mode", args[0], {"time", "memory"});
        const std::string_view name = bench::choice_arg("model", args[1], {"lstm", "transformer"});
        if (args.size() != (mode == "memory" ? 3u : 2u)) throw usage();
        torch::set_num_threads(1);

        if (mode == "memory") {
            const long steps = bench::integer_arg("STEPS", args[2], 1, 100'000'000);
            Model m(name);
            for (long i = 0; i < steps; ++i) m.step();
            bench::emit(key(name) + ".peak_rss_kb", static_cast<double>(bench::status_kb("VmHWM")));
            return 0;
        }
        bench::stable_heap();
        Model m(name);
        {
            torch::NoGradGuard no_grad;
            bench::emit(key(name) + ".loss0", m.loss().item<double>());
        }
        bench::emit(key(name) + ".ops", static_cast<double>(graph_nodes(m.loss())));
        m.step();
        m.step();
        const unsigned long a0 = bench::allocations(), b0 = bench::allocated_bytes();
        m.step();
        if (bench::counting_allocations) {  // not under ASan or TSan
            bench::emit(key(name) + ".allocs", static_cast<double>(bench::allocations() - a0));
            bench::emit(key(name) + ".alloc_mb", static_cast<double>(bench::allocated_bytes() - b0) / (1 << 20));
        }
        {
            torch::NoGradGuard no_grad;
            bench::emit(key(name) + ".loss3", m.loss().item<double>());
        }
        const bench::Timing t = bench::median_us([&] { m.step(); }, 1, 9, 4 * bench::budget_s());
        bench::emit(key(name), t);
        return 0;
    });
}
