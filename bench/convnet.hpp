#pragma once
// The ConvNet benchmark's models and data, shared by bench/convnet_step.cpp (xgrad, and the step's
// GEMMs alone) and bench/torch_convnet_step.cpp (libtorch): the book's SimpleConvNet and
// DeepConvNet (Deep Learning from Scratch 7.5 and 8.1) on 1x28x28 images, He-initialised from
// fixed seeds so that both frameworks train the very same network on the very same batch.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace bench::cnn {

enum class Kind { conv, relu, pool, linear, dropout };

// One layer: a 3x3/5x5 convolution (stride 1) of `in` to `out` channels with `pad` zeros on each
// side, a 2x2 max pool of stride 2, or an affine layer of `in` to `out` features.
struct Layer {
    Kind kind;
    long in = 0, out = 0, kernel = 0, pad = 0;
};

inline Layer conv(long in, long out, long kernel, long pad) { return {Kind::conv, in, out, kernel, pad}; }
inline Layer linear(long in, long out) { return {Kind::linear, in, out}; }
inline constexpr Layer relu{Kind::relu}, pool{Kind::pool}, dropout{Kind::dropout};
inline constexpr double dropout_ratio = 0.5;
inline constexpr double adam_lr = 1e-3;
inline constexpr long image = 28, classes = 10;

// conv 30 5x5 -> ReLU -> pool -> Linear 100 -> ReLU -> Linear 10.
inline std::vector<Layer> simple() {
    return {conv(1, 30, 5, 0), relu, pool, linear(30 * 12 * 12, 100), relu, linear(100, classes)};
}
// conv 16,16 / 32,32 / 64,64 (3x3, pad 1 but 2 on the fourth), a pool after each pair,
// Linear 50, dropout, Linear 10, dropout: 28 -> 14 -> 16 -> 8 -> 4, so 64 * 4 * 4 features.
inline std::vector<Layer> deep() {
    return {conv(1, 16, 3, 1),  relu, conv(16, 16, 3, 1), relu, pool,
            conv(16, 32, 3, 1), relu, conv(32, 32, 3, 2), relu, pool,
            conv(32, 64, 3, 1), relu, conv(64, 64, 3, 1), relu, pool,
            linear(64 * 4 * 4, 50), relu, dropout, linear(50, classes), dropout};
}
inline std::vector<Layer> model(std::string_view name) {
    if (name == "simple") return simple();
    if (name == "deep") return deep();
    throw std::invalid_argument("model: expected simple or deep");
}

// Spatial size after each layer, starting from `image` (for the limit's GEMM shapes).
inline long conv_out(long size, const Layer& l) { return size + 2 * l.pad - l.kernel + 1; }

// He initialisation N(0, 2 / fan_in) of layer i's weight, in PyTorch's layout: (out, in, kh, kw)
// for a convolution (fan_in = in * kh * kw), (out, in) for an affine layer. Biases are zeros.
inline std::vector<float> he_weight(const Layer& l, std::size_t i) {
    const long fan_in = l.kind == Kind::conv ? l.in * l.kernel * l.kernel : l.in;
    const long size = l.kind == Kind::conv ? l.out * fan_in : l.out * l.in;
    std::mt19937_64 gen(20261130 + 7 * i);
    std::normal_distribution<double> n(0.0, std::sqrt(2.0 / static_cast<double>(fan_in)));
    std::vector<float> w(static_cast<std::size_t>(size));
    for (float& v : w) v = static_cast<float>(n(gen));
    return w;
}

// Images uniform in [0, 1) (batch, 1, 28, 28) and labels in [0, 10).
inline std::vector<float> images(std::size_t batch) {
    std::mt19937_64 gen(20261131);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<float> x(batch * image * image);
    for (float& v : x) v = static_cast<float>(u(gen));
    return x;
}
inline std::vector<std::int64_t> labels(std::size_t batch) {
    std::mt19937_64 gen(20261132);
    std::uniform_int_distribution<std::int64_t> u(0, classes - 1);
    std::vector<std::int64_t> y(batch);
    for (auto& v : y) v = u(gen);
    return y;
}

}  // namespace bench::cnn
