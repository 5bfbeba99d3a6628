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

namespace init {
namespace {

template <class T>
std::size_t fan_in(const Variable<T>& w, std::string_view who) {
    if (w.ndim() == 0 || w.shape()[0] == 0)
        throw ShapeError(fmt::format("{}: needs a weight with a non-empty first dimension (fan-in), got shape {}",
                                     who, shape_str(w.shape())));
    return w.shape()[0];
}

template <class T>
std::size_t fan_out(const Variable<T>& w) {
    return w.ndim() >= 2 ? w.size() / w.shape()[0] : 1;
}

template <class T, class Dist>
void fill(Variable<T>& w, Dist dist, Generator& gen) {
    for (T& v : w.mutable_data()) v = static_cast<T>(dist(gen));
}

void require_finite(double v, std::string_view who, std::string_view what) {
    if (!std::isfinite(v) || v < 0)
        throw ValueError(fmt::format("{}: {} must be finite and >= 0, got {}", who, what, v));
}

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
    normal_(w, std::sqrt(1.0 / double(fan_in(w, "init::xavier_normal_"))), gen);
}

template <class T>
void glorot_uniform_(Variable<T>& w, Generator& gen) {
    const double a = std::sqrt(6.0 / double(fan_in(w, "init::glorot_uniform_") + fan_out(w)));
    uniform_(w, -a, a, gen);
}

template <class T>
void he_normal_(Variable<T>& w, Generator& gen) {
    normal_(w, std::sqrt(2.0 / double(fan_in(w, "init::he_normal_"))), gen);
}

template <class T>
void he_uniform_(Variable<T>& w, Generator& gen) {
    const double a = std::sqrt(6.0 / double(fan_in(w, "init::he_uniform_")));
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

#define XG_INSTANTIATE(T)                                                    \
    template void init::normal_(Variable<T>&, double, Generator&);           \
    template void init::uniform_(Variable<T>&, double, double, Generator&);  \
    template void init::xavier_normal_(Variable<T>&, Generator&);            \
    template void init::glorot_uniform_(Variable<T>&, Generator&);           \
    template void init::he_normal_(Variable<T>&, Generator&);                \
    template void init::he_uniform_(Variable<T>&, Generator&);               \
    template void init::zeros_(Variable<T>&);                                \
    template void init::constant_(Variable<T>&, double);                     \
    template void Init::apply(Variable<T>&, Generator&) const;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::nn
