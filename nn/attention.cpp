#include "nn/attention.hpp"

#include <cmath>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::nn {

template <class T>
TorchLinear<T>::TorchLinear(std::size_t in, std::size_t out, TorchLinearOptions options) {
    if (in == 0 || out == 0) throw ShapeError(fmt::format("TorchLinear: sizes must be positive, got {} -> {}", in, out));
    const double biases = options.bias ? static_cast<double>(out) : 0.0;
    require_memory_for_parameters(static_cast<double>(in) * static_cast<double>(out) + biases, sizeof(T),
                                  fmt::format("TorchLinear({} -> {})", in, out));
    Generator& gen = options.generator ? *options.generator : default_generator();
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    Variable<T> w(Array<T>::from_shape({out, in}));
    init::uniform_(w, -bound, bound, gen);
    weight_ = this->register_parameter("weight", w, Decay::yes);
    if (options.bias) {
        Variable<T> b(Array<T>::from_shape({out}));
        init::uniform_(b, -bound, bound, gen);
        bias_ = this->register_parameter("bias", b);
    }
}

template <class T>
Variable<T> TorchLinear<T>::forward(const Variable<T>& x) {
    const std::size_t in = weight_.shape()[1], out = weight_.shape()[0];
    if (!x.defined() || x.ndim() == 0 || x.shape().back() != in)
        throw ShapeError(fmt::format("TorchLinear({} -> {}): expects an input (..., {}), got shape {}", in, out, in,
                                     x.defined() ? shape_str(x.shape()) : std::string("(undefined)")));
    // (..., in) as the (rows, in) matrix it is in memory: one GEMM against weightᵀ (a BLAS flag)
    // adding to the bias's rows, no copy either way.
    return torch_linear(x, weight_, bias_);
}

template <class T>
std::string TorchLinear<T>::repr() const {
    return fmt::format("TorchLinear({} -> {}{})", weight_.shape()[1], weight_.shape()[0],
                       bias_.defined() ? "" : ", no bias");
}

template <class T>
MultiheadAttention<T>::MultiheadAttention(std::size_t embed_dim, std::size_t num_heads,
                                          MultiheadAttentionOptions options)
    : embed_dim_(embed_dim), num_heads_(num_heads), batch_first_(options.batch_first) {
    if (embed_dim == 0 || num_heads == 0)
        throw ShapeError(fmt::format("MultiheadAttention: embed_dim and num_heads must be positive, got embed_dim {}, "
                                     "num_heads {}",
                                     embed_dim, num_heads));
    if (embed_dim % num_heads != 0)
        throw ShapeError(fmt::format("MultiheadAttention: num_heads {} does not divide embed_dim {}", num_heads,
                                     embed_dim));
    const double E = static_cast<double>(embed_dim);
    require_memory_for_parameters(4 * E * E + 4 * E, sizeof(T), fmt::format("MultiheadAttention({}, {})", embed_dim,
                                                                            num_heads));
    Generator& gen = options.generator ? *options.generator : default_generator();
    Variable<T> w(Array<T>::from_shape({3 * embed_dim, embed_dim}));
    const double a = std::sqrt(6.0 / (E + 3 * E));  // xavier_uniform_ of a (3E, E) weight
    init::uniform_(w, -a, a, gen);
    in_proj_weight_ = this->register_parameter("in_proj_weight", w, Decay::yes);
    if (options.bias)
        in_proj_bias_ = this->register_parameter("in_proj_bias", Variable<T>(full<T>({3 * embed_dim}, T(0))));
    out_proj_ = this->register_module(
        "out_proj", std::make_shared<TorchLinear<T>>(embed_dim, embed_dim,
                                                     TorchLinearOptions{.bias = options.bias, .generator = &gen}));
    if (options.bias) out_proj_->bias().mutable_data() = full<T>({embed_dim}, T(0));  // torch zeroes it
}

template <class T>
Variable<T> MultiheadAttention<T>::forward(const Variable<T>& q_in, const Variable<T>& k_in, const Variable<T>& v_in,
                                           const Variable<T>& mask_in, bool causal) {
    const std::size_t E = embed_dim_, H = num_heads_;
    const std::string who = fmt::format("MultiheadAttention(embed_dim={}, num_heads={})", E, H);
    auto str = [](const Variable<T>& x) { return x.defined() ? shape_str(x.shape()) : std::string("(undefined)"); };
    auto shapes = [&] {
        std::string s = fmt::format("query {}, key {}, value {}", str(q_in), str(k_in), str(v_in));
        if (mask_in.defined()) s += fmt::format(", mask {}", str(mask_in));
        return s;
    };
    if (!q_in.defined() || !k_in.defined() || !v_in.defined())
        throw ValueError(fmt::format("{}: query, key and value must be defined; got {}", who, shapes()));
    const std::size_t nd = q_in.ndim();
    if ((nd != 2 && nd != 3) || k_in.ndim() != nd || v_in.ndim() != nd)
        throw ShapeError(fmt::format("{}: expects query, key and value all 3-D ({}) or all 2-D (unbatched (L, E)); "
                                     "got {}",
                                     who, batch_first_ ? "(N, L, E)" : "(L, N, E)", shapes()));
    if (q_in.shape().back() != E || k_in.shape().back() != E || v_in.shape().back() != E)
        throw ShapeError(fmt::format("{}: the last dimension of query, key and value must be embed_dim {}; got {}", who,
                                     E, shapes()));
    // Everything as batch-first (N, L, E).
    const bool batched = nd == 3;
    auto to_nle = [&](const Variable<T>& x) {
        if (!batched) return unsqueeze(x, 0);
        return batch_first_ ? x : permute(x, {1, 0, 2});
    };
    const bool self_attention = q_in.node() == k_in.node() && k_in.node() == v_in.node();
    const Variable<T> q = to_nle(q_in);
    const Variable<T> k = self_attention ? q : to_nle(k_in);
    const Variable<T> v = self_attention ? q : to_nle(v_in);
    const std::size_t N = q.shape()[0], L = q.shape()[1], S = k.shape()[1];
    if (k.shape()[0] != N || v.shape()[0] != N)
        throw ShapeError(fmt::format("{}: query, key and value must have the same batch size; got {}", who, shapes()));
    if (v.shape()[1] != S)
        throw ShapeError(fmt::format("{}: key and value must have the same length; got {}", who, shapes()));

    // The mask as something broadcastable to (N, H, L, S).
    Variable<T> mask = mask_in;
    if (mask.defined()) {
        const Shape& m = mask.shape();
        if (m.size() == 3 && m[0] == N * H && m[1] == L && m[2] == S)
            mask = reshape(mask, {static_cast<long>(N), static_cast<long>(H), static_cast<long>(L),
                                  static_cast<long>(S)});
        else if (m.size() > 4)
            throw ShapeError(fmt::format("{}: the mask must be (L, S), (N * num_heads, L, S) or broadcastable to "
                                         "(N, num_heads, L, S) = ({}, {}, {}, {}); got {}",
                                         who, N, H, L, S, shapes()));
        else {
            const Shape want{N, H, L, S};
            for (std::size_t i = 0; i < m.size(); ++i)
                if (m[i] != 1 && m[i] != want[4 - m.size() + i])
                    throw ShapeError(fmt::format("{}: the mask must be (L, S), (N * num_heads, L, S) or broadcastable "
                                                 "to (N, num_heads, L, S) = ({}, {}, {}, {}); got {}",
                                                 who, N, H, L, S, shapes()));
        }
    }

    // Projections, as the (N rows, E) matrices the inputs are in memory (no reshape). Self-attention
    // projects once with all of in_proj_weight, and qkv_attention reads q, k and v as the thirds
    // of that (N, L, 3E) result, each head in place; otherwise each input is projected with its
    // third of the weight and heads_attention reads the heads where the projections put them.
    Variable<T> att;
    if (self_attention) {
        att = qkv_attention(torch_linear(q, in_proj_weight_, in_proj_bias_), H, mask, causal);
    } else {
        auto third = [&](const Variable<T>& p, std::size_t i) {
            return p.defined() ? slice(p, 0, i * E, (i + 1) * E) : Variable<T>();
        };
        att = heads_attention(torch_linear(q, third(in_proj_weight_, 0), third(in_proj_bias_, 0)),
                              torch_linear(k, third(in_proj_weight_, 1), third(in_proj_bias_, 1)),
                              torch_linear(v, third(in_proj_weight_, 2), third(in_proj_bias_, 2)), H, mask, causal);
    }
    const Variable<T> out = out_proj_->forward(att);
    if (!batched) return squeeze(out, 0);
    return batch_first_ ? out : permute(out, {1, 0, 2});
}

template <class T>
std::string MultiheadAttention<T>::repr() const {
    return fmt::format("MultiheadAttention(embed_dim={}, num_heads={}, bias={}, batch_first={})", embed_dim_,
                       num_heads_, in_proj_bias_.defined(), batch_first_);
}

template <class T>
TransformerBlock<T>::TransformerBlock(std::size_t d_model, std::size_t num_heads, TransformerBlockOptions options)
    : d_model_(d_model) {
    if (d_model == 0 || num_heads == 0 || options.mlp_ratio == 0)
        throw ShapeError(fmt::format("TransformerBlock: d_model, num_heads and mlp_ratio must be positive, got "
                                     "d_model {}, num_heads {}, mlp_ratio {}",
                                     d_model, num_heads, options.mlp_ratio));
    if (d_model % num_heads != 0)
        throw ShapeError(fmt::format("TransformerBlock: num_heads {} does not divide d_model {}", num_heads, d_model));
    if (!(options.dropout >= 0.0 && options.dropout < 1.0))
        throw ValueError(fmt::format("TransformerBlock: dropout must be in [0, 1), got {}", options.dropout));
    Generator& gen = options.generator ? *options.generator : default_generator();
    const std::size_t hidden = options.mlp_ratio * d_model;
    ln1_ = this->register_module("ln1", std::make_shared<LayerNorm<T>>(Shape{d_model}));
    attn_ = this->register_module(
        "attn", std::make_shared<MultiheadAttention<T>>(d_model, num_heads,
                                                        MultiheadAttentionOptions{.generator = &gen}));
    ln2_ = this->register_module("ln2", std::make_shared<LayerNorm<T>>(Shape{d_model}));
    mlp_ = this->register_module(
        "mlp", std::make_shared<Sequential<T>>(
                   std::make_shared<TorchLinear<T>>(d_model, hidden, TorchLinearOptions{.generator = &gen}),
                   std::make_shared<GELU<T>>(GeluApproximate::none),
                   std::make_shared<TorchLinear<T>>(hidden, d_model, TorchLinearOptions{.generator = &gen})));
    if (options.dropout > 0.0)
        dropout_ = this->register_module("dropout", std::make_shared<Dropout<T>>(options.dropout, gen()));
}

template <class T>
Variable<T> TransformerBlock<T>::forward(const Variable<T>& x, bool causal) {
    if (!x.defined() || x.ndim() != 3 || x.shape()[2] != d_model_)
        throw ShapeError(fmt::format("TransformerBlock(d_model={}): expects an input (N, L, {}), got shape {}", d_model_,
                                     d_model_, x.defined() ? shape_str(x.shape()) : std::string("(undefined)")));
    auto drop = [&](const Variable<T>& y) { return dropout_ ? dropout_->forward(y) : y; };
    const Variable<T> a = ln1_->forward(x);
    const Variable<T> h = x + drop(attn_->forward(a, a, a, {}, causal));
    return h + drop(mlp_->forward(ln2_->forward(h)));
}

template <class T>
std::string TransformerBlock<T>::repr() const {
    return fmt::format("TransformerBlock(d_model={}, num_heads={})", d_model_, attn_->num_heads());
}

#define XG_NN_ATTENTION_INSTANTIATE(T)    \
    template class TorchLinear<T>;        \
    template class MultiheadAttention<T>; \
    template class TransformerBlock<T>;
XG_NN_ATTENTION_INSTANTIATE(float)
XG_NN_ATTENTION_INSTANTIATE(double)

}  // namespace xg::nn
