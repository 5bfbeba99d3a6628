#pragma once
// Smoothing of noisy per-iteration curves (mini-batch losses) for plots. Every function returns a
// curve of the input's length, point i describing the neighbourhood of point i (centred windows),
// so a smoothed curve plots against the same iteration numbers as the raw one.
#include <cstddef>
#include <vector>

namespace xg::support {

// The book's smooth_curve (common/util.py in "Deep Learning from Scratch"): a convolution with a
// normalised Kaiser window (window_len 11, beta 2), the input mirrored at both ends as numpy's
// np.r_[x[w-1:0:-1], x, x[-1:-w:-1]] does. Gives the same numbers as the book's code.
// ValueError unless window is odd and >= 3 and the curve has at least `window` points.
std::vector<double> smooth_curve(const std::vector<double>& x, std::size_t window = 11, double beta = 2.0);

// Mean (or median) of the points within window/2 of each point; the window shrinks at the ends
// instead of padding. ValueError for window 0.
std::vector<double> moving_average(const std::vector<double>& x, std::size_t window);
std::vector<double> moving_median(const std::vector<double>& x, std::size_t window);

// numpy's np.kaiser(m, beta): I0(beta * sqrt(1 - (2n/(m-1) - 1)^2)) / I0(beta), n = 0..m-1.
std::vector<double> kaiser_window(std::size_t m, double beta);

// Mean of x[first, last) (clamped to x's size); NaN for an empty range.
double mean_of(const std::vector<double>& x, std::size_t first, std::size_t last);

}  // namespace xg::support
