#pragma once
// Attention layers (issue 15): MultiheadAttention and a pre-norm TransformerBlock, with torch's
// parameter names and layouts so that a torch model's state_dict (saved as .npz) loads with
// load_state_dict. Built from graph ops (scaled_dot_product_attention, matmul, layer_norm, gelu):
// no layer has a backward pass of its own.
#include <cstddef>
#include <memory>
#include <string>

#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/sequential.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

struct TorchLinearOptions {
    bool bias = true;
    Generator* generator = nullptr;  // default_generator() when null
};

// torch.nn.Linear's layout: x·weightᵀ + bias with "weight" of shape (out, in) and "bias" (out,),
// both initialised U(-1/sqrt(in), 1/sqrt(in)) as torch's. (The library's Linear keeps the book's
// (in, out) weight.) x (..., in) -> (..., out); the leading axes are flattened into one GEMM.
template <class T>
class TorchLinear : public UnaryModule<T> {
public:
    TorchLinear(std::size_t in, std::size_t out, TorchLinearOptions options = {});
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;
    Variable<T> weight() const { return weight_; }
    Variable<T> bias() const { return bias_; }  // undefined without bias

private:
    Variable<T> weight_, bias_;
};

struct MultiheadAttentionOptions {
    bool bias = true;         // in_proj_bias and out_proj.bias (torch's bias=False drops both)
    bool batch_first = true;  // inputs (N, L, E); false: (L, N, E), as torch's default
    Generator* generator = nullptr;  // default_generator() when null
};

// torch.nn.MultiheadAttention (kdim = vdim = embed_dim, no dropout), returning the attention
// output only (torch's first result). Parameters, named and shaped as torch's:
//   in_proj_weight (3E, E)  rows [0, E) project the query, [E, 2E) the key, [2E, 3E) the value;
//                           xavier-uniform, U(-a, a) with a = sqrt(6 / (E + 3E)), as torch's
//   in_proj_bias (3E)       zeros
//   out_proj.weight (E, E)  torch.nn.Linear's init (a TorchLinear child named out_proj)
//   out_proj.bias (E)       zeros
// forward(q, k, v, mask, causal): q (N, L, E), k and v (N, S, E) (batch_first), or unbatched (L, E)
// and (S, E); returns the shape of q. mask is additive (-inf masks), of shape (L, S), or
// (N * num_heads, L, S) as torch's attn_mask, or anything broadcastable to (N, num_heads, L, S);
// causal masks key j > query i (torch's is_causal). Each head attends with
// scaled_dot_product_attention over head_dim = E / num_heads; a query whose keys are all masked gets
// zeros from the attention (then out_proj.bias), where torch gives NaN.
template <class T>
class MultiheadAttention : public Module<T> {
public:
    MultiheadAttention(std::size_t embed_dim, std::size_t num_heads, MultiheadAttentionOptions options = {});
    Variable<T> forward(const Variable<T>& q, const Variable<T>& k, const Variable<T>& v, const Variable<T>& mask = {},
                        bool causal = false);
    Variable<T> operator()(const Variable<T>& q, const Variable<T>& k, const Variable<T>& v,
                           const Variable<T>& mask = {}, bool causal = false) {
        return forward(q, k, v, mask, causal);
    }
    std::string repr() const override;

    std::size_t embed_dim() const { return embed_dim_; }
    std::size_t num_heads() const { return num_heads_; }
    bool batch_first() const { return batch_first_; }
    Variable<T> in_proj_weight() const { return in_proj_weight_; }
    Variable<T> in_proj_bias() const { return in_proj_bias_; }  // undefined without bias
    const std::shared_ptr<TorchLinear<T>>& out_proj() const { return out_proj_; }

private:
    std::size_t embed_dim_, num_heads_;
    bool batch_first_;
    Variable<T> in_proj_weight_, in_proj_bias_;
    std::shared_ptr<TorchLinear<T>> out_proj_;
};

struct TransformerBlockOptions {
    std::size_t mlp_ratio = 4;  // the MLP's hidden size is mlp_ratio * d_model
    double dropout = 0.0;       // in [0, 1): dropout on the attention and MLP outputs before each residual
                                // sum, in training mode only
    Generator* generator = nullptr;  // default_generator() when null
};

// A pre-norm transformer block (GPT-2's):
//   h   = x + attn(ln1(x), ln1(x), ln1(x), causal)
//   out = h + mlp(ln2(h)),  mlp = Linear(d, r d), GELU (exact erf form, torch's default), Linear(r d, d)
// Children, in this order, named so that the state_dict of the torch twin
//   ln1 = nn.LayerNorm(d); attn = nn.MultiheadAttention(d, heads, batch_first=True);
//   ln2 = nn.LayerNorm(d); mlp = nn.Sequential(nn.Linear(d, r d), nn.GELU(), nn.Linear(r d, d))
// loads as it is: ln1.weight, ln1.bias, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight,
// attn.out_proj.bias, ln2.weight, ln2.bias, mlp.0.weight, mlp.0.bias, mlp.2.weight, mlp.2.bias
// (LayerNorm eps 1e-5). With dropout > 0 a parameterless child "dropout" is added last.
// forward(x, causal): x (N, L, d) -> (N, L, d).
template <class T>
class TransformerBlock : public Module<T> {
public:
    TransformerBlock(std::size_t d_model, std::size_t num_heads, TransformerBlockOptions options = {});
    Variable<T> forward(const Variable<T>& x, bool causal = true);
    Variable<T> operator()(const Variable<T>& x, bool causal = true) { return forward(x, causal); }
    std::string repr() const override;

    const std::shared_ptr<LayerNorm<T>>& ln1() const { return ln1_; }
    const std::shared_ptr<MultiheadAttention<T>>& attn() const { return attn_; }
    const std::shared_ptr<LayerNorm<T>>& ln2() const { return ln2_; }
    const std::shared_ptr<Sequential<T>>& mlp() const { return mlp_; }

private:
    std::size_t d_model_;
    std::shared_ptr<LayerNorm<T>> ln1_;
    std::shared_ptr<MultiheadAttention<T>> attn_;
    std::shared_ptr<LayerNorm<T>> ln2_;
    std::shared_ptr<Sequential<T>> mlp_;
    std::shared_ptr<Dropout<T>> dropout_;  // null when options.dropout == 0
};

#define XG_NN_ATTENTION_EXTERN(T)                \
    extern template class TorchLinear<T>;        \
    extern template class MultiheadAttention<T>; \
    extern template class TransformerBlock<T>;
XG_NN_ATTENTION_EXTERN(float)
XG_NN_ATTENTION_EXTERN(double)
#undef XG_NN_ATTENTION_EXTERN

}  // namespace xg::nn
