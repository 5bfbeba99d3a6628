#pragma once
// Small things several test files need: a temporary directory, whole-file reads and writes, and
// a learnable toy data set.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "data/dataset.hpp"

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

}  // namespace xgt
