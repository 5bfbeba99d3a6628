#pragma once
// Weight initialisers (Deep Learning from Scratch 6.2), all drawing from a seeded generator so
// that runs reproduce. Fan-in is the first dimension of a weight of shape (in, out) (Linear's);
// a layer whose weight is laid out otherwise (convolutions) passes its fans to Init::apply.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "graph/array.hpp"
#include "graph/variable.hpp"

namespace xg::nn {

using Generator = std::mt19937_64;

// The generator layers use when none is given (like torch's default generator). There is one
// per thread, seeded 0 when the thread first uses it: threads may build layers concurrently,
// and a thread's weights depend only on its own seeding and order of construction.
Generator& default_generator();
// Reseeds the calling thread's default generator (torch.manual_seed).
void manual_seed(std::uint64_t seed);

namespace init {
template <class T> void normal_(Variable<T>& w, double std, Generator& gen);
template <class T> void uniform_(Variable<T>& w, double low, double high, Generator& gen);
// The seeds' Xavier: N(0, 1/fan_in).
template <class T> void xavier_normal_(Variable<T>& w, Generator& gen);
// Glorot & Bengio's uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
template <class T> void glorot_uniform_(Variable<T>& w, Generator& gen);
// He: N(0, 2/fan_in).
template <class T> void he_normal_(Variable<T>& w, Generator& gen);
// He uniform: U(-a, a), a = sqrt(6 / fan_in).
template <class T> void he_uniform_(Variable<T>& w, Generator& gen);
template <class T> void zeros_(Variable<T>& w);
template <class T> void constant_(Variable<T>& w, double value);
}  // namespace init

// The numbers of inputs and outputs each weight connects, which scale the initialisers.
struct Fan {
    std::size_t in = 0, out = 0;
};
// Linear's rule for a weight (in, out, ...): in = the first dimension, out = the rest's product
// (1 for a vector). ShapeError for a 0-d weight or an empty first dimension.
Fan linear_fan(const Shape& weight, std::string_view who);
// torch's rule for a convolution weight (d0, d1, kh, kw), torch.nn.init's
// _calculate_fan_in_and_fan_out: in = d1 * kh * kw, out = d0 * kh * kw. For Conv2d's
// (out_channels, in_channels / groups, kh, kw) that is fan_in = in_channels / groups * kh * kw.
Fan conv_fan(const Shape& weight);

// A choice of initialiser, as a value: what Linear and MultiLayerNet take.
struct Init {
    enum class Kind { normal, xavier, glorot_uniform, he, he_uniform, zeros, constant };
    Kind kind = Kind::he;
    double value = 0;  // the std of `normal`, the value of `constant`

    static Init normal(double std) { return {Kind::normal, std}; }
    static Init xavier() { return {Kind::xavier, 0}; }
    static Init glorot_uniform() { return {Kind::glorot_uniform, 0}; }
    static Init he() { return {Kind::he, 0}; }
    static Init he_uniform() { return {Kind::he_uniform, 0}; }
    static Init zeros() { return {Kind::zeros, 0}; }
    static Init constant(double v) { return {Kind::constant, v}; }

    // "he", "he_uniform", "xavier", "glorot_uniform", "zeros", or a number: the std of a normal
    // (the book's weight_init_std). Throws ValueError on anything else.
    static Init parse(std::string_view text);
    std::string str() const;

    // With Linear's fans (linear_fan).
    template <class T>
    void apply(Variable<T>& w, Generator& gen) const;
    // With the given fans (Kind::normal, zeros and constant ignore them); ValueError when a fan
    // the initialiser divides by is 0.
    template <class T>
    void apply(Variable<T>& w, Generator& gen, Fan fan) const;
};

}  // namespace xg::nn
