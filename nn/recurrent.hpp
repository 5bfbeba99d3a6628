#pragma once
// Recurrent layers (issue 15): RNN (tanh or relu), GRU and LSTM, multi-layer, and their one-step
// cells, as torch.nn's: the same parameter names, shapes, gate orders and initialisation
// distribution, so that a PyTorch model's state_dict loads with load_state_dict. Built from graph
// ops only (matmul, slice, sigmoid, tanh, stack...): none has a backward pass of its own. A layer
// computes its input projections for every timestep in one matmul before the time loop; each step
// adds the hidden projection and applies the gates.
//
// Sequences are (L, N, H_in), or (N, L, H_in) with batch_first; states are (num_layers, N, H)
// (not transposed by batch_first, as torch's). An undefined initial state means zeros.
// Truncated back-propagation through time: pass the returned state's detach() to the next chunk.
#include <cstddef>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "nn/init.hpp"
#include "nn/module.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

enum class RNNNonlinearity { tanh, relu };

struct RecurrentOptions {
    std::size_t num_layers = 1;
    bool bias = true;
    bool batch_first = false;  // input and output (N, L, H) instead of (L, N, H), as torch
    RNNNonlinearity nonlinearity = RNNNonlinearity::tanh;  // RNN and RNNCell only
    // torch's dropout: in training, each layer's output sequence but the last layer's goes through
    // inverted dropout with this probability before the next layer (layers only; in [0, 1)).
    double dropout = 0.0;
    Generator* generator = nullptr;  // default_generator() when null; every parameter U(-1/sqrt(H), 1/sqrt(H)) as torch
};

// LSTM's state: h and c, each (num_layers, N, H); an undefined one means zeros.
template <class T>
struct LSTMState {
    Variable<T> h, c;
};

template <class T>
class Dropout;  // nn/layers.hpp

namespace detail {

enum class RecurrentKind { rnn_tanh, rnn_relu, gru, lstm };

// What the layers and cells share: the parameters (one set per layer) and the recurrence.
template <class T>
class RecurrentBase : public Module<T> {
public:
    std::size_t input_size() const { return input_size_; }
    std::size_t hidden_size() const { return hidden_size_; }
    std::size_t num_layers() const { return layers_.size(); }
    bool bias() const { return bias_; }
    bool batch_first() const { return batch_first_; }
    std::string repr() const override;

    // Layer l's weights: weight_ih (G H, in), weight_hh (G H, H), bias_ih and bias_hh (G H,) (undefined
    // without bias), with G = 1 (RNN), 3 (GRU: r, z, n) or 4 (LSTM: i, f, g, o).
    struct Weights {
        Variable<T> w_ih, w_hh, b_ih, b_hh;
    };
    const Weights& weights(std::size_t layer = 0) const { return layers_.at(layer); }

protected:
    // cell: one layer whose parameters have no "_l0" suffix (the *Cell classes).
    RecurrentBase(RecurrentKind kind, std::string name, std::size_t input_size, std::size_t hidden_size,
                  RecurrentOptions options, bool cell);
    // The whole sequence through every layer: (output, h_n, c_n) (c_n undefined unless LSTM).
    std::tuple<Variable<T>, Variable<T>, Variable<T>> run(const Variable<T>& x, const Variable<T>& h0,
                                                          const Variable<T>& c0) const;
    // One step of a cell: (h', c') (c' undefined unless LSTM).
    std::pair<Variable<T>, Variable<T>> cell_step(const Variable<T>& x, const Variable<T>& h,
                                                  const Variable<T>& c) const;

private:
    RecurrentKind kind_;
    std::string name_;
    std::size_t input_size_, hidden_size_;
    bool bias_, batch_first_, cell_;
    std::vector<Weights> layers_;
    std::shared_ptr<Dropout<T>> dropout_;  // the child "dropout" (no parameters), null without dropout
};

}  // namespace detail

// torch.nn.RNNCell: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu (options.nonlinearity;
// options.num_layers must be 1 and batch_first false). x (N, H_in), h (N, H) or undefined (zeros).
template <class T>
class RNNCell : public detail::RecurrentBase<T> {
public:
    RNNCell(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options = {});
    Variable<T> forward(const Variable<T>& x, const Variable<T>& h = {});
    Variable<T> operator()(const Variable<T>& x, const Variable<T>& h = {}) { return forward(x, h); }
};

// torch.nn.GRUCell: r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z = sigmoid(W_iz x + b_iz + W_hz h + b_hz),
// n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
template <class T>
class GRUCell : public detail::RecurrentBase<T> {
public:
    GRUCell(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options = {});
    Variable<T> forward(const Variable<T>& x, const Variable<T>& h = {});
    Variable<T> operator()(const Variable<T>& x, const Variable<T>& h = {}) { return forward(x, h); }
};

// torch.nn.LSTMCell: gates i, f, g, o (in that order along weight_ih's rows) = sigmoid, sigmoid, tanh,
// sigmoid of (x W_ih^T + b_ih + h W_hh^T + b_hh); c' = f * c + i * g, h' = o * tanh(c'). Returns (h', c').
template <class T>
class LSTMCell : public detail::RecurrentBase<T> {
public:
    LSTMCell(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options = {});
    std::pair<Variable<T>, Variable<T>> forward(const Variable<T>& x, std::pair<Variable<T>, Variable<T>> hc = {});
    std::pair<Variable<T>, Variable<T>> operator()(const Variable<T>& x, std::pair<Variable<T>, Variable<T>> hc = {}) {
        return forward(x, std::move(hc));
    }
};

// torch.nn.RNN: num_layers RNNCells stacked, layer l > 0 reading layer l - 1's outputs. Parameters
// weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l1, ... forward(x, h0) returns
// (output, h_n): output (L, N, H) (batch_first: (N, L, H)) holds the last layer's h at every step,
// h_n (num_layers, N, H) every layer's last h.
template <class T>
class RNN : public detail::RecurrentBase<T> {
public:
    RNN(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options = {});
    std::pair<Variable<T>, Variable<T>> forward(const Variable<T>& x, const Variable<T>& h0 = {});
    std::pair<Variable<T>, Variable<T>> operator()(const Variable<T>& x, const Variable<T>& h0 = {}) {
        return forward(x, h0);
    }
};

// torch.nn.GRU: GRUCells stacked as RNN's.
template <class T>
class GRU : public detail::RecurrentBase<T> {
public:
    GRU(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options = {});
    std::pair<Variable<T>, Variable<T>> forward(const Variable<T>& x, const Variable<T>& h0 = {});
    std::pair<Variable<T>, Variable<T>> operator()(const Variable<T>& x, const Variable<T>& h0 = {}) {
        return forward(x, h0);
    }
};

// torch.nn.LSTM: LSTMCells stacked as RNN's; forward(x, {h0, c0}) returns (output, {h_n, c_n}).
template <class T>
class LSTM : public detail::RecurrentBase<T> {
public:
    LSTM(std::size_t input_size, std::size_t hidden_size, RecurrentOptions options = {});
    std::pair<Variable<T>, LSTMState<T>> forward(const Variable<T>& x, LSTMState<T> state = {});
    std::pair<Variable<T>, LSTMState<T>> operator()(const Variable<T>& x, LSTMState<T> state = {}) {
        return forward(x, std::move(state));
    }
};

#define XG_NN_RECURRENT_EXTERN(T)                    \
    extern template class detail::RecurrentBase<T>;  \
    extern template class RNNCell<T>;                \
    extern template class GRUCell<T>;                \
    extern template class LSTMCell<T>;               \
    extern template class RNN<T>;                    \
    extern template class GRU<T>;                    \
    extern template class LSTM<T>;
XG_NN_RECURRENT_EXTERN(float)
XG_NN_RECURRENT_EXTERN(double)
#undef XG_NN_RECURRENT_EXTERN

}  // namespace xg::nn
