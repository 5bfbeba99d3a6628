// ops/vector_math's row loops (the reductions in their fixed lane order, layer_norm's rows,
// batch_norm's channels,
// softmax's backward rows, the LSTM cell's loops, a bias's rows): each build the CPU runs (baseline, AVX2,
// AVX-512) gives the bits of a plain scalar loop written here in the documented order, over
// lengths that end on a full batch and that leave every tail, at edge values.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ops/vector_math.hpp"

namespace {

// One build's row functions, as pointers to its float or double overloads.
template <class T>
struct Rows {
    std::string name;
    T (*row_sum)(const T*, std::size_t);
    T (*row_dot)(const T*, const T*, std::size_t);
    T (*row_max)(const T*, std::size_t);
    T (*exp_shifted_sum)(T*, T, std::size_t);
    void (*exp_shifted)(T*, T, std::size_t);
    void (*scale_row)(T*, T, std::size_t);
    void (*layer_norm_rows)(const T*, T*, std::size_t, std::size_t, const T*, const T*, T, T*, T*);
    void (*layer_norm_rows_backward)(const T*, const T*, T*, std::size_t, std::size_t, const T*, const T*, const T*,
                                     T*, T*);
    void (*batch_norm)(const T*, T*, std::size_t, std::size_t, std::size_t, const T*, const T*, T, T*, T*, T*);
    void (*batch_norm_backward)(const T*, const T*, T*, std::size_t, std::size_t, std::size_t, const T*, const T*,
                                const T*, T*, T*);
    void (*softmax_rows)(T*, std::size_t, std::size_t, T, bool);
    void (*softmax_rows_backward)(const T*, const T*, T*, std::size_t, std::size_t);
    void (*mul)(const T*, const T*, T*, std::size_t, bool);
    void (*mul_add)(const T*, const T*, const T*, const T*, T*, std::size_t);
    void (*gate_grad)(const T*, const T*, T*, std::size_t, bool, bool);
    void (*mul_tanh_grad)(const T*, const T*, const T*, T*, std::size_t);
    void (*fill_rows)(const T*, std::size_t, std::size_t, T*);
    void (*add_rows)(const T*, std::size_t, std::size_t, T*);
    void (*relu_grad_rows)(const T*, const T*, T*, std::size_t, std::size_t, T*);
    void (*relu)(const T*, T*, std::size_t);
};
#define XGT_ROWS(ns, T)                                                                                          \
    Rows<T> {                                                                                                    \
        #ns, xg::vmath::ns::row_sum, xg::vmath::ns::row_dot, xg::vmath::ns::row_max,                            \
            xg::vmath::ns::exp_shifted_sum, xg::vmath::ns::exp_shifted, xg::vmath::ns::scale_row,               \
            xg::vmath::ns::layer_norm_rows, xg::vmath::ns::layer_norm_rows_backward,                            \
            xg::vmath::ns::batch_norm, xg::vmath::ns::batch_norm_backward,                                      \
            xg::vmath::ns::softmax_rows, xg::vmath::ns::softmax_rows_backward, xg::vmath::ns::mul, xg::vmath::ns::mul_add,                   \
            xg::vmath::ns::gate_grad, xg::vmath::ns::mul_tanh_grad, xg::vmath::ns::fill_rows,                   \
            xg::vmath::ns::add_rows, xg::vmath::ns::relu_grad_rows, xg::vmath::ns::relu                         \
    }

template <class T>
std::vector<Rows<T>> builds() {
    std::vector<Rows<T>> b{XGT_ROWS(baseline, T)};
    if (xg::vmath::avx2_available()) b.push_back(XGT_ROWS(avx2, T));
    if (xg::vmath::avx512_available()) b.push_back(XGT_ROWS(avx512, T));
    return b;
}

// The documented order: W = 64 bytes of lanes, lane k combining elements k, k + W, ... in turn
// from `identity`, then lane k with lane k + W / 2, k + W / 4, ..., down to lane 0.
template <class T, class F>
T fixed_order(const std::vector<T>& v, T identity, F combine) {
    constexpr std::size_t W = 64 / sizeof(T);
    std::vector<T> lane(W, identity);
    for (std::size_t i = 0; i < v.size(); ++i) lane[i % W] = combine(lane[i % W], v[i]);
    for (std::size_t w = W / 2; w > 0; w /= 2)
        for (std::size_t k = 0; k < w; ++k) lane[k] = combine(lane[k], lane[k + w]);
    return lane[0];
}
template <class T>
T plus(T a, T b) {
    return a + b;
}
template <class T>
T greater(T a, T b) {
    return b > a ? b : a;
}

template <class T>
bool same_bits(T a, T b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0 || (std::isnan(a) && std::isnan(b));
}
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same_bits(a[i], b[i])) return false;
    return true;
}

template <class T>
std::vector<T> random_row(std::size_t n, std::mt19937& rng, double scale = 3) {
    std::normal_distribution<double> d(0, scale);
    std::vector<T> v(n);
    for (T& x : v) x = T(d(rng));
    return v;
}

// Lengths: empty, shorter than any batch, every tail after full batches of 2 to 16 lanes, and
// longer rows.
const std::vector<std::size_t> lengths{0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 96, 127, 128, 200};

template <class T>
void check_reductions() {
    std::mt19937 rng(7);
    for (const Rows<T>& b : builds<T>()) {
        for (std::size_t n : lengths) {
            const std::vector<T> x = random_row<T>(n, rng), y = random_row<T>(n, rng);
            std::vector<T> xy(n);
            for (std::size_t i = 0; i < n; ++i) xy[i] = x[i] * y[i];
            const std::string at = b.name + ", " + std::to_string(sizeof(T)) + "-byte, n = " + std::to_string(n);
            BOOST_TEST(same_bits(b.row_sum(x.data(), n), fixed_order(x, T(0), plus<T>)), at);
            BOOST_TEST(same_bits(b.row_dot(x.data(), y.data(), n), fixed_order(xy, T(0), plus<T>)), at);
            const T inf = std::numeric_limits<T>::infinity();
            BOOST_TEST(same_bits(b.row_max(x.data(), n), fixed_order(x, -inf, greater<T>)), at);
            // exp_shifted_sum: exp_shifted's values, and their sum in the fixed order
            std::vector<T> e1 = x, e2 = x;
            const T shift = n ? x[n / 2] : T(0);
            const T s = b.exp_shifted_sum(e1.data(), shift, n);
            b.exp_shifted(e2.data(), shift, n);
            BOOST_TEST(same_bits(e1, e2), at);
            BOOST_TEST(same_bits(s, fixed_order(e2, T(0), plus<T>)), at);
            std::vector<T> sc = x, want = x;
            b.scale_row(sc.data(), T(0.37), n);
            for (T& v : want) v *= T(0.37);
            BOOST_TEST(same_bits(sc, want), at);
        }
    }
}

BOOST_AUTO_TEST_SUITE(vector_rows)

BOOST_AUTO_TEST_CASE(reductions_give_the_fixed_orders_bits_in_every_build) {
    check_reductions<float>();
    check_reductions<double>();
}

// row_max skips NaN (it never wins a comparison) and is -inf for an empty row or one of NaN
// only; +-inf and signed zeros are ordinary values; the sum of a row holding inf and -inf is NaN.
template <class T>
void check_reduction_edges() {
    const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    for (const Rows<T>& b : builds<T>()) {
        const std::vector<T> with_nan{T(1), nan, T(5), T(-2), nan, T(3), T(4), T(0), T(1), T(2),
                                      T(3), T(4), T(5), T(6), T(7), T(8), T(9), nan};
        BOOST_TEST(b.row_max(with_nan.data(), with_nan.size()) == T(9), b.name);
        const std::vector<T> only_nan(19, nan);
        BOOST_TEST(b.row_max(only_nan.data(), only_nan.size()) == -inf, b.name);
        BOOST_TEST(b.row_max(only_nan.data(), 0) == -inf, b.name);
        BOOST_TEST(b.row_sum(only_nan.data(), 0) == T(0), b.name);
        const std::vector<T> infs{inf, T(1), -inf, T(2)};
        BOOST_TEST(b.row_max(infs.data(), 4) == inf, b.name);
        BOOST_TEST(std::isnan(b.row_sum(infs.data(), 4)), b.name);
        const std::vector<T> big(40, std::numeric_limits<T>::max() / 4);
        BOOST_TEST(std::isinf(b.row_sum(big.data(), 40)), b.name);  // overflows as any sum would
        // a softmax row less its maximum: the largest term is exp(0) = 1, -inf terms are 0
        std::vector<T> row{T(-inf), T(2), T(2), T(-1000)};
        BOOST_TEST(b.exp_shifted_sum(row.data(), T(2), 4) == T(2), b.name);
        BOOST_TEST(row[0] == T(0));
        BOOST_TEST(row[3] == T(0));
    }
}

// softmax_rows (attention's probabilities) against its documented steps, causal or not, over row
// lengths with every tail; a row of -inf is zeros, one holding a NaN and otherwise -inf NaN.
template <class T>
void check_softmax_rows() {
    std::mt19937 rng(3);
    const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    for (const Rows<T>& b : builds<T>()) {
        for (std::size_t n : lengths) {
            const std::size_t rows = n ? 40 : 3;
            for (bool causal : {false, true}) {
                std::vector<T> s = random_row<T>(rows * n, rng, 4);
                if (n > 3) s[n + 1] = -inf;  // one masked score in row 1
                std::vector<T> want = s;
                for (std::size_t i = 0; i < rows; ++i) {
                    T* r = want.data() + i * n;
                    const std::size_t stop = causal ? std::min(n, i + 1) : n;
                    std::vector<T> row(r, r + stop);
                    for (T& v : row) v = v * T(0.25);
                    const T m = fixed_order(row, -inf, greater<T>);
                    b.exp_shifted(row.data(), m, stop);  // exp's bits: checked against the baseline elsewhere
                    const T inv = T(1) / fixed_order(row, T(0), plus<T>);
                    for (std::size_t j = 0; j < n; ++j) r[j] = j < stop ? row[j] * inv : T(0);
                }
                b.softmax_rows(s.data(), rows, n, T(0.25), causal);
                BOOST_TEST(same_bits(s, want), b.name << ", softmax_rows, n = " << n << ", causal " << causal);
            }
        }
        std::vector<T> masked{-inf, -inf, -inf, -inf, nan, -inf, T(1), T(2)};
        b.softmax_rows(masked.data(), 2, 4, T(1), false);
        for (std::size_t j = 0; j < 4; ++j) BOOST_TEST(masked[j] == T(0), b.name);
        for (std::size_t j = 4; j < 8; ++j) BOOST_TEST(std::isnan(masked[j]), b.name);
    }
}

BOOST_AUTO_TEST_CASE(softmax_rows_follow_their_steps) {
    check_softmax_rows<float>();
    check_softmax_rows<double>();
}

BOOST_AUTO_TEST_CASE(reductions_at_edge_values_skip_nan_in_max) {
    check_reduction_edges<float>();
    check_reduction_edges<double>();
}

// layer_norm_rows and its backward against the same formulas in scalar loops, with the sums taken
// in the fixed order: the same bits, with and without gamma and beta, and gx null (no gradient
// of x wanted); softmax_rows_backward likewise.
template <class T>
void check_layer_norm_and_softmax_rows() {
    std::mt19937 rng(11);
    for (const Rows<T>& b : builds<T>()) {
        for (std::size_t n : {1, 7, 16, 33, 128}) {
            const std::size_t rows = 3;
            const std::vector<T> x = random_row<T>(rows * n, rng, 20), gy = random_row<T>(rows * n, rng),
                                 gamma = random_row<T>(n, rng), beta = random_row<T>(n, rng);
            const T eps = T(1e-5);
            for (int variant = 0; variant < 4; ++variant) {
                const T* g = variant & 1 ? gamma.data() : nullptr;
                const T* be = variant & 2 ? beta.data() : nullptr;
                std::vector<T> y(rows * n), mean(rows), rstd(rows);
                b.layer_norm_rows(x.data(), y.data(), rows, n, g, be, eps, mean.data(), rstd.data());
                std::vector<T> gx(rows * n), gg(n, T(0)), gb(n, T(0)), gg2(n, T(0)), gb2(n, T(0));
                b.layer_norm_rows_backward(x.data(), gy.data(), gx.data(), rows, n, mean.data(), rstd.data(), g,
                                           gg.data(), gb.data());
                b.layer_norm_rows_backward(x.data(), gy.data(), nullptr, rows, n, mean.data(), rstd.data(), g,
                                           gg2.data(), gb2.data());
                // the scalar reference
                std::vector<T> wy(rows * n), wgx(rows * n), wgg(n, T(0)), wgb(n, T(0));
                for (std::size_t r = 0; r < rows; ++r) {
                    const std::vector<T> xr(x.begin() + r * n, x.begin() + (r + 1) * n);
                    const T m = fixed_order(xr, T(0), plus<T>) * (T(1) / T(n));
                    std::vector<T> d2(n), gv(n), gxh(n);
                    for (std::size_t j = 0; j < n; ++j) d2[j] = (xr[j] - m) * (xr[j] - m);
                    const T rs = T(1) / std::sqrt(fixed_order(d2, T(0), plus<T>) * (T(1) / T(n)) + eps);
                    BOOST_TEST(same_bits(mean[r], m));
                    BOOST_TEST(same_bits(rstd[r], rs));
                    for (std::size_t j = 0; j < n; ++j) {
                        T v = (xr[j] - m) * rs;
                        if (g) v = v * g[j];
                        if (be) v = v + be[j];
                        wy[r * n + j] = v;
                        const T xhat = (xr[j] - m) * rs, gyv = gy[r * n + j];
                        wgg[j] = wgg[j] + gyv * xhat;
                        wgb[j] = wgb[j] + gyv;
                        gv[j] = g ? gyv * g[j] : gyv;
                        gxh[j] = gv[j] * xhat;
                    }
                    const T a = rs * fixed_order(gv, T(0), plus<T>) / T(n);
                    const T c = rs * fixed_order(gxh, T(0), plus<T>) / T(n);
                    for (std::size_t j = 0; j < n; ++j)
                        wgx[r * n + j] = rs * gv[j] - a - (xr[j] - m) * rs * c;
                }
                const std::string at = b.name + ", n = " + std::to_string(n) + ", variant " + std::to_string(variant);
                BOOST_TEST(same_bits(y, wy), at);
                BOOST_TEST(same_bits(gx, wgx), at);
                BOOST_TEST(same_bits(gg, wgg), at);
                BOOST_TEST(same_bits(gb, wgb), at);
                BOOST_TEST(same_bits(gg2, wgg), at);
                BOOST_TEST(same_bits(gb2, wgb), at);
            }
            // softmax's backward rows
            std::vector<T> p = random_row<T>(rows * n, rng, 1), gs(rows * n), want(rows * n);
            b.softmax_rows_backward(p.data(), gy.data(), gs.data(), rows, n);
            for (std::size_t r = 0; r < rows; ++r) {
                std::vector<T> prod(n);
                for (std::size_t j = 0; j < n; ++j) prod[j] = gy[r * n + j] * p[r * n + j];
                const T dot = fixed_order(prod, T(0), plus<T>);
                for (std::size_t j = 0; j < n; ++j) want[r * n + j] = p[r * n + j] * (gy[r * n + j] - dot);
            }
            BOOST_TEST(same_bits(gs, want), b.name << ", softmax_rows_backward, n = " << n);
        }
    }
}

BOOST_AUTO_TEST_CASE(layer_norm_and_softmax_rows_match_scalar_loops) {
    check_layer_norm_and_softmax_rows<float>();
    check_layer_norm_and_softmax_rows<double>();
}

// batch_norm and its backward against the same formulas in scalar loops: the channels of an
// (outer, C, inner) array, inner 1 (columns: sums down the rows in order, every channel count's
// tail of a batch) and inner > 1 (each block in the fixed order, the blocks in turn); with and
// without gamma and beta, gx null or not.
template <class T>
void check_batch_norm() {
    struct Dims {
        std::size_t outer, channels, inner;
    };
    std::mt19937 rng(13);
    for (const Rows<T>& b : builds<T>()) {
        for (const Dims d : {Dims{5, 37, 1}, Dims{3, 4, 1}, Dims{2, 17, 1}, Dims{2, 3, 21}, Dims{3, 2, 16},
                             Dims{2, 5, 33}, Dims{1, 2, 7}}) {
            const std::size_t n = d.outer * d.channels * d.inner, count = d.outer * d.inner;
            const std::vector<T> x = random_row<T>(n, rng, 20), gy = random_row<T>(n, rng),
                                 gamma = random_row<T>(d.channels, rng), beta = random_row<T>(d.channels, rng);
            const T eps = T(1e-5);
            // the elements of channel c, block by block (each block of `inner` in order)
            auto block = [&](const std::vector<T>& v, std::size_t o, std::size_t c) {
                const auto first = v.begin() + static_cast<std::ptrdiff_t>((o * d.channels + c) * d.inner);
                return std::vector<T>(first, first + static_cast<std::ptrdiff_t>(d.inner));
            };
            auto total = [&](const std::vector<T>& row) {
                return d.inner == 1 ? row[0] : fixed_order(row, T(0), plus<T>);
            };
            for (int variant = 0; variant < 4; ++variant) {
                const T* g = variant & 1 ? gamma.data() : nullptr;
                const T* be = variant & 2 ? beta.data() : nullptr;
                std::vector<T> y(n), mean(d.channels), var(d.channels), rstd(d.channels);
                b.batch_norm(x.data(), y.data(), d.outer, d.channels, d.inner, g, be, eps, mean.data(), var.data(),
                             rstd.data());
                std::vector<T> gx(n), sg(d.channels), sgd(d.channels), sg2(d.channels), sgd2(d.channels);
                b.batch_norm_backward(x.data(), gy.data(), gx.data(), d.outer, d.channels, d.inner, mean.data(),
                                      rstd.data(), g, sg.data(), sgd.data());
                b.batch_norm_backward(x.data(), gy.data(), nullptr, d.outer, d.channels, d.inner, mean.data(),
                                      rstd.data(), g, sg2.data(), sgd2.data());
                std::vector<T> wy(n), wgx(n);
                const std::string at = b.name + ", (" + std::to_string(d.outer) + ", " + std::to_string(d.channels) +
                                       ", " + std::to_string(d.inner) + "), variant " + std::to_string(variant);
                for (std::size_t c = 0; c < d.channels; ++c) {
                    T s = T(0), q = T(0), wsg = T(0), wsgd = T(0);
                    for (std::size_t o = 0; o < d.outer; ++o) s = s + total(block(x, o, c));
                    const T m = s / T(count);
                    for (std::size_t o = 0; o < d.outer; ++o) {
                        std::vector<T> sq = block(x, o, c), gd = block(gy, o, c);
                        const std::vector<T> gr = gd;
                        for (std::size_t j = 0; j < d.inner; ++j) {
                            gd[j] = gr[j] * (sq[j] - m);
                            sq[j] = (sq[j] - m) * (sq[j] - m);
                        }
                        q = q + total(sq);
                        wsg = wsg + total(gr);
                        wsgd = wsgd + total(gd);
                    }
                    const T v = q / T(count), r = T(1) / std::sqrt(v + eps);
                    BOOST_TEST(same_bits(mean[c], m), at);
                    BOOST_TEST(same_bits(var[c], v), at);
                    BOOST_TEST(same_bits(rstd[c], r), at);
                    BOOST_TEST(same_bits(sg[c], wsg), at);
                    BOOST_TEST(same_bits(sgd[c], wsgd), at);
                    BOOST_TEST(same_bits(sg2[c], wsg), at);
                    BOOST_TEST(same_bits(sgd2[c], wsgd), at);
                    const T scale = g ? r * g[c] : r, a = wsg / T(count), k = r * r * wsgd / T(count);
                    for (std::size_t o = 0; o < d.outer; ++o)
                        for (std::size_t j = 0; j < d.inner; ++j) {
                            const std::size_t i = (o * d.channels + c) * d.inner + j;
                            T out = (x[i] - m) * scale;
                            if (be) out = out + be[c];
                            wy[i] = out;
                            wgx[i] = (gy[i] - a - (x[i] - m) * k) * scale;
                        }
                }
                BOOST_TEST(same_bits(y, wy), at);
                BOOST_TEST(same_bits(gx, wgx), at);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(batch_norm_matches_scalar_loops) {
    check_batch_norm<float>();
    check_batch_norm<double>();
}

// The LSTM cell's loops, a bias's (fill_rows, add_rows) and relu and its backward (relu,
// relu_grad_rows): the scalar expressions' bits, written and added, at every tail.
template <class T>
void check_lstm_loops() {
    std::mt19937 rng(5);
    for (const Rows<T>& b : builds<T>()) {
        for (std::size_t n : lengths) {
            const std::vector<T> a = random_row<T>(n, rng, 1), c = random_row<T>(n, rng), d = random_row<T>(n, rng),
                                 g = random_row<T>(n, rng), y0 = random_row<T>(n, rng);
            const std::string at = b.name + ", n = " + std::to_string(n);
            for (bool add : {false, true}) {
                std::vector<T> y = y0, want(n);
                b.mul(a.data(), c.data(), y.data(), n, add);
                for (std::size_t i = 0; i < n; ++i) want[i] = add ? T(a[i] * c[i]) + y0[i] : a[i] * c[i];
                BOOST_TEST(same_bits(y, want), at << ", mul, add " << add);
                for (bool tanh_gate : {false, true}) {
                    y = y0;
                    b.gate_grad(a.data(), g.data(), y.data(), n, tanh_gate, add);
                    for (std::size_t i = 0; i < n; ++i) {
                        const T v = tanh_gate ? g[i] * (T(1) - a[i] * a[i]) : g[i] * (a[i] * (T(1) - a[i]));
                        want[i] = add ? v + y0[i] : v;
                    }
                    BOOST_TEST(same_bits(y, want), at << ", gate_grad, tanh " << tanh_gate << ", add " << add);
                }
            }
            std::vector<T> y(n), want(n);
            b.mul_add(a.data(), c.data(), d.data(), g.data(), y.data(), n);
            for (std::size_t i = 0; i < n; ++i) want[i] = T(a[i] * c[i]) + T(d[i] * g[i]);
            BOOST_TEST(same_bits(y, want), at << ", mul_add");
            b.mul_add(a.data(), c.data(), nullptr, nullptr, y.data(), n);
            for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * c[i];
            BOOST_TEST(same_bits(y, want), at << ", mul_add without c");
            b.mul_tanh_grad(g.data(), c.data(), a.data(), y.data(), n);
            for (std::size_t i = 0; i < n; ++i) want[i] = T(g[i] * c[i]) * (T(1) - a[i] * a[i]);
            BOOST_TEST(same_bits(y, want), at << ", mul_tanh_grad");
            // a bias's rows and its gradient: 3 rows of n
            std::vector<T> rows(3 * n, T(-1)), wrows(3 * n), sum = y0, wsum = y0;
            b.fill_rows(a.data(), n, 3, rows.data());
            for (std::size_t i = 0; i < 3 * n; ++i) wrows[i] = a[i % (n ? n : 1)];
            BOOST_TEST(same_bits(rows, wrows), at << ", fill_rows");
            const std::vector<T> x3 = random_row<T>(3 * n, rng);
            b.add_rows(x3.data(), 3, n, sum.data());
            for (std::size_t r = 0; r < 3; ++r)
                for (std::size_t i = 0; i < n; ++i) wsum[i] = wsum[i] + x3[r * n + i];
            BOOST_TEST(same_bits(sum, wsum), at << ", add_rows");
            // relu's backward (linear_relu's, with the bias's sums; conv's, without) at edge
            // outputs (0, -0, NaN) and gradients (inf: 0 * inf is NaN where relu stops it)
            std::vector<T> y3 = random_row<T>(3 * n, rng), g3 = random_row<T>(3 * n, rng);
            const T edges[] = {T(0), -T(0), std::numeric_limits<T>::quiet_NaN(), T(1)};
            for (std::size_t i = 0; i < 3 * n; i += 5) y3[i] = edges[(i / 5) % 4];
            for (std::size_t i = 2; i < 3 * n; i += 7) g3[i] = (i / 7) % 2 ? std::numeric_limits<T>::infinity() : -T(0);
            std::vector<T> h(3 * n), wh(3 * n);
            sum = y0, wsum = y0;
            b.relu_grad_rows(g3.data(), y3.data(), h.data(), 3, n, sum.data());
            for (std::size_t r = 0; r < 3; ++r)
                for (std::size_t i = 0; i < n; ++i) {
                    const std::size_t k = r * n + i;
                    wh[k] = y3[k] > T(0) ? g3[k] : T(0) * g3[k];
                    wsum[i] = wsum[i] + wh[k];
                }
            BOOST_TEST(same_bits(h, wh), at << ", relu_grad_rows");
            BOOST_TEST(same_bits(sum, wsum), at << ", relu_grad_rows' sums");
            std::fill(h.begin(), h.end(), T(-1));
            b.relu_grad_rows(g3.data(), y3.data(), h.data(), 1, 3 * n, nullptr);
            BOOST_TEST(same_bits(h, wh), at << ", relu_grad_rows without sums");
            // relu itself (-0 and NaN stay), into another array and in place
            std::vector<T> r3(3 * n, T(-1)), wr3 = y3;
            for (T& v : wr3) v = v < T(0) ? T(0) : v;
            b.relu(y3.data(), r3.data(), 3 * n);
            BOOST_TEST(same_bits(r3, wr3), at << ", relu");
            r3 = y3;
            b.relu(r3.data(), r3.data(), 3 * n);
            BOOST_TEST(same_bits(r3, wr3), at << ", relu in place");
        }
    }
}

BOOST_AUTO_TEST_CASE(lstm_loops_match_scalar_expressions) {
    check_lstm_loops<float>();
    check_lstm_loops<double>();
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
