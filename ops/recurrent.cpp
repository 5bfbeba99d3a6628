// lstm_cell: one LSTM step from its gate pre-activations, as three ops: lstm_gates (the four
// activations of x_gates + h_gates), lstm_state (c') and lstm_output (h'). Composed from slices,
// sigmoid, tanh, mul and add, a step was 13 ops and as many passes over its arrays, each with
// its own allocation; these are three loops forward and three backward (torch's fused CPU cell
// is the same idea). lstm_state and lstm_output each use a quarter or three of the (N, 4H)
// activations: their gradients fill only those columns, and add them in place when the engine
// offers the running sum (Function::add_input_grad), so the two make one (N, 4H) gradient. A
// whole sequence's input projection (L, N, 4H) is read at row block `step` without slicing it,
// and its gradient is added there in place. The loops are ops/vector_math's (AVX2 or AVX-512 where
// the CPU has them, with the baseline's bits). Recorded backward passes (create_graph) are written
// with ops, so the cell is differentiable any number of times.
#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "ops/instantiate.hpp"
#include "ops/ops.hpp"
#include "ops/vector_math.hpp"

namespace xg {
namespace {

// Where lstm_cell reads its gates: x_gates' rows at block `step` (when stepped) plus h_gates
// (when present), each row 4 H wide, i f g o.
struct CellShape {
    std::size_t N = 0, H = 0, L = 0, step = 0;
    bool stepped = false, has_h = false, has_c = false;
    std::size_t block() const { return N * 4 * H; }
};

// act = (sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)) of the pre-activations x_gates[step] + h_gates.
template <class T>
struct LstmGates final : Function<T> {
    explicit LstmGates(CellShape s) : s(s) {}
    std::string_view name() const override { return "lstm_gates"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const std::size_t H = s.H, G = 4 * H;
        Array<T> act = Array<T>::from_shape({s.N, G});
        const T* x = xs[0].data() + (s.stepped ? s.step * s.block() : 0);
        const T* h = s.has_h ? xs[1].data() : nullptr;
        for (std::size_t n = 0; n < s.N; ++n) {
            const std::size_t row = n * G;
            const auto at = [&](std::size_t col) { return h ? h + row + col : nullptr; };
            vmath::sigmoid(x + row, at(0), act.data() + row, 2 * H);
            vmath::tanh(x + row + 2 * H, at(2 * H), act.data() + row + 2 * H, H);
            vmath::sigmoid(x + row + 3 * H, at(3 * H), act.data() + row + 3 * H, H);
        }
        return act;
    }
    // The gradient of the pre-activations, gy times each activation's derivative (a (1 - a), or
    // 1 - a^2 for g), written to `out` or added to it.
    void pre_grad(const Array<T>& gy, T* out, bool add) const {
        const T* act = this->output().data().data();
        const std::size_t H = s.H;
        for (std::size_t k = 0; k < s.N * 4 * H; k += H)
            vmath::gate_grad(act + k, gy.data() + k, out + k, H, k / H % 4 == 2, add);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (recording_backward()) return recorded_backward(gy);
        Array<T> d = Array<T>::from_shape({s.N, 4 * s.H});
        pre_grad(gy.data(), d.data(), false);
        const Variable<T> d_pre(std::move(d));
        std::vector<Variable<T>> gxs{d_pre};
        if (s.has_h) gxs.push_back(d_pre);
        if (s.stepped && this->needs_input_grad(0)) {  // the first gradient of the projection
            Array<T> gx = full(this->input(0).shape(), T(0));
            std::copy_n(d_pre.data().data(), s.block(), gx.data() + s.step * s.block());
            gxs[0] = Variable<T>(std::move(gx));
        }
        return gxs;
    }
    bool add_input_grad(std::size_t i, const Array<T>& gy, Array<T>& sum) override {
        pre_grad(gy, sum.data() + (i == 0 && s.stepped ? s.step * s.block() : 0), true);
        return true;
    }
    std::vector<Variable<T>> recorded_backward(const Variable<T>& gy) const {
        const Variable<T> act = this->output();
        const Variable<T> sig_if = slice(act, 1, 0, 2 * s.H), g = slice(act, 1, 2 * s.H, 3 * s.H),
                          sig_o = slice(act, 1, 3 * s.H, 4 * s.H);
        const Variable<T> deriv =
            concatenate(std::vector<Variable<T>>{sig_if * (T(1) - sig_if), T(1) - g * g, sig_o * (T(1) - sig_o)}, 1);
        const Variable<T> d_pre = gy * deriv;
        std::vector<Variable<T>> gxs{d_pre};
        if (s.has_h) gxs.push_back(d_pre);
        if (s.stepped) {
            const long before = static_cast<long>(s.step), after = static_cast<long>(s.L - 1 - s.step);
            gxs[0] = pad(unsqueeze(d_pre, 0), {{before, after}, {0, 0}, {0, 0}});
        }
        return gxs;
    }
    CellShape s;
};

// Zeros in columns [0, first H) and [(first + count) H, 4 H) of every (4 H)-wide row of `out`: the
// gates a gradient of lstm_state or lstm_output does not reach, when it is written, not added.
template <class T>
void zero_other_gates(T* out, const CellShape& s, std::size_t first, std::size_t count) {
    const std::size_t H = s.H, G = 4 * H;
    for (std::size_t n = 0; n < s.N; ++n) {
        T* row = out + n * G;
        std::fill(row, row + first * H, T(0));
        std::fill(row + (first + count) * H, row + G, T(0));
    }
}

// c' = f c + i g (f c left out without c), from act (N, 4H) and c (N, H).
template <class T>
struct LstmState final : Function<T> {
    explicit LstmState(CellShape s) : s(s) {}
    std::string_view name() const override { return "lstm_state"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const std::size_t H = s.H;
        const T* act = xs[0].data();
        const T* c = s.has_c ? xs[1].data() : nullptr;
        Array<T> out = Array<T>::from_shape({s.N, H});
        for (std::size_t n = 0; n < s.N; ++n) {
            const T* a = act + n * 4 * H;
            vmath::mul_add(a, a + 2 * H, c ? a + H : nullptr, c ? c + n * H : nullptr, out.data() + n * H, H);
        }
        return out;
    }
    // d i = gy g, d f = gy c, d g = gy i: columns 0 to 3H of the activations' gradient.
    void act_grad(const Array<T>& gy, T* out, bool add) const {
        const std::size_t H = s.H;
        const T* act = this->input(0).data().data();
        const T* c = s.has_c ? this->input(1).data().data() : nullptr;
        if (!add) zero_other_gates(out, s, 0, 3);
        for (std::size_t n = 0; n < s.N; ++n) {
            const T* a = act + n * 4 * H;
            const T* g = gy.data() + n * H;
            T* row = out + n * 4 * H;
            vmath::mul(g, a + 2 * H, row, H, add);
            if (c) vmath::mul(g, c + n * H, row + H, H, add);
            else if (!add) std::fill(row + H, row + 2 * H, T(0));  // added: 0 + y is y
            vmath::mul(g, a, row + 2 * H, H, add);
        }
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (recording_backward()) return recorded_backward(gy);
        std::vector<Variable<T>> gxs(s.has_c ? 2 : 1);
        if (this->needs_input_grad(0)) {
            Array<T> d = Array<T>::from_shape({s.N, 4 * s.H});
            act_grad(gy.data(), d.data(), false);
            gxs[0] = Variable<T>(std::move(d));
        }
        if (s.has_c && this->needs_input_grad(1)) {  // d c = gy f
            const std::size_t H = s.H;
            const T* act = this->input(0).data().data();
            const T* g = gy.data().data();
            Array<T> dc = Array<T>::from_shape({s.N, H});
            for (std::size_t n = 0; n < s.N; ++n) vmath::mul(g + n * H, act + n * 4 * H + H, dc.data() + n * H, H, false);
            gxs[1] = Variable<T>(std::move(dc));
        }
        return gxs;
    }
    bool add_input_grad(std::size_t i, const Array<T>& gy, Array<T>& sum) override {
        if (i != 0) return false;
        act_grad(gy, sum.data(), true);
        return true;
    }
    std::vector<Variable<T>> recorded_backward(const Variable<T>& gy) const {
        const std::size_t H = s.H;
        const Variable<T>& act = this->input(0);
        const Variable<T> i = slice(act, 1, 0, H), f = slice(act, 1, H, 2 * H), g = slice(act, 1, 2 * H, 3 * H);
        const Variable<T> d_f = s.has_c ? gy * this->input(1) : Variable<T>(full(Shape{s.N, H}, T(0)));
        std::vector<Variable<T>> gxs{
            pad(concatenate(std::vector<Variable<T>>{gy * g, d_f, gy * i}, 1), {{0, 0}, {0, static_cast<long>(H)}})};
        if (s.has_c) gxs.push_back(gy * f);
        return gxs;
    }
    CellShape s;
};

// h' = o tanh(c'), from act (N, 4H) and c' (N, H); tanh(c') is kept for the backward pass.
template <class T>
struct LstmOutput final : Function<T> {
    explicit LstmOutput(CellShape s) : s(s) {}
    std::string_view name() const override { return "lstm_output"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const std::size_t H = s.H;
        tanh_c = Array<T>::from_shape({s.N, H});
        vmath::tanh(xs[1].data(), nullptr, tanh_c.data(), s.N * H);
        const T* act = xs[0].data();
        Array<T> h = Array<T>::from_shape({s.N, H});
        for (std::size_t n = 0; n < s.N; ++n)
            vmath::mul(act + n * 4 * H + 3 * H, tanh_c.data() + n * H, h.data() + n * H, H, false);
        return h;
    }
    // d o = gy tanh(c'): column block 3 of the activations' gradient.
    void act_grad(const Array<T>& gy, T* out, bool add) const {
        const std::size_t H = s.H;
        (void)this->input(1);  // throws if c' was changed in place since the forward pass
        if (!add) zero_other_gates(out, s, 3, 1);
        for (std::size_t n = 0; n < s.N; ++n)
            vmath::mul(gy.data() + n * H, tanh_c.data() + n * H, out + n * 4 * H + 3 * H, H, add);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (recording_backward()) return recorded_backward(gy);
        std::vector<Variable<T>> gxs(2);
        if (this->needs_input_grad(0)) {
            Array<T> d = Array<T>::from_shape({s.N, 4 * s.H});
            act_grad(gy.data(), d.data(), false);
            gxs[0] = Variable<T>(std::move(d));
        }
        if (this->needs_input_grad(1)) {  // d c' = gy o (1 - tanh(c')^2)
            const std::size_t H = s.H;
            const T* act = this->input(0).data().data();
            const T* g = gy.data().data();
            (void)this->input(1);
            Array<T> dc = Array<T>::from_shape({s.N, H});
            for (std::size_t n = 0; n < s.N; ++n)
                vmath::mul_tanh_grad(g + n * H, act + n * 4 * H + 3 * H, tanh_c.data() + n * H, dc.data() + n * H, H);
            gxs[1] = Variable<T>(std::move(dc));
        }
        return gxs;
    }
    bool add_input_grad(std::size_t i, const Array<T>& gy, Array<T>& sum) override {
        if (i != 0) return false;
        act_grad(gy, sum.data(), true);
        return true;
    }
    std::vector<Variable<T>> recorded_backward(const Variable<T>& gy) const {
        const std::size_t H = s.H;
        const Variable<T> o = slice(this->input(0), 1, 3 * H, 4 * H);
        const Variable<T> t = tanh(this->input(1));
        return {pad(gy * t, {{0, 0}, {static_cast<long>(3 * H), 0}}), gy * o * (T(1) - t * t)};
    }
    void release_saved() override { tanh_c = Array<T>(); }
    CellShape s;
    Array<T> tanh_c;
};

}  // namespace

template <class T>
std::pair<Variable<T>, Variable<T>> lstm_cell(const Variable<T>& x_gates, const Variable<T>& h_gates,
                                              const Variable<T>& c, long step) {
    if (!x_gates.defined()) throw ValueError("lstm_cell: x_gates is undefined");
    CellShape s;
    s.stepped = step >= 0;
    if (step < -1) throw ValueError(fmt::format("lstm_cell: step must be -1 (x_gates is one step) or >= 0, got {}", step));
    const Shape& xs = x_gates.shape();
    if (xs.size() != (s.stepped ? 3u : 2u) || xs.back() % 4 != 0)
        throw ShapeError(fmt::format("lstm_cell: x_gates must be {} with G a multiple of 4 (gates i, f, g, o), got {}",
                                     s.stepped ? "(L, N, G) for a step index" : "(N, G) without a step index",
                                     shape_str(xs)));
    if (s.stepped && static_cast<std::size_t>(step) >= xs[0])
        throw ShapeError(fmt::format("lstm_cell: step {} out of range for x_gates of shape {}", step, shape_str(xs)));
    s.L = s.stepped ? xs[0] : 1;
    s.step = s.stepped ? static_cast<std::size_t>(step) : 0;
    s.N = xs[xs.size() - 2];
    s.H = xs.back() / 4;
    s.has_h = h_gates.defined();
    s.has_c = c.defined();
    if (s.has_h && h_gates.shape() != Shape{s.N, 4 * s.H})
        throw ShapeError(fmt::format("lstm_cell: h_gates must have shape {} for x_gates {}, got {}",
                                     shape_str(Shape{s.N, 4 * s.H}), shape_str(xs), shape_str(h_gates.shape())));
    if (s.has_c && c.shape() != Shape{s.N, s.H})
        throw ShapeError(fmt::format("lstm_cell: c must have shape {} for x_gates {}, got {}",
                                     shape_str(Shape{s.N, s.H}), shape_str(xs), shape_str(c.shape())));
    const Variable<T> act = s.has_h ? apply<LstmGates<T>>({x_gates, h_gates}, s) : apply<LstmGates<T>>({x_gates}, s);
    const Variable<T> c_next = s.has_c ? apply<LstmState<T>>({act, c}, s) : apply<LstmState<T>>({act}, s);
    return {apply<LstmOutput<T>>({act, c_next}, s), c_next};
}

XG_INSTANTIATE_OP(lstm_cell)

}  // namespace xg
