// scaled_dot_product_attention: softmax(q·kᵀ / sqrt(E) + mask [+ causal]) · v as one op, and
// heads_attention, the same over heads packed in the last axis. The forward pass is one GEMM for
// the scores and one for the output per batch matrix (strided: a head's columns are read in
// place), with the softmax in plain loops between them (stable: each row's maximum is subtracted
// before exp). The backward pass is the closed formula: on arrays with the saved probabilities
// (strided GEMMs per batch matrix) when unrecorded, and written with ops (matmul, sum_to...) on
// probabilities recomputed by a differentiable op (attention_probs) when the backward pass is
// recorded (create_graph), so the gradients are differentiable again.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "ops/gemm.hpp"
#include "ops/instantiate.hpp"
#include "ops/ops.hpp"
#include "ops/vector_math.hpp"

namespace xg {
namespace {

constexpr std::string_view op_name = "scaled_dot_product_attention";

// The shapes of one call: batch shape B (q's, k's and v's leading axes broadcast), the matrix
// sizes, and for each of the nb matrices of B the offsets of its q, k, v and mask blocks (0
// strides along broadcast axes). The mask is read through its own strides (ml, ms) along L and S,
// 0 where it has size 1 there.
// Each matrix's rows are ld elements apart (ldq, ldk, ldv, ldo for q, k, v and the output):
// E, E, Ev, Ev for packed (..., L, E) operands; for heads_attention, one head's E columns of an
// (N, L, H E) array, so H E. oo holds the output's offsets. q_shared (k_, v_) says that batch
// matrices share a block of q (broadcast axes), so its gradient adds them up.
struct Plan {
    Shape batch;
    std::size_t nb = 1, L = 0, S = 0, E = 0, Ev = 0;
    std::vector<std::size_t> qo, ko, vo, mo, oo;
    std::size_t ldq = 0, ldk = 0, ldv = 0, ldo = 0;
    std::size_t ml = 0, ms = 0;
    bool has_mask = false, causal = false, q_shared = false, k_shared = false, v_shared = false;
    double scale = 1.0;
};

// What a causal plan's GEMMs can skip: rows [0, h) of the scores reach only the columns [0, c0)
// (row i's last unmasked column is min(S, i + 1) - 1 < h), rows [h, L) the columns [0, c1), and
// columns from c1 = min(S, L) on are masked in every row. So each product runs on two row blocks
// (a quarter fewer multiply-adds for L = S), and a key's gradient from c0 on only sums the
// queries from h on. Without causal: one block (h = 0, c0 = c1 = S).
struct CausalBlocks {
    std::size_t h, c0, c1;
};
CausalBlocks causal_blocks(const Plan& p) {
    if (!p.causal) return {0, p.S, p.S};
    const std::size_t h = p.L / 2;
    return {h, std::min(p.S, h), std::min(p.S, p.L)};
}

// The last column + 1 of row i of the scores that the causal mask leaves: min(S, i + 1), or S.
std::size_t row_stop(const Plan& p, std::size_t i) { return p.causal ? std::min(p.S, i + 1) : p.S; }

// Rows [from, to) of an (rows, cols) matrix at leading dimension ld set to zero (a gradient that
// the causal mask leaves empty), unless it is `shared` (added to: nothing to add).
template <class T>
void zero_rows(T* m, std::size_t from, std::size_t to, std::size_t cols, std::size_t ld, bool shared) {
    if (shared) return;
    for (std::size_t r = from; r < to; ++r) std::fill_n(m + r * ld, cols, T(0));
}

// The shape of the scores and probabilities: (batch..., L, S).
Shape scores_shape(const Plan& p) {
    Shape s = p.batch;
    s.push_back(p.L);
    s.push_back(p.S);
    return s;
}

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

std::size_t size_of(const Shape& s) {
    std::size_t n = 1;
    for (std::size_t d : s) n *= d;
    return n;
}

// The mask must broadcast to (batch..., L, S) without enlarging it; it is read through its own
// strides.
template <class Shapes>
void plan_mask(Plan& p, const Shape& m, std::string_view op, const Shapes& shapes) {
    const Shape full_shape = scores_shape(p);
    bool ok = m.size() <= full_shape.size();
    for (std::size_t i = 0; ok && i < m.size(); ++i) {
        const std::size_t want = full_shape[full_shape.size() - m.size() + i];
        ok = m[i] == want || m[i] == 1;
    }
    if (!ok)
        throw ShapeError(fmt::format("{}: the mask must broadcast to (..., L, S) = {}; got {}", op,
                                     shape_str(full_shape), shapes()));
    const std::size_t ms_ = m.size() >= 1 ? m[m.size() - 1] : 1;
    const std::size_t ml_ = m.size() >= 2 ? m[m.size() - 2] : 1;
    p.ms = ms_ == 1 ? 0 : 1;
    p.ml = ml_ == 1 ? 0 : ms_;
    p.mo = batch_offsets(leading(m, 2), p.batch, ml_ * ms_);
    p.has_mask = true;
}

// BLAS takes its sizes and leading dimensions as int: a plan with a larger one (a matrix of more
// than 2^31 - 1 rows or columns, or heads packed wider) is refused rather than truncated.
template <class Shapes>
void check_blas_sizes(const Plan& p, std::string_view op, const Shapes& shapes) {
    for (std::size_t d : {p.L, p.S, p.E, p.Ev, p.ldq, p.ldk, p.ldv, p.ldo})
        if (d > gemm_max_dim)
            throw ResourceError(fmt::format("{}: a size of {} exceeds BLAS's {} rows or columns; got {}", op, d,
                                            gemm_max_dim, shapes()));
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
    p.oo = batch_offsets(p.batch, p.batch, p.L * p.Ev);
    p.ldq = p.ldk = p.E;
    p.ldv = p.ldo = p.Ev;
    p.q_shared = size_of(leading(q, 2)) != p.nb;
    p.k_shared = size_of(leading(k, 2)) != p.nb;
    p.v_shared = size_of(leading(v, 2)) != p.nb;
    if (mask) plan_mask(p, *mask, op_name, shapes);
    check_blas_sizes(p, op_name, shapes);
    p.causal = causal;
    p.scale = 1.0 / std::sqrt(static_cast<double>(p.E));
    return p;
}

// qkv_attention's plan: qkv (N, L, 3 H E), q, k and v its thirds, each split into H heads of E
// columns; the output (N, L, H E).
Plan make_qkv_plan(const Shape& x, std::size_t H, const Shape* mask, bool causal) {
    constexpr std::string_view name = "qkv_attention";
    auto shapes = [&] {
        std::string s = fmt::format("num_heads {}, qkv {}", H, shape_str(x));
        if (mask) s += fmt::format(", mask {}", shape_str(*mask));
        return s;
    };
    if (x.size() != 3)
        throw ShapeError(fmt::format("{}: qkv must be 3-D (N, L, 3 H E); got {}", name, shapes()));
    if (H == 0) throw ValueError(fmt::format("{}: num_heads must be positive; got {}", name, shapes()));
    if (x[2] == 0 || x[2] % (3 * H) != 0)
        throw ShapeError(fmt::format("{}: the width of qkv must be a positive multiple of 3 num_heads; got {}", name,
                                     shapes()));
    Plan p;
    const std::size_t N = x[0], C = x[2], E = C / (3 * H);
    p.L = p.S = x[1];
    p.E = p.Ev = E;
    p.batch = {N, H};
    p.nb = N * H;
    p.ldq = p.ldk = p.ldv = C;
    p.ldo = H * E;
    for (auto* o : {&p.qo, &p.ko, &p.vo, &p.oo}) o->resize(p.nb);
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t h = 0; h < H; ++h) {
            const std::size_t b = n * H + h;
            p.qo[b] = n * p.L * C + h * E;
            p.ko[b] = p.qo[b] + H * E;
            p.vo[b] = p.qo[b] + 2 * H * E;
            p.oo[b] = n * p.L * p.ldo + h * E;
        }
    if (mask) plan_mask(p, *mask, name, shapes);
    check_blas_sizes(p, name, shapes);
    p.causal = causal;
    p.scale = 1.0 / std::sqrt(static_cast<double>(p.E));
    return p;
}

// heads_attention's plan: q (N, L, H E), k (N, S, H E), v (N, S, H Ev); batch (N, H), head h's
// matrices the columns [h E, (h + 1) E) of each sample's rows.
Plan make_heads_plan(const Shape& q, const Shape& k, const Shape& v, std::size_t H, const Shape* mask, bool causal) {
    constexpr std::string_view name = "heads_attention";
    auto shapes = [&] {
        std::string s = fmt::format("num_heads {}, q {}, k {}, v {}", H, shape_str(q), shape_str(k), shape_str(v));
        if (mask) s += fmt::format(", mask {}", shape_str(*mask));
        return s;
    };
    if (q.size() != 3 || k.size() != 3 || v.size() != 3)
        throw ShapeError(fmt::format("{}: q, k and v must be 3-D (N, L, H E), (N, S, H E), (N, S, H Ev); got {}",
                                     name, shapes()));
    if (H == 0) throw ValueError(fmt::format("{}: num_heads must be positive; got {}", name, shapes()));
    if (k[0] != q[0] || v[0] != q[0])
        throw ShapeError(fmt::format("{}: q, k and v must have the same batch size N; got {}", name, shapes()));
    if (k[2] != q[2]) throw ShapeError(fmt::format("{}: q and k must have the same width H E; got {}", name, shapes()));
    if (v[1] != k[1])
        throw ShapeError(fmt::format("{}: k and v must have the same length S; got {}", name, shapes()));
    if (q[2] % H != 0 || v[2] % H != 0 || q[2] == 0)
        throw ShapeError(fmt::format("{}: num_heads must divide the (positive) widths of q and v; got {}", name,
                                     shapes()));
    Plan p;
    const std::size_t N = q[0];
    p.L = q[1];
    p.S = k[1];
    p.E = q[2] / H;
    p.Ev = v[2] / H;
    p.batch = {N, H};
    p.nb = N * H;
    p.ldq = p.ldk = q[2];
    p.ldv = p.ldo = v[2];
    for (auto* o : {&p.qo, &p.ko, &p.vo, &p.oo}) o->resize(p.nb);
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t h = 0; h < H; ++h) {
            const std::size_t b = n * H + h;
            p.qo[b] = n * p.L * p.ldq + h * p.E;
            p.ko[b] = n * p.S * p.ldk + h * p.E;
            p.vo[b] = n * p.S * p.ldv + h * p.Ev;
            p.oo[b] = n * p.L * p.ldo + h * p.Ev;
        }
    if (mask) plan_mask(p, *mask, name, shapes);
    check_blas_sizes(p, name, shapes);
    p.causal = causal;
    p.scale = 1.0 / std::sqrt(static_cast<double>(p.E));
    return p;
}

// The probabilities (batch..., L, S): for each row, the scores q_i·k_j * scale + mask_ij, minus
// -inf above the diagonal (j > i) when causal, through a softmax with the row maximum subtracted.
// A row whose scores are all -inf (fully masked, or S = 0) is all zeros.
template <class T>
Array<T> attention_probs_forward(const Plan& p, const Array<T>& q, const Array<T>& k, const T* mask) {
    Array<T> P = Array<T>::from_shape(scores_shape(p));
    const T scale = static_cast<T>(p.scale);
    const CausalBlocks cb = causal_blocks(p);
    for (std::size_t b = 0; b < p.nb; ++b) {
        T* pb = P.data() + b * p.L * p.S;
        if (p.L == 0 || p.S == 0) continue;
        const T* qb = q.data() + p.qo[b];
        const T* kb = k.data() + p.ko[b];
        if (cb.h) gemm_strided(false, true, cb.h, cb.c0, p.E, T(1), qb, p.ldq, kb, p.ldk, T(0), pb, p.S);
        gemm_strided(false, true, p.L - cb.h, cb.c1, p.E, T(1), qb + cb.h * p.ldq, p.ldq, kb, p.ldk, T(0),
                     pb + cb.h * p.S, p.S);
        const T* mb = mask ? mask + p.mo[b] : nullptr;
        if (mb)  // scaled and masked here, so the softmax scales by 1 (exactly)
            for (std::size_t i = 0; i < p.L; ++i)
                for (std::size_t j = 0, stop = row_stop(p, i); j < stop; ++j)
                    pb[i * p.S + j] = pb[i * p.S + j] * scale + mb[i * p.ml + j * p.ms];
        vmath::softmax_rows(pb, p.L, p.S, mb ? T(1) : scale, p.causal);  // entries past a row's stop: not computed
    }
    return P;
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
    const Variable<T> gS = P * (gP - sum(gP * P, {-1}, true));
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

// softmax(scores) · v for every batch matrix of the plan: fills probs and returns the output
// (batch..., L, Ev), or (N, L, H Ev) for heads_attention (out_shape).
template <class T>
Array<T> attention_forward(const Plan& p, const ArrayRefs<T>& xs, const T* mask, const Shape& out_shape,
                           Array<T>& probs) {
    probs = attention_probs_forward(p, xs[0], xs[1], mask);
    Array<T> out = Array<T>::from_shape(out_shape);
    if (out.size() == 0) return out;
    if (p.S == 0) {  // no keys: every row is fully masked
        std::fill_n(out.data(), out.size(), T(0));
        return out;
    }
    const Array<T>& v = xs[2];
    const CausalBlocks cb = causal_blocks(p);
    for (std::size_t b = 0; b < p.nb; ++b) {
        const T* pb = probs.data() + b * p.L * p.S;
        const T* vb = v.data() + p.vo[b];
        T* ob = out.data() + p.oo[b];
        if (cb.h) gemm_strided(false, false, cb.h, p.Ev, cb.c0, T(1), pb, p.S, vb, p.ldv, T(0), ob, p.ldo);
        gemm_strided(false, false, p.L - cb.h, p.Ev, cb.c1, T(1), pb + cb.h * p.S, p.S, vb, p.ldv, T(0),
                     ob + cb.h * p.ldo, p.ldo);
    }
    return out;
}

// The gradients as a formula of ops, from P (saved, or recomputed by attention_probs when the
// backward pass is recorded): gv = Pᵀ·gy, gP = gy·vᵀ, then probs_backward. Inputs {q, k, v} or
// {q, k, v, mask}, all (batch..., rows, columns); undefined where need[i] is false.
template <class T>
std::vector<Variable<T>> formula_backward(const Variable<T>& P, const Variable<T>& gy, const Variable<T>& q,
                                          const Variable<T>& k, const Variable<T>& v, const Variable<T>* mask,
                                          const std::vector<bool>& need, double scale) {
    std::vector<Variable<T>> grads(mask ? 4 : 3);
    if (need[2]) grads[2] = sum_to(matmul(P, gy, true, false), v.shape());
    const bool need_mask = mask && need[3];
    if (need[0] || need[1] || need_mask) {
        const Variable<T> gP = matmul(gy, v, false, true);
        auto g = probs_backward(P, gP, q, k, mask, need[0], need[1], need_mask, scale);
        grads[0] = std::move(g[0]);
        grads[1] = std::move(g[1]);
        if (mask) grads[3] = std::move(g[2]);
    }
    return grads;
}

// The unrecorded backward on arrays, one batch matrix at a time with strided GEMMs (no copies of
// heads, no gradient arrays of broadcast shape): per matrix gv = Pᵀ·gy, gP = gy·vᵀ,
// gS = P * (gP - rowsum(gP * P)), gq = scale gS·k, gk = scale gSᵀ·q, each written at its
// operand's offset in gq, gk, gv (null: not wanted; where the plan's matrices share a block they
// are added, so the caller zero-fills those, and every gradient when the plan is empty), and
// every matrix's gS into gS_all when it is not null (for the mask's gradient).
template <class T>
void strided_backward(const Plan& p, const T* P, const T* gy, const T* q, const T* k, const T* v, T* gq, T* gk,
                      T* gv, T* gS_all) {
    if (p.L == 0 || p.S == 0 || p.Ev == 0) return;
    const bool need_gS = gq || gk || gS_all;
    const T scale = static_cast<T>(p.scale);
    const CausalBlocks cb = causal_blocks(p);
    const std::size_t h = cb.h, c0 = cb.c0, c1 = cb.c1, L = p.L, S = p.S;
    std::vector<T> gP(need_gS ? L * S : 0), gS_one(need_gS && !gS_all ? L * S : 0);
    for (std::size_t b = 0; b < p.nb; ++b) {
        const T* Pb = P + b * L * S;
        const T* gyb = gy + p.oo[b];
        if (gv) {  // keys [0, c0) from every query, [c0, c1) from the queries from h on
            T* gvb = gv + p.vo[b];
            const T beta(p.v_shared ? 1 : 0);
            if (c0) gemm_strided(true, false, c0, p.Ev, L, T(1), Pb, S, gyb, p.ldo, beta, gvb, p.ldv);
            if (c1 > c0)
                gemm_strided(true, false, c1 - c0, p.Ev, L - h, T(1), Pb + h * S + c0, S, gyb + h * p.ldo, p.ldo,
                             beta, gvb + c0 * p.ldv, p.ldv);
            zero_rows(gvb, c1, S, p.Ev, p.ldv, p.v_shared);
        }
        if (!need_gS) continue;
        const T* vb = v + p.vo[b];
        if (h) gemm_strided(false, true, h, c0, p.Ev, T(1), gyb, p.ldo, vb, p.ldv, T(0), gP.data(), S);
        gemm_strided(false, true, L - h, c1, p.Ev, T(1), gyb + h * p.ldo, p.ldo, vb, p.ldv, T(0), gP.data() + h * S,
                     S);
        T* gS = gS_all ? gS_all + b * L * S : gS_one.data();
        if (!p.causal) {
            vmath::softmax_rows_backward(Pb, gP.data(), gS, L, S);
        } else {  // up to each row's stop (gP is not computed beyond), zeros after
            for (std::size_t i = 0; i < L; ++i) {
                const std::size_t stop = row_stop(p, i);
                vmath::softmax_rows_backward(Pb + i * S, gP.data() + i * S, gS + i * S, 1, stop);
                std::fill(gS + i * S + stop, gS + (i + 1) * S, T(0));
            }
        }
        if (gq) {
            T* gqb = gq + p.qo[b];
            const T beta(p.q_shared ? 1 : 0);
            const T* kb = k + p.ko[b];
            if (h) gemm_strided(false, false, h, p.E, c0, scale, gS, S, kb, p.ldk, beta, gqb, p.ldq);
            gemm_strided(false, false, L - h, p.E, c1, scale, gS + h * S, S, kb, p.ldk, beta, gqb + h * p.ldq, p.ldq);
        }
        if (gk) {
            T* gkb = gk + p.ko[b];
            const T beta(p.k_shared ? 1 : 0);
            const T* qb = q + p.qo[b];
            if (c0) gemm_strided(true, false, c0, p.E, L, scale, gS, S, qb, p.ldq, beta, gkb, p.ldk);
            if (c1 > c0)
                gemm_strided(true, false, c1 - c0, p.E, L - h, scale, gS + h * S + c0, S, qb + h * p.ldq, p.ldq, beta,
                             gkb + c0 * p.ldk, p.ldk);
            zero_rows(gkb, c1, S, p.E, p.ldk, p.k_shared);
        }
    }
}

// An array of `shape` for a gradient: zeros when `zero` (it will be added to, or not written
// whole), else left for the GEMMs to fill.
template <class T>
Array<T> gradient_array(const Shape& shape, bool zero) {
    return zero ? full<T>(shape, T(0)) : Array<T>::from_shape(shape);
}

// The mask's gradient array for strided_backward when `needed`: (batch..., L, S), zeros.
template <class T>
Array<T> scores_gradient_array(const Plan& p, bool needed) {
    return needed ? full<T>(scores_shape(p), T(0)) : Array<T>();
}

template <class T>
std::vector<bool> needed_grads(const Function<T>& f) {
    std::vector<bool> need(f.inputs().size());
    for (std::size_t i = 0; i < need.size(); ++i) need[i] = f.needs_input_grad(i);
    return need;
}

// What the attention ops share: the mask as input mask_at (when there is one), the plan and the
// probabilities of the forward pass, and the pieces of their backward passes.
template <class T>
struct AttentionOp : Function<T> {
    AttentionOp(bool causal, std::size_t mask_at) : causal(causal), mask_at(mask_at) {}
    const Variable<T>* mask() const { return this->inputs().size() > mask_at ? &this->input(mask_at) : nullptr; }
    bool need_mask_grad() const { return mask() && this->needs_input_grad(mask_at); }
    Array<T> run_forward(const ArrayRefs<T>& qkv, const ArrayRefs<T>& xs, const Shape& out_shape) {
        return attention_forward(plan, qkv, xs.size() > mask_at ? xs[mask_at].data() : nullptr, out_shape, probs);
    }
    // Whether this backward pass can run on arrays: it records nothing.
    bool on_arrays(const Variable<T>& gy) const {
        return !recording_backward() && gy.shape() == this->output().shape();
    }
    // The mask's gradient from every matrix's gS (strided_backward's gS_all).
    Variable<T> mask_gradient(Array<T>&& gS_all) const { return sum_to(Variable<T>(std::move(gS_all)), mask()->shape()); }
    // attention_probs of (q, k[, mask]), recorded: P as a differentiable function of them.
    Variable<T> recorded_probs(const Variable<T>& q, const Variable<T>& k) const {
        std::vector<Variable<T>> in{q, k};
        if (mask()) in.push_back(*mask());
        return apply<AttentionProbs<T>>(std::move(in), causal);
    }
    void release_saved() override { probs = {}; }
    bool causal;
    std::size_t mask_at;
    Plan plan;
    Array<T> probs;  // kept by forward for an unrecorded backward
};

// The two ops on separate q, k and v: inputs {q, k, v} or {q, k, v, mask}.
template <class T>
struct SeparateAttentionOp : AttentionOp<T> {
    explicit SeparateAttentionOp(bool causal) : AttentionOp<T>(causal, 3) {}
    Array<T> run_forward(const ArrayRefs<T>& xs, const Shape& out_shape) {
        return AttentionOp<T>::run_forward(xs, xs, out_shape);
    }
    std::vector<Variable<T>> array_backward(const Variable<T>& gy) {
        const Plan& p = this->plan;
        const bool empty = p.L == 0 || p.S == 0 || p.Ev == 0;
        const bool shared[3] = {p.q_shared, p.k_shared, p.v_shared};
        std::vector<Array<T>> g(3);
        for (std::size_t i = 0; i < 3; ++i)
            if (this->needs_input_grad(i)) g[i] = gradient_array<T>(this->inputs()[i].shape(), shared[i] || empty);
        Array<T> gS_all = scores_gradient_array<T>(p, this->need_mask_grad());
        auto out = [&](std::size_t i) { return this->needs_input_grad(i) ? g[i].data() : nullptr; };
        strided_backward(p, this->probs.data(), gy.data().data(), this->input(0).data().data(),
                         this->input(1).data().data(), this->input(2).data().data(), out(0), out(1), out(2),
                         this->need_mask_grad() ? gS_all.data() : nullptr);
        std::vector<Variable<T>> grads(this->inputs().size());
        for (std::size_t i = 0; i < 3; ++i)
            if (this->needs_input_grad(i)) grads[i] = Variable<T>(std::move(g[i]));
        if (this->need_mask_grad()) grads[3] = this->mask_gradient(std::move(gS_all));
        return grads;
    }
};

// (N, rows, H D) -> (N, H, rows, D) and back, as ops: the recorded backward of the packed-heads
// ops is the composition's.
template <class T>
Variable<T> split_heads(const Variable<T>& x, std::size_t heads) {
    const long N = static_cast<long>(x.shape()[0]), H = static_cast<long>(heads);
    return permute(reshape(x, {N, static_cast<long>(x.shape()[1]), H, static_cast<long>(x.shape()[2]) / H}),
                   {0, 2, 1, 3});
}
template <class T>
Variable<T> merge_heads(const Variable<T>& x) {
    if (!x.defined()) return x;
    const long N = static_cast<long>(x.shape()[0]), H = static_cast<long>(x.shape()[1]);
    return reshape(permute(x, {0, 2, 1, 3}), {N, static_cast<long>(x.shape()[2]), H * static_cast<long>(x.shape()[3])});
}

template <class T>
struct ScaledDotProductAttention final : SeparateAttentionOp<T> {
    using SeparateAttentionOp<T>::SeparateAttentionOp;
    std::string_view name() const override { return op_name; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Shape ms = xs.size() == 4 ? xs[3].shape() : Shape{};
        this->plan = make_plan(xs[0].shape(), xs[1].shape(), xs[2].shape(), xs.size() == 4 ? &ms : nullptr,
                               this->causal);
        Shape os = this->plan.batch;
        os.push_back(this->plan.L);
        os.push_back(this->plan.Ev);
        return this->run_forward(xs, os);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (this->on_arrays(gy)) return this->array_backward(gy);
        const Variable<T>&q = this->input(0), &k = this->input(1), &v = this->input(2);
        return formula_backward(this->recorded_probs(q, k), gy, q, k, v, this->mask(), needed_grads(*this),
                                this->plan.scale);
    }
};

// q (N, L, H E), k (N, S, H E), v (N, S, H Ev).
template <class T>
struct HeadsAttention final : SeparateAttentionOp<T> {
    HeadsAttention(std::size_t heads, bool causal) : SeparateAttentionOp<T>(causal), heads(heads) {}
    std::string_view name() const override { return "heads_attention"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Shape ms = xs.size() == 4 ? xs[3].shape() : Shape{};
        this->plan = make_heads_plan(xs[0].shape(), xs[1].shape(), xs[2].shape(), heads,
                                     xs.size() == 4 ? &ms : nullptr, this->causal);
        return this->run_forward(xs, {xs[0].shape()[0], this->plan.L, xs[2].shape()[2]});
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (this->on_arrays(gy)) return this->array_backward(gy);
        // Recorded: the heads split and merged by ops around scaled_dot_product_attention's formula.
        const Variable<T> qh = split_heads(this->input(0), heads), kh = split_heads(this->input(1), heads),
                          vh = split_heads(this->input(2), heads);
        auto grads = formula_backward(this->recorded_probs(qh, kh), split_heads(gy, heads), qh, kh, vh, this->mask(),
                                      needed_grads(*this), this->plan.scale);
        for (std::size_t i = 0; i < 3; ++i) grads[i] = merge_heads(grads[i]);
        return grads;
    }
    std::size_t heads;
};

// qkv (N, L, 3 H E): q, k and v side by side in the last axis, as one projection with all of
// in_proj_weight leaves them; inputs {qkv} or {qkv, mask}. Its gradient is one array of qkv's
// shape, each third written in place.
template <class T>
struct QkvAttention final : AttentionOp<T> {
    QkvAttention(std::size_t heads, bool causal) : AttentionOp<T>(causal, 1), heads(heads) {}
    std::string_view name() const override { return "qkv_attention"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Shape ms = xs.size() == 2 ? xs[1].shape() : Shape{};
        this->plan = make_qkv_plan(xs[0].shape(), heads, xs.size() == 2 ? &ms : nullptr, this->causal);
        ArrayRefs<T> qkv;
        for (int i = 0; i < 3; ++i) qkv.push_back(&xs[0]);
        return this->run_forward(qkv, xs, {xs[0].shape()[0], this->plan.L, xs[0].shape()[2] / 3});
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const bool need_x = this->needs_input_grad(0), need_mask = this->need_mask_grad();
        std::vector<Variable<T>> grads(this->inputs().size());
        const Variable<T>& x = this->input(0);
        if (this->on_arrays(gy)) {
            const Plan& p = this->plan;
            Array<T> g = need_x ? gradient_array<T>(x.shape(), p.L == 0 || p.S == 0 || p.Ev == 0) : Array<T>();
            Array<T> gS_all = scores_gradient_array<T>(p, need_mask);
            T* gx = need_x ? g.data() : nullptr;
            const T* xd = x.data().data();
            strided_backward(p, this->probs.data(), gy.data().data(), xd, xd, xd, gx, gx, gx,
                             need_mask ? gS_all.data() : nullptr);
            if (need_x) grads[0] = Variable<T>(std::move(g));
            if (need_mask) grads[1] = this->mask_gradient(std::move(gS_all));
            return grads;
        }
        // Recorded: the thirds sliced, the heads split, the formula, merged and joined, as ops.
        const std::size_t w = x.shape()[2] / 3;
        std::vector<Variable<T>> h(3);
        for (std::size_t i = 0; i < 3; ++i) h[i] = split_heads(slice(x, 2, i * w, (i + 1) * w), heads);
        std::vector<bool> need{need_x, need_x, need_x};
        if (this->mask()) need.push_back(need_mask);
        auto g = formula_backward(this->recorded_probs(h[0], h[1]), split_heads(gy, heads), h[0], h[1], h[2],
                                  this->mask(), need, this->plan.scale);
        if (need_x) grads[0] = concatenate<T>({merge_heads(g[0]), merge_heads(g[1]), merge_heads(g[2])}, 2);
        if (need_mask) grads[1] = std::move(g[3]);
        return grads;
    }
    std::size_t heads;
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

template <class T>
Variable<T> heads_attention(const Variable<T>& q, const Variable<T>& k, const Variable<T>& v, std::size_t num_heads,
                            const Variable<T>& mask, bool causal) {
    if (!q.defined() || !k.defined() || !v.defined())
        throw ValueError("heads_attention: q, k and v must be defined (only the mask may be undefined)");
    const Shape ms = mask.defined() ? mask.shape() : Shape{};
    make_heads_plan(q.shape(), k.shape(), v.shape(), num_heads, mask.defined() ? &ms : nullptr, causal);
    if (mask.defined()) return apply<HeadsAttention<T>>({q, k, v, mask}, num_heads, causal);
    return apply<HeadsAttention<T>>({q, k, v}, num_heads, causal);
}

template <class T>
Variable<T> qkv_attention(const Variable<T>& qkv, std::size_t num_heads, const Variable<T>& mask, bool causal) {
    if (!qkv.defined()) throw ValueError("qkv_attention: qkv must be defined (only the mask may be undefined)");
    const Shape ms = mask.defined() ? mask.shape() : Shape{};
    make_qkv_plan(qkv.shape(), num_heads, mask.defined() ? &ms : nullptr, causal);
    if (mask.defined()) return apply<QkvAttention<T>>({qkv, mask}, num_heads, causal);
    return apply<QkvAttention<T>>({qkv}, num_heads, causal);
}

XG_INSTANTIATE_OP(scaled_dot_product_attention)
XG_INSTANTIATE_OP(heads_attention)
XG_INSTANTIATE_OP(qkv_attention)

}  // namespace xg
