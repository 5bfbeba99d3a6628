#pragma once
// The batched matmul benchmark's sizes and data, shared by bench/batched_matmul.cpp (xgrad and
// the same GEMMs called directly) and bench/torch_batched_matmul.cpp (libtorch's torch::matmul):
// a (B, M, K) times b (B, K, N) in float32, forward and backward for a fixed upstream gradient.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace bench::bmm {

inline constexpr std::size_t B = 64, M = 64, K = 64, N = 64;

// Uniform in [-1, 1), one stream per tensor (0: a, 1: b, 2: the upstream gradient).
inline std::vector<float> data(std::size_t size, std::uint64_t stream) {
    std::mt19937_64 gen(20261130 + stream);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    std::vector<float> v(size);
    for (float& x : v) x = static_cast<float>(u(gen));
    return v;
}

}  // namespace bench::bmm
