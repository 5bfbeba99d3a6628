#include "nn/init.hpp"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::nn {

// One per thread: layers built on several threads at once never share (and race on) one
// generator, and each thread's draws depend only on its own manual_seed calls.
Generator& default_generator() {
    thread_local Generator gen(0);
    return gen;
}

void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

Fan linear_fan(const Shape& w, std::string_view who) {
    if (w.empty() || w[0] == 0)
        throw ShapeError(fmt::format("{}: needs a weight with a non-empty first dimension (fan-in), got shape {}",
                                     who, shape_str(w)));
    std::size_t rest = 1;
    for (std::size_t d = 1; d < w.size(); ++d) rest *= w[d];
    return {w[0], w.size() >= 2 ? rest : 1};
}

Fan conv_fan(const Shape& w) {
    if (w.size() < 2)
        throw ShapeError(fmt::format("conv_fan: needs a weight (d0, d1, kh, kw), got shape {}", shape_str(w)));
    std::size_t field = 1;
    for (std::size_t d = 2; d < w.size(); ++d) field *= w[d];
    return {w[1] * field, w[0] * field};
}

namespace init {
namespace {

template <class T, class Dist>
void fill(Variable<T>& w, Dist dist, Generator& gen) {
    for (T& v : w.mutable_data()) v = static_cast<T>(dist(gen));
}

void require_finite(double v, std::string_view who, std::string_view what) {
    if (!std::isfinite(v) || v < 0)
        throw ValueError(fmt::format("{}: {} must be finite and >= 0, got {}", who, what, v));
}

// The initialisers' scales from the fans, written once.
double xavier_std(Fan f) { return std::sqrt(1.0 / double(f.in)); }
double glorot_bound(Fan f) { return std::sqrt(6.0 / double(f.in + f.out)); }
double he_std(Fan f) { return std::sqrt(2.0 / double(f.in)); }
double he_bound(Fan f) { return std::sqrt(6.0 / double(f.in)); }

}  // namespace

template <class T>
void normal_(Variable<T>& w, double std, Generator& gen) {
    require_finite(std, "init::normal_", "std");
    if (std == 0) return zeros_(w);
    fill(w, std::normal_distribution<double>(0.0, std), gen);
}

template <class T>
void uniform_(Variable<T>& w, double low, double high, Generator& gen) {
    if (!(low <= high) || !std::isfinite(low) || !std::isfinite(high))
        throw ValueError(fmt::format("init::uniform_: needs finite low <= high, got [{}, {}]", low, high));
    if (low == high) return constant_(w, low);
    fill(w, std::uniform_real_distribution<double>(low, high), gen);
}

template <class T>
void xavier_normal_(Variable<T>& w, Generator& gen) {
    normal_(w, xavier_std(linear_fan(w.shape(), "init::xavier_normal_")), gen);
}

template <class T>
void glorot_uniform_(Variable<T>& w, Generator& gen) {
    const double a = glorot_bound(linear_fan(w.shape(), "init::glorot_uniform_"));
    uniform_(w, -a, a, gen);
}

template <class T>
void he_normal_(Variable<T>& w, Generator& gen) {
    normal_(w, he_std(linear_fan(w.shape(), "init::he_normal_")), gen);
}

template <class T>
void he_uniform_(Variable<T>& w, Generator& gen) {
    const double a = he_bound(linear_fan(w.shape(), "init::he_uniform_"));
    uniform_(w, -a, a, gen);
}

template <class T>
void zeros_(Variable<T>& w) {
    w.mutable_data().fill(T(0));
}

template <class T>
void constant_(Variable<T>& w, double value) {
    w.mutable_data().fill(static_cast<T>(value));
}

}  // namespace init

Init Init::parse(std::string_view text) {
    if (text == "he") return he();
    if (text == "he_uniform") return he_uniform();
    if (text == "xavier") return xavier();
    if (text == "glorot_uniform") return glorot_uniform();
    if (text == "zeros") return zeros();
    double std = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), std);
    if (err != std::errc() || end != text.data() + text.size() || !std::isfinite(std) || std < 0)
        throw ValueError(fmt::format(
            "init: unknown initialiser '{}' (expected he, he_uniform, xavier, glorot_uniform, zeros or a std >= 0)",
            text));
    return normal(std);
}

std::string Init::str() const {
    switch (kind) {
        case Kind::normal: return fmt::format("normal(std={})", value);
        case Kind::xavier: return "xavier";
        case Kind::glorot_uniform: return "glorot_uniform";
        case Kind::he: return "he";
        case Kind::he_uniform: return "he_uniform";
        case Kind::zeros: return "zeros";
        case Kind::constant: return fmt::format("constant({})", value);
    }
    return "?";
}

template <class T>
void Init::apply(Variable<T>& w, Generator& gen) const {
    switch (kind) {
        case Kind::normal: return init::normal_(w, value, gen);
        case Kind::xavier: return init::xavier_normal_(w, gen);
        case Kind::glorot_uniform: return init::glorot_uniform_(w, gen);
        case Kind::he: return init::he_normal_(w, gen);
        case Kind::he_uniform: return init::he_uniform_(w, gen);
        case Kind::zeros: return init::zeros_(w);
        case Kind::constant: return init::constant_(w, value);
    }
}

template <class T>
void Init::apply(Variable<T>& w, Generator& gen, Fan fan) const {
    const bool scaled = kind == Kind::xavier || kind == Kind::glorot_uniform || kind == Kind::he ||
                        kind == Kind::he_uniform;
    if (scaled && (fan.in == 0 || (kind == Kind::glorot_uniform && fan.in + fan.out == 0)))
        throw ValueError(fmt::format("init {}: fan_in must be positive, got fans (in {}, out {}) for a weight of shape {}",
                                     str(), fan.in, fan.out, shape_str(w.shape())));
    switch (kind) {
        case Kind::xavier: return init::normal_(w, init::xavier_std(fan), gen);
        case Kind::glorot_uniform: {
            const double a = init::glorot_bound(fan);
            return init::uniform_(w, -a, a, gen);
        }
        case Kind::he: return init::normal_(w, init::he_std(fan), gen);
        case Kind::he_uniform: {
            const double a = init::he_bound(fan);
            return init::uniform_(w, -a, a, gen);
        }
        default: return apply(w, gen);
    }
}

#define XG_INSTANTIATE(T)                                                    \
    template void init::normal_(Variable<T>&, double, Generator&);           \
    template void init::uniform_(Variable<T>&, double, double, Generator&);  \
    template void init::xavier_normal_(Variable<T>&, Generator&);            \
    template void init::glorot_uniform_(Variable<T>&, Generator&);           \
    template void init::he_normal_(Variable<T>&, Generator&);                \
    template void init::he_uniform_(Variable<T>&, Generator&);               \
    template void init::zeros_(Variable<T>&);                                \
    template void init::constant_(Variable<T>&, double);                     \
    template void Init::apply(Variable<T>&, Generator&) const;               \
    template void Init::apply(Variable<T>&, Generator&, Fan) const;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::nn
