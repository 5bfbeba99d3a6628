#include "nn/recurrent.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "graph/error.hpp"
#include "nn/layers.hpp"

namespace xg::nn {
namespace detail {
namespace {

std::size_t gate_count(RecurrentKind kind) {
    switch (kind) {
        case RecurrentKind::rnn_tanh:
        case RecurrentKind::rnn_relu: return 1;
        case RecurrentKind::gru: return 3;
        case RecurrentKind::lstm: return 4;
    }
    return 1;
}

long as_long(std::size_t n) { return static_cast<long>(n); }

// x W_ih^T plus the biases that can be added before the recurrence: b_ih + b_hh for RNN and LSTM,
// b_ih alone for GRU (whose b_hn is multiplied by r, so b_hh is added to the hidden projection).
template <class T>
Variable<T> input_projection(RecurrentKind kind, const Variable<T>& x, const typename RecurrentBase<T>::Weights& w) {
    if (!w.b_ih.defined()) return torch_linear(x, w.w_ih);
    return torch_linear(x, w.w_ih, kind == RecurrentKind::gru ? w.b_ih : w.b_ih + w.b_hh);
}

// One step from xw (N, G H), the input projection of this step with its biases: (h', c'). An
// undefined h or c is zeros, whose terms are left out (no GEMM with a zero matrix).
template <class T>
std::pair<Variable<T>, Variable<T>> step(RecurrentKind kind, std::size_t hidden, const Variable<T>& xw,
                                         const Variable<T>& h, const Variable<T>& c,
                                         const typename RecurrentBase<T>::Weights& w) {
    const std::size_t H = hidden;
    const auto part = [](const Variable<T>& v, std::size_t from, std::size_t to) { return slice(v, 1, from, to); };
    switch (kind) {
        case RecurrentKind::rnn_tanh:
        case RecurrentKind::rnn_relu: {
            const Variable<T> pre = h.defined() ? xw + matmul(h, w.w_hh, false, true) : xw;
            return {kind == RecurrentKind::rnn_tanh ? tanh(pre) : relu(pre), {}};
        }
        case RecurrentKind::lstm:
            return lstm_cell(xw, h.defined() ? matmul(h, w.w_hh, false, true) : Variable<T>(), c);
        case RecurrentKind::gru: {
            Variable<T> hh;  // h W_hh^T + b_hh, undefined when both are zero
            if (h.defined()) hh = matmul(h, w.w_hh, false, true);
            if (w.b_hh.defined()) hh = hh.defined() ? hh + w.b_hh : w.b_hh;
            // hh is (N, 3H) or, from b_hh alone, (3H,): slice its last axis
            const auto hpart = [&](std::size_t from, std::size_t to) {
                return slice(hh, static_cast<long>(hh.ndim()) - 1, from, to);
            };
            const Variable<T> rz = sigmoid(hh.defined() ? part(xw, 0, 2 * H) + hpart(0, 2 * H) : part(xw, 0, 2 * H));
            const Variable<T> r = part(rz, 0, H), z = part(rz, H, 2 * H);
            const Variable<T> n = tanh(hh.defined() ? part(xw, 2 * H, 3 * H) + r * hpart(2 * H, 3 * H)
                                                    : part(xw, 2 * H, 3 * H));
            // (1 - z) n + z h, written as torch's CPU kernel: n + z (h - n)
            return {h.defined() ? n + z * (h - n) : n - z * n, {}};
        }
    }
    throw ValueError("recurrent: invalid kind");
}

// The L steps' slices of a projection holding `count` steps along `axis`, each `width` wide,
// written to out[first], out[first + 1], ... A slice's gradient is an array of its source's full
// shape, so L slices of one projection would cost L full-size gradients in the backward pass
// (O(L^2) work, most of an LSTM's backward at L = 64); slicing through a tree of blocks, four
// per level, costs 4 per level: O(L log L), the same values and gradients.
template <class T>
void step_slices(const Variable<T>& block, long axis, std::size_t width, std::size_t first, std::size_t count,
                 std::vector<Variable<T>>& out) {
    constexpr std::size_t fan_out = 4;
    if (count == 1) {
        out[first] = block;
        return;
    }
    if (count <= fan_out) {
        for (std::size_t t = 0; t < count; ++t) out[first + t] = slice(block, axis, t * width, (t + 1) * width);
        return;
    }
    const std::size_t per = (count + fan_out - 1) / fan_out;  // steps per sub-block
    for (std::size_t start = 0; start < count; start += per) {
        const std::size_t n = std::min(per, count - start);
        step_slices(slice(block, axis, start * width, (start + n) * width), axis, width, first + start, n, out);
    }
}

}  // namespace

template <class T>
RecurrentBase<T>::RecurrentBase(RecurrentKind kind, std::string name, std::size_t input_size, std::size_t hidden_size,
                                RecurrentOptions options, bool cell)
    : kind_(kind), name_(std::move(name)), input_size_(input_size), hidden_size_(hidden_size), bias_(options.bias),
      batch_first_(options.batch_first), cell_(cell) {
    if (input_size == 0 || hidden_size == 0)
        throw ShapeError(fmt::format("{}: sizes must be positive, got input_size {} and hidden_size {}", name_,
                                     input_size, hidden_size));
    if (cell && (options.num_layers != 1 || options.batch_first))
        throw ValueError(fmt::format("{}: a cell has one layer and no time axis (num_layers {} and batch_first {} given)",
                                     name_, options.num_layers, options.batch_first));
    if (options.num_layers == 0) throw ValueError(fmt::format("{}: num_layers must be positive, got 0", name_));
    if (!(options.dropout >= 0.0 && options.dropout < 1.0) || (cell && options.dropout != 0.0))
        throw ValueError(fmt::format("{}: dropout must be in [0, 1){}, got {}", name_, cell ? " and 0 for a cell" : "",
                                     options.dropout));
    const bool is_rnn = kind == RecurrentKind::rnn_tanh || kind == RecurrentKind::rnn_relu;
    if (!is_rnn && options.nonlinearity != RNNNonlinearity::tanh)
        throw ValueError(fmt::format("{}: nonlinearity is RNN's and RNNCell's option only", name_));
    const std::size_t G = gate_count(kind), GH = G * hidden_size;
    const double per_layer_hidden = static_cast<double>(GH) * (static_cast<double>(hidden_size) + (bias_ ? 2.0 : 0.0));
    const double count = static_cast<double>(GH) * static_cast<double>(input_size) +
                         static_cast<double>(GH) * static_cast<double>(hidden_size) * static_cast<double>(options.num_layers - 1) +
                         per_layer_hidden * static_cast<double>(options.num_layers);
    require_memory_for_parameters(count, sizeof(T), fmt::format("{}({}, {}, num_layers={})", name_, input_size,
                                                                hidden_size, options.num_layers));
    Generator& gen = options.generator ? *options.generator : default_generator();
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    const auto make = [&](std::string pname, Shape shape, Decay decay) {
        Variable<T> v(Array<T>::from_shape(shape));
        init::uniform_(v, -bound, bound, gen);
        return this->register_parameter(std::move(pname), v, decay);
    };
    for (std::size_t l = 0; l < options.num_layers; ++l) {
        const std::string suffix = cell ? "" : fmt::format("_l{}", l);
        const std::size_t in = l == 0 ? input_size : hidden_size;
        Weights w;
        w.w_ih = make("weight_ih" + suffix, {GH, in}, Decay::yes);
        w.w_hh = make("weight_hh" + suffix, {GH, hidden_size}, Decay::yes);
        if (bias_) {
            w.b_ih = make("bias_ih" + suffix, {GH}, Decay::no);
            w.b_hh = make("bias_hh" + suffix, {GH}, Decay::no);
        }
        layers_.push_back(w);
    }
    // Between layers only, so one layer has nothing to drop (torch warns; accepted here).
    if (options.dropout > 0.0)
        dropout_ = this->register_module("dropout", std::make_shared<Dropout<T>>(options.dropout, gen()));
}

template <class T>
std::string RecurrentBase<T>::repr() const {
    std::string s = fmt::format("{}({}, {}", name_, input_size_, hidden_size_);
    if (layers_.size() != 1) s += fmt::format(", num_layers={}", layers_.size());
    if (kind_ == RecurrentKind::rnn_relu) s += ", nonlinearity=relu";
    if (!bias_) s += ", bias=false";
    if (batch_first_) s += ", batch_first=true";
    if (dropout_) s += fmt::format(", dropout={}", dropout_->ratio());
    return s + ")";
}

template <class T>
std::tuple<Variable<T>, Variable<T>, Variable<T>> RecurrentBase<T>::run(const Variable<T>& x, const Variable<T>& h0,
                                                                        const Variable<T>& c0) const {
    if (!x.defined()) throw ValueError(fmt::format("{}: the input is undefined", name_));
    if (x.ndim() != 3 || x.shape()[2] != input_size_)
        throw ShapeError(fmt::format("{}: expects input of shape {}, got {}", name_,
                                     batch_first_ ? fmt::format("(N, L, {}) (batch_first)", input_size_)
                                                  : fmt::format("(L, N, {})", input_size_),
                                     shape_str(x.shape())));
    const std::size_t L = batch_first_ ? x.shape()[1] : x.shape()[0];
    const std::size_t N = batch_first_ ? x.shape()[0] : x.shape()[1];
    if (L == 0)
        throw ShapeError(fmt::format("{}: the sequence length must be positive (as torch's), got input of shape {}",
                                     name_, shape_str(x.shape())));
    const std::size_t H = hidden_size_, layers = layers_.size();
    const Shape state_shape{layers, N, H};
    for (const auto& [state, what] : {std::pair{&h0, "h0"}, std::pair{&c0, "c0"}})
        if (state->defined() && state->shape() != state_shape)
            throw ShapeError(fmt::format("{}: {} must have shape (num_layers, N, H) = {} for input {}, got {}", name_, what,
                                         shape_str(state_shape), shape_str(x.shape()), shape_str(state->shape())));
    const auto layer_state = [&](const Variable<T>& s, std::size_t l) {
        if (!s.defined()) return Variable<T>();
        return layers == 1 ? reshape(s, {as_long(N), as_long(H)}) : squeeze(slice(s, 0, l, l + 1), 0);
    };

    // Time-major inside: a batch_first input is transposed once (input_size wide, a fraction of
    // the G H wide projection), so that each step's rows of the projection are one contiguous
    // block, copied in one piece (column blocks of an (N, L G H) view took one copy per row).
    Variable<T> input = batch_first_ ? transpose(x, {1, 0, 2}) : x;
    std::vector<Variable<T>> outs(L), h_n, c_n;
    for (std::size_t l = 0; l < layers; ++l) {
        const Weights& w = layers_[l];
        const std::size_t in = l == 0 ? input_size_ : H;
        Variable<T> h = layer_state(h0, l), c = layer_state(c0, l);
        if (kind_ == RecurrentKind::lstm) {
            // Every step's input projection in one GEMM, (L, N, 4H); lstm_cell reads step t's
            // block of it in place.
            const Variable<T> xw = input_projection(kind_, input, w);
            for (std::size_t t = 0; t < L; ++t) {
                std::tie(h, c) = lstm_cell(xw, h.defined() ? matmul(h, w.w_hh, false, true) : Variable<T>(), c,
                                           as_long(t));
                outs[t] = h;
            }
        } else {
            // Every step's input projection in one GEMM: rows (t, n).
            const Variable<T> xw = input_projection(kind_, reshape(input, {as_long(L * N), as_long(in)}), w);
            std::vector<Variable<T>> xs(L);
            step_slices(xw, 0, N, 0, L, xs);
            for (std::size_t t = 0; t < L; ++t) {
                std::tie(h, c) = step<T>(kind_, H, xs[t], h, c, w);
                outs[t] = h;
            }
        }
        h_n.push_back(h);
        c_n.push_back(c);
        if (l + 1 < layers) {
            input = stack(outs, 0);
            if (dropout_) input = dropout_->forward(input);  // the identity in evaluation
        }
    }
    Variable<T> output = stack(outs, batch_first_ ? 1 : 0);
    Variable<T> hn = stack(h_n, 0);
    Variable<T> cn = kind_ == RecurrentKind::lstm ? stack(c_n, 0) : Variable<T>();
    return {output, hn, cn};
}

template <class T>
std::pair<Variable<T>, Variable<T>> RecurrentBase<T>::cell_step(const Variable<T>& x, const Variable<T>& h,
                                                                const Variable<T>& c) const {
    if (!x.defined()) throw ValueError(fmt::format("{}: the input is undefined", name_));
    if (x.ndim() != 2 || x.shape()[1] != input_size_)
        throw ShapeError(
            fmt::format("{}: expects input of shape (N, {}), got {}", name_, input_size_, shape_str(x.shape())));
    const Shape state_shape{x.shape()[0], hidden_size_};
    for (const auto& [state, what] : {std::pair{&h, "h"}, std::pair{&c, "c"}})
        if (state->defined() && state->shape() != state_shape)
            throw ShapeError(fmt::format("{}: {} must have shape (N, H) = {} for input {}, got {}", name_, what,
                                         shape_str(state_shape), shape_str(x.shape()), shape_str(state->shape())));
    const Weights& w = layers_.front();
    return step<T>(kind_, hidden_size_, input_projection(kind_, x, w), h, c, w);
}

}  // namespace detail

using detail::RecurrentKind;

namespace {
RecurrentKind rnn_kind(const RecurrentOptions& o) {
    return o.nonlinearity == RNNNonlinearity::relu ? RecurrentKind::rnn_relu : RecurrentKind::rnn_tanh;
}
}  // namespace

template <class T>
RNNCell<T>::RNNCell(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options)
    : detail::RecurrentBase<T>(rnn_kind(options), "RNNCell", input_size, hidden_size, options, true) {}

template <class T>
Variable<T> RNNCell<T>::forward(const Variable<T>& x, const Variable<T>& h) {
    return this->cell_step(x, h, {}).first;
}

template <class T>
GRUCell<T>::GRUCell(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options)
    : detail::RecurrentBase<T>(RecurrentKind::gru, "GRUCell", input_size, hidden_size, options, true) {}

template <class T>
Variable<T> GRUCell<T>::forward(const Variable<T>& x, const Variable<T>& h) {
    return this->cell_step(x, h, {}).first;
}

template <class T>
LSTMCell<T>::LSTMCell(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options)
    : detail::RecurrentBase<T>(RecurrentKind::lstm, "LSTMCell", input_size, hidden_size, options, true) {}

template <class T>
std::pair<Variable<T>, Variable<T>> LSTMCell<T>::forward(const Variable<T>& x, std::pair<Variable<T>, Variable<T>> hc) {
    return this->cell_step(x, hc.first, hc.second);
}

template <class T>
RNN<T>::RNN(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options)
    : detail::RecurrentBase<T>(rnn_kind(options), "RNN", input_size, hidden_size, options, false) {}

template <class T>
std::pair<Variable<T>, Variable<T>> RNN<T>::forward(const Variable<T>& x, const Variable<T>& h0) {
    auto [out, hn, cn] = this->run(x, h0, {});
    return {out, hn};
}

template <class T>
GRU<T>::GRU(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options)
    : detail::RecurrentBase<T>(RecurrentKind::gru, "GRU", input_size, hidden_size, options, false) {}

template <class T>
std::pair<Variable<T>, Variable<T>> GRU<T>::forward(const Variable<T>& x, const Variable<T>& h0) {
    auto [out, hn, cn] = this->run(x, h0, {});
    return {out, hn};
}

template <class T>
LSTM<T>::LSTM(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options)
    : detail::RecurrentBase<T>(RecurrentKind::lstm, "LSTM", input_size, hidden_size, options, false) {}

template <class T>
std::pair<Variable<T>, LSTMState<T>> LSTM<T>::forward(const Variable<T>& x, LSTMState<T> state) {
    auto [out, hn, cn] = this->run(x, state.h, state.c);
    return {out, LSTMState<T>{hn, cn}};
}

#define XG_INSTANTIATE(T)                     \
    template class detail::RecurrentBase<T>;  \
    template class RNNCell<T>;                \
    template class GRUCell<T>;                \
    template class LSTMCell<T>;               \
    template class RNN<T>;                    \
    template class GRU<T>;                    \
    template class LSTM<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg::nn
