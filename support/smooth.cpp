#include "support/smooth.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::support {

std::vector<double> kaiser_window(std::size_t m, double beta) {
    if (m == 0) return {};
    if (m == 1) return {1.0};
    std::vector<double> w(m);
    const double denom = std::cyl_bessel_i(0.0, beta);
    for (std::size_t n = 0; n < m; ++n) {
        const double r = 2.0 * static_cast<double>(n) / static_cast<double>(m - 1) - 1.0;
        w[n] = std::cyl_bessel_i(0.0, beta * std::sqrt(std::max(0.0, 1.0 - r * r))) / denom;
    }
    return w;
}

std::vector<double> smooth_curve(const std::vector<double>& x, std::size_t window, double beta) {
    if (window < 3 || window % 2 == 0)
        throw ValueError(fmt::format("smooth_curve: window must be odd and >= 3, got {}", window));
    const std::size_t n = x.size();
    if (n < window)
        throw ValueError(fmt::format("smooth_curve: the curve has {} points, fewer than the window {}", n, window));
    // s = x[w-1], ..., x[1], x[0..n-1], x[n-1], ..., x[n-w+1]  (numpy's np.r_ in the book)
    std::vector<double> s;
    s.reserve(n + 2 * (window - 1));
    for (std::size_t j = window - 1; j >= 1; --j) s.push_back(x[j]);
    s.insert(s.end(), x.begin(), x.end());
    for (std::size_t j = 0; j + 1 < window; ++j) s.push_back(x[n - 1 - j]);
    std::vector<double> w = kaiser_window(window, beta);
    double total = 0;
    for (double v : w) total += v;
    for (double& v : w) v /= total;
    // np.convolve(w, s, 'valid')[h : len - h] with h = window / 2: output i is centred on x[i].
    const std::size_t h = window / 2;
    std::vector<double> y(n);
    for (std::size_t i = 0; i < n; ++i) {
        double acc = 0;
        const std::size_t start = i + h;  // first index of s under the window (valid index i + h)
        for (std::size_t k = 0; k < window; ++k) acc += w[window - 1 - k] * s[start + k];
        y[i] = acc;
    }
    return y;
}

namespace {
template <class F>
std::vector<double> windowed(const std::vector<double>& x, std::size_t window, const char* who, F&& reduce) {
    if (window == 0) throw ValueError(fmt::format("{}: window must be positive", who));
    const std::size_t h = window / 2, n = x.size();
    std::vector<double> y(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t lo = i >= h ? i - h : 0;
        const std::size_t hi = std::min(n, i + (window - h));  // window points when not clipped
        y[i] = reduce(x.begin() + static_cast<long>(lo), x.begin() + static_cast<long>(hi));
    }
    return y;
}
}  // namespace

std::vector<double> moving_average(const std::vector<double>& x, std::size_t window) {
    return windowed(x, window, "moving_average", [](auto first, auto last) {
        double s = 0;
        for (auto it = first; it != last; ++it) s += *it;
        return s / static_cast<double>(last - first);
    });
}

std::vector<double> moving_median(const std::vector<double>& x, std::size_t window) {
    return windowed(x, window, "moving_median", [](auto first, auto last) {
        std::vector<double> v(first, last);
        const std::size_t m = v.size() / 2;
        std::nth_element(v.begin(), v.begin() + static_cast<long>(m), v.end());
        if (v.size() % 2) return v[m];
        const double upper = v[m];
        return (*std::max_element(v.begin(), v.begin() + static_cast<long>(m)) + upper) / 2;
    });
}

double mean_of(const std::vector<double>& x, std::size_t first, std::size_t last) {
    last = std::min(last, x.size());
    if (first >= last) return std::numeric_limits<double>::quiet_NaN();
    double s = 0;
    for (std::size_t i = first; i < last; ++i) s += x[i];
    return s / static_cast<double>(last - first);
}

}  // namespace xg::support
