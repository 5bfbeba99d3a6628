#pragma once
// The normalisation benchmark's sizes and data, shared by bench/norm.cpp (xgrad's fused ops and the
// same functions composed of ops) and bench/torch_norm.cpp (libtorch's): forward and backward for a
// fixed upstream gradient, float32, of
//   layer_norm on x (4096, 512) over its last axis, gamma and beta (512,);
//   batch_norm in training on x (128, 256), the main job's first batch norm, and on images
//   (32, 16, 24, 24), gamma and beta per channel.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace bench::norm {

inline constexpr float eps = 1e-5f;

// One benchmark's shape: x's shape and the number of values gamma and beta have.
struct Case {
    const char* key;  // in the "key value" lines: ln, bn, bn4d
    std::vector<long> shape;
    long params;
};
inline const Case layer_norm{"ln", {4096, 512}, 512};
inline const Case batch_norm{"bn", {128, 256}, 256};
inline const Case batch_norm_images{"bn4d", {32, 16, 24, 24}, 16};

inline std::size_t size(const std::vector<long>& s) {
    std::size_t n = 1;
    for (long d : s) n *= static_cast<std::size_t>(d);
    return n;
}

// Uniform in [lo, hi), one stream per tensor (0: x, 1: gamma, 2: beta, 3: the upstream gradient).
inline std::vector<float> data(std::size_t size, std::uint64_t stream, double lo = -1.0, double hi = 1.0) {
    std::mt19937_64 gen(20261130 + 100 + stream);
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<float> v(size);
    for (float& x : v) x = static_cast<float>(u(gen));
    return v;
}
inline std::vector<float> x(const Case& c) { return data(size(c.shape), 0, -3.0, 5.0); }
inline std::vector<float> gamma(const Case& c) { return data(static_cast<std::size_t>(c.params), 1, 0.5, 1.5); }
inline std::vector<float> beta(const Case& c) { return data(static_cast<std::size_t>(c.params), 2); }
inline std::vector<float> gout(const Case& c) { return data(size(c.shape), 3); }

}  // namespace bench::norm
