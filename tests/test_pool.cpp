// max_pool2d, avg_pool2d and adaptive_avg_pool2d against direct loops written here (values and
// gradients, every combination of kernel, stride and padding on odd sizes), their edge values
// (ties, NaN, -inf, large magnitudes, empty batch), their double backward, and their errors.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "direct_loop.hpp"
#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::expect_error;

namespace {

using xgt::random_array;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Equal shapes, and every element within tol (relative to 1 + |want|); NaN only where want is.
bool close(const A& got, const A& want, double tol = 1e-13) {
    if (got.shape() != want.shape()) return false;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double g = got.flat(i), w = want.flat(i);
        if (std::isnan(w) != std::isnan(g)) return false;
        if (std::isnan(w) || g == w) continue;
        if (!(std::abs(g - w) <= tol * (1 + std::abs(w)))) return false;
    }
    return true;
}

// One pool's geometry, written out as torch documents it.
struct Geometry {
    long kh, kw, sh, sw, ph, pw;
    long oh(long h) const { return (h + 2 * ph - kh) / sh + 1; }
    long ow(long w) const { return (w + 2 * pw - kw) / sw + 1; }
};

Geometry geometry(const xg::Pool2dOptions& o) {
    const xg::Size2 s = o.stride.value_or(o.kernel);
    return {o.kernel.h, o.kernel.w, s.h, s.w, o.padding.h, o.padding.w};
}

struct Reference {
    A y, gx;    // the pool's output, and the gradient of sum(y * gy) for x
    A picked;   // max pool: another array's values at x's argmax
};

// max_pool2d by the definition: padding is -inf; the first maximum in row-major order (or the
// last NaN) takes the gradient.
Reference max_pool_reference(const A& x, const xg::Pool2dOptions& o, const A& gy, const A* pick = nullptr) {
    const Geometry g = geometry(o);
    const long n = long(x.shape()[0]), c = long(x.shape()[1]), h = long(x.shape()[2]), w = long(x.shape()[3]);
    const long oh = g.oh(h), ow = g.ow(w);
    Reference r{A::from_shape({std::size_t(n), std::size_t(c), std::size_t(oh), std::size_t(ow)}),
                xg::full<double>(x.shape(), 0.0), xg::full<double>(gy.shape(), 0.0)};
    for (long b = 0; b < n; ++b)
        for (long ch = 0; ch < c; ++ch)
            for (long i = 0; i < oh; ++i)
                for (long j = 0; j < ow; ++j) {
                    // torch's CPU kernel: start at -inf with the first element of the window,
                    // move to anything greater, or to a NaN
                    double best = -kInf;
                    long bi = std::max(i * g.sh - g.ph, 0L), bj = std::max(j * g.sw - g.pw, 0L);
                    for (long u = 0; u < g.kh; ++u)
                        for (long v = 0; v < g.kw; ++v) {
                            const long yy = i * g.sh - g.ph + u, xx = j * g.sw - g.pw + v;
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                            const double val = x(b, ch, yy, xx);
                            if (val > best || std::isnan(val)) best = val, bi = yy, bj = xx;
                        }
                    r.y(b, ch, i, j) = best;
                    r.gx(b, ch, bi, bj) += gy(b, ch, i, j);
                    if (pick) r.picked(b, ch, i, j) = (*pick)(b, ch, bi, bj);
                }
    return r;
}

// The mean over windows [r0, r1) x [c0, c1) given per output row and column, divided by
// divisor(i, j).
template <class Rows, class Cols, class Div>
Reference mean_reference(const A& x, long oh, long ow, Rows rows, Cols cols, Div divisor, const A& gy) {
    const long n = long(x.shape()[0]), c = long(x.shape()[1]);
    Reference r{A::from_shape({std::size_t(n), std::size_t(c), std::size_t(oh), std::size_t(ow)}),
                xg::full<double>(x.shape(), 0.0), {}};
    for (long b = 0; b < n; ++b)
        for (long ch = 0; ch < c; ++ch)
            for (long i = 0; i < oh; ++i)
                for (long j = 0; j < ow; ++j) {
                    const auto [r0, r1] = rows(i);
                    const auto [c0, c1] = cols(j);
                    const double d = divisor(i, j);
                    double s = 0;
                    for (long yy = r0; yy < r1; ++yy)
                        for (long xx = c0; xx < c1; ++xx) {
                            s += x(b, ch, yy, xx);
                            r.gx(b, ch, yy, xx) += gy(b, ch, i, j) / d;
                        }
                    r.y(b, ch, i, j) = s / d;
                }
    return r;
}

// avg_pool2d: the window clipped to the input, divided by the kernel's area (padding counted)
// or by the clipped area.
Reference avg_pool_reference(const A& x, const xg::Pool2dOptions& o, bool count_include_pad, const A& gy) {
    const Geometry g = geometry(o);
    const long h = long(x.shape()[2]), w = long(x.shape()[3]);
    auto rows = [&](long i) {
        const long s = i * g.sh - g.ph;
        return std::pair{std::max(s, 0L), std::min(s + g.kh, h)};
    };
    auto cols = [&](long j) {
        const long s = j * g.sw - g.pw;
        return std::pair{std::max(s, 0L), std::min(s + g.kw, w)};
    };
    auto divisor = [&](long i, long j) {
        if (count_include_pad) return double(g.kh * g.kw);
        const auto [r0, r1] = rows(i);
        const auto [c0, c1] = cols(j);
        return double((r1 - r0) * (c1 - c0));
    };
    return mean_reference(x, g.oh(h), g.ow(w), rows, cols, divisor, gy);
}

// adaptive_avg_pool2d: rows floor(i H / OH) to ceil((i + 1) H / OH), likewise columns.
Reference adaptive_reference(const A& x, long oh, long ow, const A& gy) {
    const long h = long(x.shape()[2]), w = long(x.shape()[3]);
    auto rows = [&](long i) { return std::pair{i * h / oh, ((i + 1) * h + oh - 1) / oh}; };
    auto cols = [&](long j) { return std::pair{j * w / ow, ((j + 1) * w + ow - 1) / ow}; };
    auto divisor = [&](long i, long j) {
        const auto [r0, r1] = rows(i);
        const auto [c0, c1] = cols(j);
        return double((r1 - r0) * (c1 - c0));
    };
    return mean_reference(x, oh, ow, rows, cols, divisor, gy);
}

// xgrad's output and gradient of sum(y * gy) for x.
template <class F>
Reference run(F pool, const A& x, unsigned gy_seed) {
    const V xv(x, true);
    const V y = pool(xv);
    const A gy = random_array(y.shape(), gy_seed, -1.0, 1.0);
    const V gx = xg::grad(y, {xv}, V(gy))[0];
    return {y.data(), gx.data(), {}};
}

std::string describe(const xg::Pool2dOptions& o) {
    const Geometry g = geometry(o);
    return "kernel (" + std::to_string(g.kh) + ", " + std::to_string(g.kw) + "), stride (" + std::to_string(g.sh) +
           ", " + std::to_string(g.sw) + "), padding (" + std::to_string(g.ph) + ", " + std::to_string(g.pw) + ")";
}

// kernel {2, 3, (2, 3)} x stride {1, 2, default} x padding {0, 1}.
std::vector<xg::Pool2dOptions> option_grid() {
    std::vector<xg::Pool2dOptions> out;
    for (xg::Size2 k : {xg::Size2(2), xg::Size2(3), xg::Size2(2, 3)})
        for (std::optional<xg::Size2> s : {std::optional<xg::Size2>(1), std::optional<xg::Size2>(2),
                                           std::optional<xg::Size2>()})
            for (long p : {0L, 1L}) out.push_back({k, s, p});
    return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(pool)

BOOST_AUTO_TEST_CASE(max_pool_matches_direct_loops) {
    const A x = random_array({2, 3, 7, 5}, 1);
    unsigned seed = 10;
    for (const auto& o : option_grid()) {
        const Reference got = run([&](const V& v) { return xg::max_pool2d(v, o); }, x, ++seed);
        const Reference want = max_pool_reference(x, o, random_array(got.y.shape(), seed, -1.0, 1.0));
        BOOST_TEST(close(got.y, want.y), describe(o));
        BOOST_TEST(close(got.gx, want.gx), describe(o));
        BOOST_TEST(close(xg::max_pool2d(V(x), o).data(), want.y), describe(o));  // not recorded: no argmax kept
    }
    // a non-square stride and padding
    const xg::Pool2dOptions o{{3, 2}, xg::Size2(2, 1), xg::Size2(1, 0)};
    const Reference got = run([&](const V& v) { return xg::max_pool2d(v, o); }, x, 99);
    const Reference want = max_pool_reference(x, o, random_array(got.y.shape(), 99, -1.0, 1.0));
    BOOST_TEST(close(got.y, want.y));
    BOOST_TEST(close(got.gx, want.gx));
}

BOOST_AUTO_TEST_CASE(max_pool_2x2_fast_path_on_ties_and_nan) {
    // The 2x2, stride 2, padding 0 pool has a path of its own (pairs, then the pairs' maxima):
    // on values with many ties, NaN and infinities it must pick exactly the reference's element,
    // float and double, recorded or not, and odd sizes drop the last row and column.
    A x = random_array({2, 3, 7, 9}, 5, 0.0, 3.0);
    for (double& v : x) v = std::floor(v);  // 0, 1, 2: most windows hold ties
    x(0, 0, 0, 1) = kNaN;
    x(0, 0, 1, 0) = kNaN;
    x(1, 2, 2, 2) = kInf;
    x(1, 2, 3, 3) = -kInf;
    const Reference got = run([](const V& v) { return xg::max_pool2d(v, {2}); }, x, 7);
    const Reference want = max_pool_reference(x, {2}, random_array(got.y.shape(), 7, -1.0, 1.0));
    BOOST_TEST(close(got.y, want.y));
    BOOST_TEST(close(got.gx, want.gx));
    BOOST_TEST(close(xg::max_pool2d(V(x), {2}).data(), want.y));
    const xg::Variable<float> xf(xg::Array<float>(xt::cast<float>(x)), true);
    const xg::Variable<float> yf = xg::max_pool2d(xf, {2});
    yf.backward(xg::Variable<float>(xg::Array<float>(xt::cast<float>(random_array(yf.shape(), 7, -1.0, 1.0)))));
    BOOST_TEST(close(A(xt::cast<double>(yf.data())), want.y));
    BOOST_TEST(close(A(xt::cast<double>(xf.grad().data())), want.gx, 1e-6));
}

// The 2x2 pool's AVX-512 loop (16 floats, 8 doubles at a time, ops/conv_direct_avx512.cpp) and
// the portable one must give the same bits: values, the gradient's scatter and its double
// backward (the select), on every width from 2 to 41 (whole vectors and every tail), odd heights,
// and values full of ties, NaN and infinities; float and double.
template <class T>
void max_pool_2x2_paths_agree() {
    using VT = xg::Variable<T>;
    using AT = xg::Array<T>;
    struct Out {
        AT y, gx, ggy;
    };
    for (std::size_t w = 2; w <= 41; ++w)
        for (std::size_t h : {2u, 5u}) {
            A x = random_array({2, 3, h, w}, unsigned(w * 10 + h), 0.0, 3.0);
            for (double& v : x) v = std::floor(v);
            x(0, 1, 0, w - 1) = kNaN;
            x(1, 0, h - 1, 0) = kInf;
            x(1, 2, 1, w / 2) = -kInf;
            x(0, 2, h - 1, w - 2) = kNaN;
            const AT xa(xt::cast<T>(x));
            const auto run = [&](bool direct) {
                std::optional<xgt::DirectLoopOff> off;
                if (!direct) off.emplace();
                const VT xv(xa, true);
                const VT y = xg::max_pool2d(xv, {2});
                const VT gy(AT(xt::cast<T>(random_array(y.shape(), 3, -1.0, 1.0))), true);
                const VT gx = xg::grad(y, {xv}, gy, {.create_graph = true})[0];
                const VT ggx(AT(xt::cast<T>(random_array(gx.shape(), 4, -1.0, 1.0))));
                const VT ggy = xg::grad(gx, {gy}, ggx)[0];
                return Out{y.data(), gx.data(), ggy.data()};
            };
            const Out fast = run(true), portable = run(false);
            const auto same = [](const AT& a, const AT& b) {
                return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
            };
            BOOST_TEST(same(fast.y, portable.y), "width " << w << ", height " << h);
            BOOST_TEST(same(fast.gx, portable.gx), "width " << w << ", height " << h);
            BOOST_TEST(same(fast.ggy, portable.ggy), "width " << w << ", height " << h);
        }
}

BOOST_AUTO_TEST_CASE(max_pool_2x2_avx512_and_portable_loops_agree) {
    max_pool_2x2_paths_agree<float>();
    max_pool_2x2_paths_agree<double>();
}

BOOST_AUTO_TEST_CASE(avg_pool_matches_direct_loops) {
    const A x = random_array({2, 3, 7, 5}, 2);
    unsigned seed = 20;
    for (bool include : {true, false})
        for (const auto& o : option_grid()) {
            const Reference got = run([&](const V& v) { return xg::avg_pool2d(v, o, include); }, x, ++seed);
            const Reference want = avg_pool_reference(x, o, include, random_array(got.y.shape(), seed, -1.0, 1.0));
            BOOST_TEST(close(got.y, want.y), describe(o) << " count_include_pad " << include);
            BOOST_TEST(close(got.gx, want.gx), describe(o) << " count_include_pad " << include);
        }
}

BOOST_AUTO_TEST_CASE(avg_pool_count_include_pad) {
    // ones, kernel 2, padding 1 on 3 x 3: corner windows hold one element, edge windows two
    const V x(xg::full<double>({1, 1, 3, 3}, 1.0));
    BOOST_TEST(close(xg::avg_pool2d(x, {2, 2, 1}).data(), A{{{{0.25, 0.5}, {0.5, 1.0}}}}));
    BOOST_TEST(close(xg::avg_pool2d(x, {2, 2, 1}, false).data(), A{{{{1.0, 1.0}, {1.0, 1.0}}}}));
}

BOOST_AUTO_TEST_CASE(adaptive_matches_direct_loops) {
    unsigned seed = 30;
    // sizes that divide, that do not (7 -> 3: overlapping windows), output larger than the
    // input (3 -> 5), and the global mean (-> 1)
    const std::vector<std::pair<xg::Shape, xg::Size2>> cases = {
        {{2, 3, 6, 4}, {3, 2}}, {{2, 3, 7, 5}, {3, 2}}, {{1, 2, 3, 4}, {5, 7}},
        {{2, 2, 5, 7}, 1},      {{1, 1, 7, 7}, {7, 7}}, {{1, 1, 11, 3}, {4, 3}},
    };
    for (const auto& [shape, out] : cases) {
        const A x = random_array(shape, ++seed);
        const Reference got = run([&](const V& v) { return xg::adaptive_avg_pool2d(v, out); }, x, seed + 100);
        const Reference want = adaptive_reference(x, out.h, out.w, random_array(got.y.shape(), seed + 100, -1.0, 1.0));
        BOOST_TEST(close(got.y, want.y), xg::shape_str(shape) << " -> (" << out.h << ", " << out.w << ")");
        BOOST_TEST(close(got.gx, want.gx), xg::shape_str(shape) << " -> (" << out.h << ", " << out.w << ")");
    }
    // 7 -> 3: windows rows [0, 3), [2, 5), [4, 7)
    A x = A::from_shape({1, 1, 7, 1});
    for (std::size_t i = 0; i < 7; ++i) x(0, 0, i, 0) = double(i);
    A want = {1.0, 3.0, 5.0};
    want.reshape({1, 1, 3, 1});
    BOOST_TEST(close(xg::adaptive_avg_pool2d(V(x), {3, 1}).data(), want));
}

BOOST_AUTO_TEST_CASE(max_pool_ties_go_to_the_first_maximum) {
    // As torch's CPU kernel: of equal maxima the first in row-major order takes all the gradient.
    const A x = {{{{1.0, 3.0, 3.0, 0.0}, {3.0, 2.0, 3.0, 3.0}, {0.0, 0.0, 5.0, 5.0}, {0.0, 0.0, 5.0, 5.0}}}};
    const Reference got = run([](const V& v) { return xg::max_pool2d(v, {2}); }, x, 1);
    BOOST_TEST(close(got.y, A{{{{3.0, 3.0}, {0.0, 5.0}}}}));
    const A gy = random_array({1, 1, 2, 2}, 1, -1.0, 1.0);
    A want = xg::full<double>({1, 1, 4, 4}, 0.0);
    want(0, 0, 0, 1) = gy(0, 0, 0, 0);
    want(0, 0, 0, 2) = gy(0, 0, 0, 1);
    want(0, 0, 2, 0) = gy(0, 0, 1, 0);  // a window of zeros: its first element
    want(0, 0, 2, 2) = gy(0, 0, 1, 1);
    BOOST_TEST(close(got.gx, want));
    // overlapping windows (stride 1) over a constant: each window's first element
    const Reference flat = run([](const V& v) { return xg::max_pool2d(v, {2, 1}); }, xg::full<double>({1, 1, 3, 3}, 2.0), 2);
    const A g2 = random_array({1, 1, 2, 2}, 2, -1.0, 1.0);
    A want2 = xg::full<double>({1, 1, 3, 3}, 0.0);
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < 2; ++j) want2(0, 0, i, j) = g2(0, 0, i, j);
    BOOST_TEST(close(flat.gx, want2));
}

BOOST_AUTO_TEST_CASE(max_pool_nan_and_infinities) {
    // NaN is the maximum of its window (the last NaN, as torch's CPU kernel); -inf windows give
    // -inf with the gradient on their first element; padding never wins, even over -inf.
    const A x = {{{{1.0, kNaN, 2.0, -kInf}, {kNaN, 2.0, -kInf, -kInf}, {kInf, 1.0, -kInf, -kInf}, {0.0, kInf, -kInf, -kInf}}}};
    const Reference got = run([](const V& v) { return xg::max_pool2d(v, {2}); }, x, 3);
    BOOST_TEST(close(got.y, A{{{{kNaN, 2.0}, {kInf, -kInf}}}}));
    const A gy = random_array({1, 1, 2, 2}, 3, -1.0, 1.0);
    A want = xg::full<double>({1, 1, 4, 4}, 0.0);
    want(0, 0, 1, 0) = gy(0, 0, 0, 0);  // the last NaN
    want(0, 0, 0, 2) = gy(0, 0, 0, 1);
    want(0, 0, 2, 0) = gy(0, 0, 1, 0);  // the first +inf
    want(0, 0, 2, 2) = gy(0, 0, 1, 1);  // all -inf: the first element
    BOOST_TEST(close(got.gx, want));
    BOOST_TEST(close(got.gx, max_pool_reference(x, {2}, gy).gx));

    const A ninf = xg::full<double>({1, 1, 2, 2}, -kInf);
    const Reference padded = run([](const V& v) { return xg::max_pool2d(v, {2, 1, 1}); }, ninf, 4);
    BOOST_TEST(close(padded.y, xg::full<double>({1, 1, 3, 3}, -kInf)));
    const A g4 = random_array({1, 1, 3, 3}, 4, -1.0, 1.0);
    BOOST_TEST(close(padded.gx, max_pool_reference(ninf, {2, 1, 1}, g4).gx));
    BOOST_TEST(std::abs(xt::sum(padded.gx)() - xt::sum(g4)()) < 1e-14);  // every gradient lands on x

    // avg: NaN and infinities stay in their windows
    BOOST_TEST(close(xg::avg_pool2d(V(x), {2}).data(), A{{{{kNaN, -kInf}, {kInf, -kInf}}}}));
}

BOOST_AUTO_TEST_CASE(large_magnitudes) {
    // huge and tiny values average without overflow or underflow (sums of values near the
    // largest double overflow to inf, as torch's)
    const A x = {{{{1e300, 3e300, 1e-300, 3e-300, -1e308}, {5e300, 7e300, 5e-300, 7e-300, -1e308}}}};
    BOOST_TEST(close(xg::max_pool2d(V(x), {2}).data(), A{{{{7e300, 7e-300}}}}));
    BOOST_TEST(close(xg::avg_pool2d(V(x), {2}).data(), A{{{{4e300, 4e-300}}}}, 1e-15));
    BOOST_TEST(close(xg::avg_pool2d(V(x), {2, 1}).data(), A{{{{4e300, 2.5e300, 4e-300, -kInf}}}}, 1e-15));
    const A big = xg::full<double>({1, 1, 3, 3}, 1e300);
    BOOST_TEST(close(xg::adaptive_avg_pool2d(V(big), {2, 2}).data(), xg::full<double>({1, 1, 2, 2}, 1e300)));
}

BOOST_AUTO_TEST_CASE(empty_batch_and_float) {
    // N = 0: an empty result of the right shape, and an empty gradient
    for (int op = 0; op < 3; ++op) {
        const V x(xg::full<double>({0, 3, 5, 5}, 0.0), true);
        const V y = op == 0 ? xg::max_pool2d(x, {2}) : op == 1 ? xg::avg_pool2d(x, {3, 1, 1}) : xg::adaptive_avg_pool2d(x, {2, 3});
        const xg::Shape want = op == 0 ? xg::Shape{0, 3, 2, 2} : op == 1 ? xg::Shape{0, 3, 5, 5} : xg::Shape{0, 3, 2, 3};
        BOOST_TEST(xg::shape_str(y.shape()) == xg::shape_str(want));
        const V gx = xg::grad(xg::sum(y), {x})[0];
        BOOST_TEST(xg::shape_str(gx.shape()) == "(0, 3, 5, 5)");
    }
    // float agrees with double
    const A x = random_array({2, 2, 5, 7}, 5);
    const xg::Variable<float> xf(xt::cast<float>(x));
    const A m = xt::cast<double>(xg::max_pool2d(xf, {3, 2, 1}).data());
    BOOST_TEST(close(m, xg::max_pool2d(V(x), {3, 2, 1}).data(), 1e-6));
    const A a = xt::cast<double>(xg::avg_pool2d(xf, {{2, 3}, 1}).data());
    BOOST_TEST(close(a, xg::avg_pool2d(V(x), {{2, 3}, 1}).data(), 1e-6));
    const A ad = xt::cast<double>(xg::adaptive_avg_pool2d(xf, {3, 4}).data());
    BOOST_TEST(close(ad, xg::adaptive_avg_pool2d(V(x), {3, 4}).data(), 1e-6));
}

BOOST_AUTO_TEST_CASE(backward_ops_are_differentiable) {
    // The gradient of each pool is an op of its own, whose gradient for gy is the pool again (the
    // mean's adjoint's adjoint) or, for max_pool2d, v taken at x's argmax: d/dgy <gx(gy), v>.
    const A xa = random_array({2, 2, 5, 6}, 6);
    const A va = random_array({2, 2, 5, 6}, 7);
    const V x(xa, true), v(va, true);
    struct Case {
        std::string name, backward;
        std::function<V(const V&)> f;
    };
    const xg::Pool2dOptions mo{3, 1, 1};
    const std::vector<Case> cases = {
        {"max_pool2d", "max_pool2d_backward", [&](const V& t) { return xg::max_pool2d(t, mo); }},
        {"avg_pool2d", "avg_pool2d_backward", [](const V& t) { return xg::avg_pool2d(t, {3, 2, 1}, false); }},
        {"adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
         [](const V& t) { return xg::adaptive_avg_pool2d(t, {3, 4}); }},
    };
    for (const auto& c : cases) {
        const V y = c.f(x);
        BOOST_TEST(y.creator()->name() == c.name);
        const V gy(random_array(y.shape(), 8), true);
        const V gx = xg::grad(y, {x}, gy, {.create_graph = true})[0];
        BOOST_TEST(gx.creator()->name() == c.backward);
        const V ggy = xg::grad(xg::sum(gx * v), {gy}, {}, {.create_graph = true})[0];
        if (c.name == "max_pool2d") {
            BOOST_TEST(ggy.creator()->name() == "max_pool2d_select");
            BOOST_TEST(close(ggy.data(), max_pool_reference(xa, mo, gy.data(), &va).picked));
        } else {
            BOOST_TEST(ggy.creator()->name() == c.name);
            BOOST_TEST(close(ggy.data(), c.f(v).data()));
        }
        const auto report = xg::gradgradcheck<double>([&](const std::vector<V>& in) { return c.f(in[0]); }, {V(xa, true)});
        BOOST_TEST(report.ok, c.name << "\n" << report.str());
    }
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
    const V x4(xg::full<double>({2, 3, 5, 5}, 0.0));
    const V x3(xg::full<double>({3, 5, 5}, 0.0));
    for (const std::string op : {"max_pool2d", "avg_pool2d"}) {
        const auto pool = [op](const V& x, xg::Pool2dOptions o) {
            return op == "max_pool2d" ? xg::max_pool2d(x, o) : xg::avg_pool2d(x, o);
        };
        expect_error<xg::ShapeError>([&] { pool(x3, {2}); }, {op, "4-D", "(3, 5, 5)", "unsqueeze"});
        expect_error<xg::ShapeError>([&] { pool(V(xg::full<double>({5, 5}, 0.0)), {2}); }, {op, "4-D", "(5, 5)"});
        expect_error<xg::ShapeError>([&] { pool(V(xg::full<double>({2, 3, 0, 5}, 0.0)), {2}); },
                                     {op, "non-empty", "(2, 3, 0, 5)"});
        expect_error<xg::ValueError>([&] { pool(x4, {0}); }, {op, "kernel must be positive", "kernel 0", "(2, 3, 5, 5)"});
        expect_error<xg::ValueError>([&] { pool(x4, {{2, -1}}); }, {op, "kernel must be positive", "(2, -1)"});
        expect_error<xg::ValueError>([&] { pool(x4, {2, 0}); }, {op, "stride must be positive", "stride 0"});
        expect_error<xg::ValueError>([&] { pool(x4, {2, xg::Size2(1, -2)}); }, {op, "stride", "(1, -2)"});
        expect_error<xg::ValueError>([&] { pool(x4, {2, 2, -1}); }, {op, "padding must be >= 0", "padding -1"});
        expect_error<xg::ValueError>([&] { pool(x4, {3, 1, 2}); }, {op, "at most half the kernel", "kernel 3", "padding 2"});
        expect_error<xg::ValueError>([&] { pool(x4, {{4, 2}, 1, {2, 2}}); }, {op, "at most half", "padding 2"});
        expect_error<xg::ShapeError>([&] { pool(x4, {6}); }, {op, "larger than the padded input", "kernel 6", "(2, 3, 5, 5)"});
        expect_error<xg::ShapeError>([&] { pool(x4, {{2, 8}, 1, {0, 1}}); }, {op, "larger than the padded input", "(2, 8)"});
        expect_error<xg::ShapeError>([&] { pool(x4, {std::numeric_limits<long>::max()}); }, {op, "larger than the padded"});
        BOOST_CHECK_NO_THROW(pool(x4, {{7, 6}, 1, {1, 3}}));  // the padded input is 7 x 11
    }
    {
        // a huge kernel with padding of half of it is valid (as torch): one window, no huge loop
        const long k = 1L << 40;
        const V one(A{{{{2.5, -1.0}}}});
        BOOST_TEST(close(xg::max_pool2d(one, {k, 1, k / 2}).data(), A{{{{2.5, 2.5, 2.5}, {2.5, 2.5, 2.5}}}}));
        BOOST_TEST(close(xg::avg_pool2d(one, {k, 1, k / 2}, false).data(), A{{{{0.75, 0.75, 0.75}, {0.75, 0.75, 0.75}}}}));
        // and a huge stride: one window per axis
        const long s = std::numeric_limits<long>::max();
        BOOST_TEST(xg::shape_str(xg::max_pool2d(x4, {3, s, 1}).shape()) == "(2, 3, 1, 1)");
        BOOST_TEST(xg::shape_str(xg::avg_pool2d(x4, {3, s, 1}).shape()) == "(2, 3, 1, 1)");
    }
    expect_error<xg::ShapeError>([&] { xg::adaptive_avg_pool2d(x3, {2, 2}); }, {"adaptive_avg_pool2d", "4-D", "(3, 5, 5)"});
    expect_error<xg::ValueError>([&] { xg::adaptive_avg_pool2d(x4, {0, 2}); },
                                 {"adaptive_avg_pool2d", "output size must be positive", "(0, 2)", "(2, 3, 5, 5)"});
    expect_error<xg::ValueError>([&] { xg::adaptive_avg_pool2d(x4, -1); }, {"adaptive_avg_pool2d", "-1"});
    expect_error<xg::ResourceError>([&] { xg::adaptive_avg_pool2d(x4, {1L << 40, 1L << 30}); }, {"adaptive_avg_pool2d"});
    expect_error<xg::GraphError>([&] { xg::max_pool2d(V(), {2}); }, {"max_pool2d", "undefined"});
}

BOOST_AUTO_TEST_SUITE_END()
