#pragma once
// The layer_norm benchmark's sizes and data, shared by bench/layer_norm.cpp (xgrad's fused op and
// the same function composed of ops) and bench/torch_layer_norm.cpp (libtorch's torch::layer_norm):
// x (4096, 512) in float32 normalised over its last axis, with gamma and beta (512,), forward and
// backward for a fixed upstream gradient.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace bench::ln {

inline constexpr std::size_t rows = 4096, cols = 512;
inline constexpr float eps = 1e-5f;

// Uniform in [lo, hi), one stream per tensor (0: x, 1: gamma, 2: beta, 3: the upstream gradient).
inline std::vector<float> data(std::size_t size, std::uint64_t stream, double lo = -1.0, double hi = 1.0) {
    std::mt19937_64 gen(20261130 + 100 + stream);
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<float> v(size);
    for (float& x : v) x = static_cast<float>(u(gen));
    return v;
}
inline std::vector<float> x() { return data(rows * cols, 0, -3.0, 5.0); }
inline std::vector<float> gamma() { return data(cols, 1, 0.5, 1.5); }
inline std::vector<float> beta() { return data(cols, 2); }
inline std::vector<float> gout() { return data(rows * cols, 3); }

}  // namespace bench::ln
