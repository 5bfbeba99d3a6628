// scaled_dot_product_attention: softmax(q·kᵀ / sqrt(E) + mask [+ causal]) · v as one op. The
// forward pass is one GEMM for the scores and one for the output per batch matrix, with the
// softmax in plain loops between them (stable: each row's maximum is subtracted before exp).
// The backward pass is the closed formula written with ops (matmul, sum_to...), on the saved
// probabilities, or on probabilities recomputed by a differentiable op (attention_probs) when
// the backward pass is recorded (create_graph), so the gradients are differentiable again.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "ops/gemm.hpp"
#include "ops/instantiate.hpp"
#include "ops/ops.hpp"

namespace xg {
namespace {

constexpr std::string_view op_name = "scaled_dot_product_attention";

// The shapes of one call: batch shape B (q's, k's and v's leading axes broadcast), the matrix
// sizes, and for each of the nb matrices of B the offsets of its q, k, v and mask blocks (0
// strides along broadcast axes). The mask is read through its own strides (ml, ms) along L and S,
// 0 where it has size 1 there.
struct Plan {
    Shape batch;
    std::size_t nb = 1, L = 0, S = 0, E = 0, Ev = 0;
    std::vector<std::size_t> qo, ko, vo, mo;
    std::size_t ml = 0, ms = 0;
    bool has_mask = false, causal = false;
    double scale = 1.0;
};

// Offsets of the matrices of an operand whose leading axes `lead` broadcast to `batch` (lead is
// aligned to the right), each matrix `block` elements apart.
std::vector<std::size_t> batch_offsets(const Shape& lead, const Shape& batch, std::size_t block) {
    const std::size_t nd = batch.size();
    std::vector<std::size_t> stride(nd, 0);
    std::size_t s = block;
    for (std::size_t i = lead.size(); i-- > 0;) {
        const std::size_t a = nd - lead.size() + i;
        stride[a] = lead[i] == 1 ? 0 : s;
        s *= lead[i];
    }
    std::size_t nb = 1;
    for (std::size_t d : batch) nb *= d;
    std::vector<std::size_t> out(nb, 0);
    std::vector<std::size_t> idx(nd, 0);
    std::size_t off = 0;
    for (std::size_t b = 0; b < nb; ++b) {
        out[b] = off;
        for (std::size_t a = nd; a-- > 0;) {  // odometer over the batch axes
            if (++idx[a] < batch[a]) {
                off += stride[a];
                break;
            }
            off -= stride[a] * (batch[a] - 1);
            idx[a] = 0;
        }
    }
    return out;
}

Shape leading(const Shape& s, std::size_t keep_last) {
    return Shape(s.begin(), s.end() - static_cast<std::ptrdiff_t>(std::min(keep_last, s.size())));
}

Plan make_plan(const Shape& q, const Shape& k, const Shape& v, const Shape* mask, bool causal) {
    auto shapes = [&] {
        std::string s = fmt::format("q {}, k {}, v {}", shape_str(q), shape_str(k), shape_str(v));
        if (mask) s += fmt::format(", mask {}", shape_str(*mask));
        return s;
    };
    if (q.size() < 2 || k.size() < 2 || v.size() < 2)
        throw ShapeError(fmt::format("{}: q, k and v need at least 2 dimensions (..., L, E), (..., S, E), (..., S, Ev); "
                                     "got {}", op_name, shapes()));
    Plan p;
    p.L = q[q.size() - 2];
    p.E = q.back();
    p.S = k[k.size() - 2];
    p.Ev = v.back();
    if (k.back() != p.E)
        throw ShapeError(fmt::format("{}: q and k must have the same last dimension E; got {}", op_name, shapes()));
    if (v[v.size() - 2] != p.S)
        throw ShapeError(fmt::format("{}: k and v must have the same length S (second to last dimension); got {}",
                                     op_name, shapes()));
    if (p.E == 0)
        throw ShapeError(fmt::format("{}: E = 0 (the scale 1/sqrt(E) is infinite); got {}", op_name, shapes()));
    try {
        p.batch = broadcast_shapes(broadcast_shapes(leading(q, 2), leading(k, 2), op_name), leading(v, 2), op_name);
    } catch (const ShapeError&) {
        throw ShapeError(fmt::format("{}: the batch dimensions of q, k and v do not broadcast; got {}", op_name, shapes()));
    }
    for (std::size_t d : p.batch) p.nb *= d;
    p.qo = batch_offsets(leading(q, 2), p.batch, p.L * p.E);
    p.ko = batch_offsets(leading(k, 2), p.batch, p.S * p.E);
    p.vo = batch_offsets(leading(v, 2), p.batch, p.S * p.Ev);
    if (mask) {
        // The mask must broadcast to (batch..., L, S) without enlarging it.
        Shape full_shape = p.batch;
        full_shape.push_back(p.L);
        full_shape.push_back(p.S);
        const Shape& m = *mask;
        bool ok = m.size() <= full_shape.size();
        for (std::size_t i = 0; ok && i < m.size(); ++i) {
            const std::size_t want = full_shape[full_shape.size() - m.size() + i];
            ok = m[i] == want || m[i] == 1;
        }
        if (!ok)
            throw ShapeError(fmt::format("{}: the mask must broadcast to (..., L, S) = {}; got {}", op_name,
                                         shape_str(full_shape), shapes()));
        const std::size_t ms_ = m.size() >= 1 ? m[m.size() - 1] : 1;
        const std::size_t ml_ = m.size() >= 2 ? m[m.size() - 2] : 1;
        p.ms = ms_ == 1 ? 0 : 1;
        p.ml = ml_ == 1 ? 0 : ms_;
        p.mo = batch_offsets(leading(m, 2), p.batch, ml_ * ms_);
        p.has_mask = true;
    }
    p.causal = causal;
    p.scale = 1.0 / std::sqrt(static_cast<double>(p.E));
    return p;
}

// The probabilities (batch..., L, S): for each row, the scores q_i·k_j * scale + mask_ij, minus
// -inf above the diagonal (j > i) when causal, through a softmax with the row maximum subtracted.
// A row whose scores are all -inf (fully masked, or S = 0) is all zeros.
template <class T>
Array<T> attention_probs_forward(const Plan& p, const Array<T>& q, const Array<T>& k, const T* mask) {
    Shape ps = p.batch;
    ps.push_back(p.L);
    ps.push_back(p.S);
    Array<T> P = Array<T>::from_shape(ps);
    const T scale = static_cast<T>(p.scale);
    const T ninf = -std::numeric_limits<T>::infinity();
    for (std::size_t b = 0; b < p.nb; ++b) {
        T* pb = P.data() + b * p.L * p.S;
        if (p.L == 0 || p.S == 0) continue;
        gemm_raw(false, true, p.L, p.S, p.E, q.data() + p.qo[b], k.data() + p.ko[b], pb, T(0));
        const T* mb = mask ? mask + p.mo[b] : nullptr;
        for (std::size_t i = 0; i < p.L; ++i) {
            T* row = pb + i * p.S;
            const std::size_t stop = p.causal ? std::min(p.S, i + 1) : p.S;  // entries past `stop` are -inf
            T m = ninf;
            for (std::size_t j = 0; j < stop; ++j) {
                T s = row[j] * scale;
                if (mb) s += mb[i * p.ml + j * p.ms];
                row[j] = s;
                if (s > m) m = s;
            }
            if (m == ninf) {  // fully masked: zeros (a NaN score keeps m = -inf only if all are NaN or -inf)
                bool nan = false;
                for (std::size_t j = 0; j < stop; ++j) nan = nan || std::isnan(row[j]);
                std::fill(row, row + p.S, nan ? std::numeric_limits<T>::quiet_NaN() : T(0));
                continue;
            }
            T sum = 0;
            for (std::size_t j = 0; j < stop; ++j) {
                const T e = std::exp(row[j] - m);
                row[j] = e;
                sum += e;
            }
            const T inv = T(1) / sum;
            for (std::size_t j = 0; j < stop; ++j) row[j] *= inv;
            std::fill(row + stop, row + p.S, T(0));
        }
    }
    return P;
}

// P * (gP - rowsum(gP * P)) over the last axis, one pass per row: softmax's backward when it is
// not recorded (as ops it was four passes over (..., L, S) arrays, with an array each).
template <class T>
Array<T> softmax_rows_backward(const Array<T>& P, const Array<T>& gP) {
    Array<T> gS = Array<T>::from_shape(P.shape());
    const std::size_t S = P.dimension() == 0 ? 1 : P.shape().back();
    if (S == 0 || P.size() == 0) return gS;
    for (std::size_t r = 0; r < P.size() / S; ++r) {
        const T* p = P.data() + r * S;
        const T* g = gP.data() + r * S;
        T* out = gS.data() + r * S;
        T dot = 0;
        for (std::size_t j = 0; j < S; ++j) dot += g[j] * p[j];
        for (std::size_t j = 0; j < S; ++j) out[j] = p[j] * (g[j] - dot);
    }
    return gS;
}

// The gradients of q, k and mask from gP, the gradient of the probabilities P:
// gS = P * (gP - rowsum(gP * P)) (softmax's), gq = gS·k * scale, gk = gSᵀ·q * scale, gmask = gS,
// each summed down to its input's shape. Written with ops: differentiable when recorded.
template <class T>
std::vector<Variable<T>> probs_backward(const Variable<T>& P, const Variable<T>& gP, const Variable<T>& q,
                                        const Variable<T>& k, const Variable<T>* mask, bool need_q, bool need_k,
                                        bool need_mask, double scale) {
    std::vector<Variable<T>> grads(mask ? 3 : 2);
    if (!need_q && !need_k && !need_mask) return grads;
    const Variable<T> gS = recording_backward() || P.shape() != gP.shape()
                               ? P * (gP - sum(gP * P, {-1}, true))
                               : Variable<T>(softmax_rows_backward(P.data(), gP.data()));
    if (need_q) grads[0] = sum_to(matmul(gS, k, false, false) * static_cast<T>(scale), q.shape());
    if (need_k) grads[1] = sum_to(matmul(gS, q, true, false) * static_cast<T>(scale), k.shape());
    if (need_mask) grads[2] = sum_to(gS, mask->shape());
    return grads;
}

// The probabilities alone, as an op: the recorded backward of scaled_dot_product_attention
// recomputes them with it, so that they are differentiable again. Inputs {q, k} or {q, k, mask}.
template <class T>
struct AttentionProbs final : Function<T> {
    explicit AttentionProbs(bool causal) : causal(causal) {}
    std::string_view name() const override { return "attention_probs"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const bool has_mask = xs.size() == 3;
        const Shape ms = has_mask ? xs[2].shape() : Shape{};
        const Plan p = make_plan(xs[0].shape(), xs[1].shape(), xs[1].shape(), has_mask ? &ms : nullptr, causal);
        scale = p.scale;
        return attention_probs_forward(p, xs[0], xs[1], has_mask ? xs[2].data() : nullptr);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gP) override {
        const bool has_mask = this->inputs().size() == 3;
        return probs_backward(this->output(), gP, this->input(0), this->input(1), has_mask ? &this->input(2) : nullptr,
                              this->needs_input_grad(0), this->needs_input_grad(1),
                              has_mask && this->needs_input_grad(2), scale);
    }
    bool causal;
    double scale = 1.0;
};

// Inputs {q, k, v} or {q, k, v, mask}.
template <class T>
struct ScaledDotProductAttention final : Function<T> {
    explicit ScaledDotProductAttention(bool causal) : causal(causal) {}
    std::string_view name() const override { return op_name; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const bool has_mask = xs.size() == 4;
        const Shape ms = has_mask ? xs[3].shape() : Shape{};
        const Plan p = make_plan(xs[0].shape(), xs[1].shape(), xs[2].shape(), has_mask ? &ms : nullptr, causal);
        scale = p.scale;
        probs = attention_probs_forward(p, xs[0], xs[1], has_mask ? xs[3].data() : nullptr);
        Shape os = p.batch;
        os.push_back(p.L);
        os.push_back(p.Ev);
        Array<T> out = Array<T>::from_shape(os);
        if (p.L * p.Ev == 0) return out;
        if (p.S == 0) {  // no keys: every row is fully masked
            std::fill_n(out.data(), out.size(), T(0));
            return out;
        }
        const Array<T>& v = xs[2];
        for (std::size_t b = 0; b < p.nb; ++b)
            gemm_raw(false, false, p.L, p.Ev, p.S, probs.data() + b * p.L * p.S, v.data() + p.vo[b],
                     out.data() + b * p.L * p.Ev, T(0));
        return out;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const bool has_mask = this->inputs().size() == 4;
        const Variable<T>& q = this->input(0);
        const Variable<T>& k = this->input(1);
        const Variable<T>& v = this->input(2);
        const Variable<T>* mask = has_mask ? &this->input(3) : nullptr;
        // Recorded: the probabilities as a differentiable function of q, k and mask. Otherwise the
        // saved ones, a constant.
        Variable<T> P;
        if (recording_backward()) {
            std::vector<Variable<T>> in{q, k};
            if (mask) in.push_back(*mask);
            P = apply<AttentionProbs<T>>(std::move(in), causal);
        } else {
            P = Variable<T>(probs);
        }
        std::vector<Variable<T>> grads(this->inputs().size());
        if (this->needs_input_grad(2)) grads[2] = sum_to(matmul(P, gy, true, false), v.shape());
        const bool need_q = this->needs_input_grad(0), need_k = this->needs_input_grad(1);
        const bool need_mask = has_mask && this->needs_input_grad(3);
        if (need_q || need_k || need_mask) {
            const Variable<T> gP = matmul(gy, v, false, true);
            auto g = probs_backward(P, gP, q, k, mask, need_q, need_k, need_mask, scale);
            grads[0] = std::move(g[0]);
            grads[1] = std::move(g[1]);
            if (has_mask) grads[3] = std::move(g[2]);
        }
        return grads;
    }
    void release_saved() override { probs = {}; }
    bool causal;
    double scale = 1.0;
    Array<T> probs;  // kept by forward for an unrecorded backward
};

}  // namespace

template <class T>
Variable<T> scaled_dot_product_attention(const Variable<T>& q, const Variable<T>& k, const Variable<T>& v,
                                         const Variable<T>& mask, bool causal) {
    if (!q.defined() || !k.defined() || !v.defined())
        throw ValueError(fmt::format("{}: q, k and v must be defined (only the mask may be undefined)", op_name));
    // Shapes are checked before anything is recorded (forward checks again).
    const Shape ms = mask.defined() ? mask.shape() : Shape{};
    make_plan(q.shape(), k.shape(), v.shape(), mask.defined() ? &ms : nullptr, causal);
    if (mask.defined()) return apply<ScaledDotProductAttention<T>>({q, k, v, mask}, causal);
    return apply<ScaledDotProductAttention<T>>({q, k, v}, causal);
}

XG_INSTANTIATE_OP(scaled_dot_product_attention)

}  // namespace xg
