#pragma once
// Small things several test files need: a temporary directory, whole-file reads and writes, a
// learnable toy data set, and comparisons of arrays (with tolerances, with torch's references).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "data/dataset.hpp"
#include "graph/array.hpp"
#include "nn/module.hpp"

namespace xgt {

// A fresh directory under the system's temporary folder, removed with everything in it.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& tag)
        : path(std::filesystem::temp_directory_path() / ("xgrad-" + tag + "-" + std::to_string(::getpid()))) {
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& name) const { return (path / name).string(); }
    // The names of the files in it, sorted.
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

// A 2-D array from a nested list, e.g. mat({{1.0}, {2.0}}): a one-column literal given to Array's
// own constructor is ambiguous.
inline xg::Array<double> mat(xt::nested_initializer_list_t<double, 2> rows) { return xg::Array<double>(rows); }

// An array of `shape` drawn uniformly from [lo, hi) by a generator seeded with `seed`.
inline xg::Array<double> random_array(const xg::Shape& shape, unsigned seed, double lo = -2.0, double hi = 2.0) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(lo, hi);
    xg::Array<double> a = xg::Array<double>::from_shape(shape);
    for (double& v : a) v = u(gen);
    return a;
}

inline std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

inline void write_all(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

// Three Gaussian blobs in 4-D, labelled 0..2, well separated: a small net separates them almost
// perfectly.
inline xg::data::Dataset blobs(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> noise(0.0f, 0.3f);
    xg::data::Dataset d{xg::Array<float>::from_shape({n, 4}), xg::Labels::from_shape({n}), 3};
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<std::int64_t>(i % 3);
        d.labels(i) = c;
        for (std::size_t j = 0; j < 4; ++j)
            d.images(i, j) = (j == static_cast<std::size_t>(c) ? 1.0f : 0.0f) + noise(rng);
    }
    return d;
}

// Equal shapes, and every element within tol relative to 1 + |want|.
inline bool close(const xg::Array<double>& got, const xg::Array<double>& want, double tol = 1e-12) {
    if (got.shape() != want.shape()) return false;
    for (std::size_t i = 0; i < got.size(); ++i)
        if (!(std::abs(got.flat(i) - want.flat(i)) <= tol * (1 + std::abs(want.flat(i))))) return false;
    return true;
}

// The rule every comparison with a PyTorch fixture uses: |a - b| <= 1e-10 |b| + 1e-12 everywhere,
// same shapes, infinities and NaNs where torch has them. `why` names the first difference.
inline bool agrees(const xg::Array<double>& got, const xg::Array<double>& want, std::string& why) {
    if (got.shape() != want.shape()) {
        why = "shape " + xg::shape_str(got.shape()) + ", torch " + xg::shape_str(want.shape());
        return false;
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double g = got.flat(i), w = want.flat(i);
        const bool same_special = (std::isnan(g) && std::isnan(w)) || (std::isinf(w) && g == w);
        if (!same_special && !(std::abs(g - w) <= 1e-10 * std::abs(w) + 1e-12)) {
            why = fmt::format("element {}: {:.17g}, torch {:.17g}", i, g, w);
            return false;
        }
    }
    return true;
}

// "name (shape)" for each named parameter or buffer, in order.
inline std::vector<std::string> names_and_shapes(const std::vector<xg::nn::Named<double>>& named) {
    std::vector<std::string> out;
    for (const auto& [name, v] : named) out.push_back(name + " " + xg::shape_str(v.shape()));
    return out;
}

}  // namespace xgt
