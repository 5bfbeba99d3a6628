// conv2d and conv_transpose2d against direct loops written here (the seven-loop convolution and
// its adjoints), for every combination of stride, padding, dilation and groups on odd sizes, with
// and without bias, values and all three gradients, through both of the library's paths (the
// AVX-512 direct loop where it applies, and im2col with GEMM); second derivatives; float32
// against float64; empty batches; large magnitudes; every argument error.
#include <boost/test/unit_test.hpp>

#include <climits>
#include <cmath>
#include <random>
#include <sstream>
#include <string>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xoperation.hpp>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "direct_loop.hpp"
#include "xgrad.hpp"

using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::expect_error;
namespace tt = boost::test_tools;

namespace {

struct Geo {
    long sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
    long oph = 0, opw = 0;  // output_padding (transposed only)
    std::string str() const {
        std::ostringstream os;
        os << "stride (" << sh << ", " << sw << ") padding (" << ph << ", " << pw << ") dilation (" << dh << ", "
           << dw << ") groups " << groups << " output_padding (" << oph << ", " << opw << ")";
        return os.str();
    }
    xg::Conv2dOptions conv() const { return {{sh, sw}, {ph, pw}, {dh, dw}, groups}; }
    xg::ConvTranspose2dOptions conv_t() const { return {{sh, sw}, {ph, pw}, {oph, opw}, groups, {dh, dw}}; }
};

// Uniform in [-scale, scale).
A random_array(const xg::Shape& s, unsigned seed, double scale = 1.0) { return xgt::random_array(s, seed, -scale, scale); }

// The convolution of x (N, C, H, W) with w (O, C / groups, kh, kw) and its gradients for an
// upstream gradient gy, written as the definition says: one loop per index.
struct Reference {
    A y, gx, gw, gb;
};

Reference direct_conv(const A& x, const A& w, const A* b, const A* gy, const Geo& g) {
    const long N = long(x.shape()[0]), C = long(x.shape()[1]), H = long(x.shape()[2]), W = long(x.shape()[3]);
    const long O = long(w.shape()[0]), kh = long(w.shape()[2]), kw = long(w.shape()[3]);
    const long cig = C / g.groups, cog = O / g.groups;
    const long OH = (H + 2 * g.ph - g.dh * (kh - 1) - 1) / g.sh + 1, OW = (W + 2 * g.pw - g.dw * (kw - 1) - 1) / g.sw + 1;
    Reference r;
    r.y = A::from_shape({std::size_t(N), std::size_t(O), std::size_t(OH), std::size_t(OW)});
    r.gx = xt::zeros<double>(x.shape());
    r.gw = xt::zeros<double>(w.shape());
    r.gb = xt::zeros<double>({std::size_t(O)});
    for (long n = 0; n < N; ++n)
        for (long o = 0; o < O; ++o)
            for (long oy = 0; oy < OH; ++oy)
                for (long ox = 0; ox < OW; ++ox) {
                    double acc = b ? (*b)(o) : 0.0;
                    const double gout = gy ? (*gy)(n, o, oy, ox) : 0.0;
                    const long grp = o / cog;
                    for (long c = 0; c < cig; ++c)
                        for (long i = 0; i < kh; ++i)
                            for (long j = 0; j < kw; ++j) {
                                const long iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const long ci = grp * cig + c;
                                acc += x(n, ci, iy, ix) * w(o, c, i, j);
                                r.gx(n, ci, iy, ix) += gout * w(o, c, i, j);
                                r.gw(o, c, i, j) += gout * x(n, ci, iy, ix);
                            }
                    r.y(n, o, oy, ox) = acc;
                    r.gb(o) += gout;
                }
    return r;
}

// The transposed convolution of x (N, C, H, W) with w (C, O / groups, kh, kw): each input pixel
// scatters its kernel-weighted value into the output (dropped outside it).
Reference direct_conv_t(const A& x, const A& w, const A* b, const A* gy, const Geo& g) {
    const long N = long(x.shape()[0]), C = long(x.shape()[1]), H = long(x.shape()[2]), W = long(x.shape()[3]);
    const long cog = long(w.shape()[1]), kh = long(w.shape()[2]), kw = long(w.shape()[3]);
    const long O = cog * g.groups, cig = C / g.groups;
    const long OH = (H - 1) * g.sh - 2 * g.ph + g.dh * (kh - 1) + g.oph + 1;
    const long OW = (W - 1) * g.sw - 2 * g.pw + g.dw * (kw - 1) + g.opw + 1;
    Reference r;
    r.y = xt::zeros<double>({std::size_t(N), std::size_t(O), std::size_t(OH), std::size_t(OW)});
    r.gx = xt::zeros<double>(x.shape());
    r.gw = xt::zeros<double>(w.shape());
    r.gb = xt::zeros<double>({std::size_t(O)});
    for (long n = 0; n < N; ++n)
        for (long o = 0; o < O; ++o)
            for (long oy = 0; oy < OH; ++oy)
                for (long ox = 0; ox < OW; ++ox) {
                    r.y(n, o, oy, ox) = b ? (*b)(o) : 0.0;
                    if (gy) r.gb(o) += (*gy)(n, o, oy, ox);
                }
    for (long n = 0; n < N; ++n)
        for (long c = 0; c < C; ++c)
            for (long iy = 0; iy < H; ++iy)
                for (long ix = 0; ix < W; ++ix)
                    for (long o = 0; o < cog; ++o)
                        for (long i = 0; i < kh; ++i)
                            for (long j = 0; j < kw; ++j) {
                                const long oy = iy * g.sh - g.ph + i * g.dh, ox = ix * g.sw - g.pw + j * g.dw;
                                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                                const long oc = (c / cig) * cog + o;
                                r.y(n, oc, oy, ox) += x(n, c, iy, ix) * w(c, o, i, j);
                                const double gout = gy ? (*gy)(n, oc, oy, ox) : 0.0;
                                r.gx(n, c, iy, ix) += gout * w(c, o, i, j);
                                r.gw(c, o, i, j) += gout * x(n, c, iy, ix);
                            }
    return r;
}

double max_rel_diff(const A& a, const A& b) {
    BOOST_REQUIRE(a.shape() == b.shape());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = std::abs(a.flat(i) - b.flat(i)) / (1 + std::abs(b.flat(i)));
        if (std::isnan(d)) return d;  // a NaN anywhere fails the comparison
        m = std::max(m, d);
    }
    return m;
}

// Runs the op (conv2d or conv_transpose2d) on x, w [, b], backpropagates gy, and compares the
// output and the three gradients with the reference.
template <class Op, class Ref>
void check_against(Op op, Ref ref, const xg::Shape& xs, const xg::Shape& ws, bool with_bias, const Geo& g,
                   unsigned seed, double tol = 1e-12, double scale = 1.0) {
    const A xa = random_array(xs, seed, scale), wa = random_array(ws, seed + 1, scale);
    const std::size_t out_channels = op(V(xa), V(wa), V(), g).shape()[1];
    const A ba = random_array({out_channels}, seed + 2, scale * scale);
    V x(xa, true), w(wa, true), b(ba, true);
    V y = op(x, w, with_bias ? b : V(), g);
    const A gy = random_array(y.shape(), seed + 3);
    const Reference r = ref(xa, wa, with_bias ? &ba : nullptr, &gy, g);
    BOOST_TEST_CONTEXT(g.str() << (with_bias ? " bias" : " no bias") << " x " << xg::shape_str(xs) << " w "
                               << xg::shape_str(ws)) {
        BOOST_TEST(max_rel_diff(y.data(), r.y) <= tol);
        xg::sum(y * V(gy)).backward();
        BOOST_TEST(max_rel_diff(x.grad().data(), r.gx) <= tol);
        BOOST_TEST(max_rel_diff(w.grad().data(), r.gw) <= tol);
        if (with_bias) BOOST_TEST(max_rel_diff(b.grad().data(), r.gb) <= tol);
    }
}

auto run_conv = [](const V& x, const V& w, const V& b, const Geo& g) { return xg::conv2d(x, w, b, g.conv()); };
auto run_conv_t = [](const V& x, const V& w, const V& b, const Geo& g) {
    return xg::conv_transpose2d(x, w, b, g.conv_t());
};

V zeros(std::initializer_list<std::size_t> shape) { return V(A(xt::zeros<double>(std::vector<std::size_t>(shape))), true); }

using xgt::DirectLoopOff;

}  // namespace

BOOST_AUTO_TEST_SUITE(conv)

namespace {

void conv2d_every_combination() {
    // H = 7, W = 6, kernel 3 x 2: odd sizes, so stride 2 drops rows and columns
    unsigned seed = 10;
    for (long s : {1, 2})
        for (long p : {0, 1, 2})
            for (long d : {1, 2})
                for (long groups : {1, 2})
                    for (bool bias : {true, false}) {
                        const Geo g{s, s, p, p, d, d, groups};
                        check_against(run_conv, direct_conv, {2, 4, 7, 6}, {6, std::size_t(4 / groups), 3, 2}, bias, g, seed += 4);
                    }
    // mixed per-axis options, depthwise (groups = C), a 1x1 kernel with and without the pointwise
    // path (stride 1, padding 0: no columns built), a kernel as large as the padded input
    check_against(run_conv, direct_conv, {2, 3, 7, 6}, {4, 3, 3, 2}, true, Geo{2, 1, 0, 1, 1, 2, 1}, 200);
    check_against(run_conv, direct_conv, {2, 3, 7, 6}, {4, 3, 2, 3}, false, Geo{1, 3, 2, 0, 3, 1, 1}, 204);
    check_against(run_conv, direct_conv, {2, 3, 7, 6}, {6, 1, 3, 3}, true, Geo{1, 1, 1, 1, 1, 1, 3}, 208);
    check_against(run_conv, direct_conv, {2, 3, 7, 6}, {3, 1, 3, 2}, false, Geo{2, 2, 1, 1, 1, 1, 3}, 212);
    check_against(run_conv, direct_conv, {2, 4, 7, 6}, {5, 4, 1, 1}, true, Geo{}, 216);
    check_against(run_conv, direct_conv, {2, 4, 7, 6}, {4, 2, 1, 1}, false, Geo{1, 1, 0, 0, 1, 1, 2}, 220);
    check_against(run_conv, direct_conv, {2, 4, 7, 6}, {5, 4, 1, 1}, true, Geo{2, 2, 0, 0, 1, 1, 1}, 224);
    check_against(run_conv, direct_conv, {2, 4, 7, 6}, {5, 4, 1, 1}, true, Geo{1, 1, 1, 1, 1, 1, 1}, 228);
    check_against(run_conv, direct_conv, {1, 2, 3, 2}, {3, 2, 5, 4}, true, Geo{1, 1, 1, 1, 1, 1, 1}, 232);
    check_against(run_conv, direct_conv, {1, 2, 3, 2}, {3, 2, 3, 2}, true, Geo{1, 1, 1, 1, 2, 3, 1}, 236);
    // a stride as large as a long can be: one output position, no overflow in the index arithmetic
    check_against(run_conv, direct_conv, {1, 2, 3, 2}, {3, 2, 2, 2}, true, Geo{LONG_MAX, LONG_MAX, 2, 2, 1, 1, 1}, 240);
}

void conv_transpose2d_every_combination() {
    unsigned seed = 300;
    for (long s : {1, 2})
        for (long p : {0, 1, 2})
            for (long d : {1, 2})
                for (long groups : {1, 2})
                    for (long op : {0, 1}) {
                        if (op >= std::max(s, d)) continue;  // output_padding must be below stride or dilation
                        for (bool bias : {true, false}) {
                            Geo g{s, s, p, p, d, d, groups};
                            g.oph = g.opw = op;
                            check_against(run_conv_t, direct_conv_t, {2, 4, 7, 6}, {4, std::size_t(6 / groups), 3, 2}, bias, g,
                                          seed += 4);
                        }
                    }
    // per-axis options (output_padding on one axis only, one at dilation - 1 above the stride),
    // depthwise, 1x1 (pointwise path and not)
    Geo g{2, 1, 1, 0, 1, 3, 1};
    g.oph = 1;
    g.opw = 2;
    check_against(run_conv_t, direct_conv_t, {2, 3, 7, 6}, {3, 2, 3, 2}, true, g, 500);
    check_against(run_conv_t, direct_conv_t, {2, 3, 5, 4}, {3, 2, 3, 3}, false, Geo{1, 1, 1, 1, 1, 1, 3}, 504);
    check_against(run_conv_t, direct_conv_t, {2, 4, 7, 6}, {4, 3, 1, 1}, true, Geo{}, 508);
    check_against(run_conv_t, direct_conv_t, {2, 4, 7, 6}, {4, 3, 1, 1}, false, Geo{2, 2, 0, 0, 1, 1, 2}, 512);
}

// Sizes that fill every block shape of the direct loop: 11 output channels (blocks of 8, 2 and 1
// channels) and wide rows of several vectors with a partial one at the end, kernels 3 x 3 and
// 5 x 4 with every padding below them, groups, and the transposed op's flipped kernel.
void larger_images() {
    unsigned seed = 600;
    for (long p : {0, 1, 2})
        for (bool bias : {true, false}) {
            check_against(run_conv, direct_conv, {2, 5, 13, 20}, {11, 5, 3, 3}, bias, Geo{1, 1, p, p, 1, 1, 1}, seed += 4);
            check_against(run_conv_t, direct_conv_t, {2, 11, 13, 20}, {11, 5, 3, 3}, bias, Geo{1, 1, p, p, 1, 1, 1},
                          seed += 4);
        }
    // 37 output channels (40 per group): the 3 x 3 loop with the channels in the lanes, rows of 13,
    // 14, 16 and 18 outputs (blocks of 8 or 7 positions and every shorter tail)
    for (long p : {0, 1, 2}) {
        check_against(run_conv, direct_conv, {2, 6, 11, 16}, {37, 6, 3, 3}, true, Geo{1, 1, p, p, 1, 1, 1}, seed += 4);
        check_against(run_conv, direct_conv, {2, 6, 15, 13}, {80, 3, 3, 3}, p == 1, Geo{1, 1, p, p, 1, 1, 2}, seed += 4);
        check_against(run_conv_t, direct_conv_t, {2, 6, 11, 16}, {6, 37, 3, 3}, true, Geo{1, 1, p, p, 1, 1, 1}, seed += 4);
    }
    // 5-wide kernels (SimpleConvNet's 5 x 5, and 3 x 5 with groups): 37 output channels (blocks
    // of 4, 2 and 1 in the weight gradient's loop), 6 per group
    for (long p : {0, 2}) {
        check_against(run_conv, direct_conv, {2, 3, 12, 14}, {37, 3, 5, 5}, true, Geo{1, 1, p, p, 1, 1, 1}, seed += 4);
        check_against(run_conv, direct_conv, {2, 4, 9, 11}, {12, 2, 3, 5}, p == 0, Geo{1, 1, p, p, 1, 1, 2}, seed += 4);
    }
    // the weight gradient's blocks of kernel rows with the channels in the lanes and the rows
    // left over: 5 x 3 kernels (10 rows: blocks of 3 or 6, then 3 and 1), 3 x 5 (9 rows: blocks
    // of 2 or 5, then 2 and 1), 20 output channels (two vectors of doubles, then one), rows of an
    // even and an odd number of outputs; and 4 channels, below half a vector: the output
    // positions in the lanes for a kernel 5 wide
    for (long p : {0, 1})
        for (std::size_t w : {12u, 13u}) {
            check_against(run_conv, direct_conv, {2, 2, 11, w}, {20, 2, 5, 3}, p == 0, Geo{1, 1, p, p, 1, 1, 1}, seed += 4);
            check_against(run_conv, direct_conv, {2, 3, 10, w}, {20, 3, 3, 5}, p == 1, Geo{1, 1, p, p, 1, 1, 1}, seed += 4);
            check_against(run_conv, direct_conv, {2, 3, 10, w}, {4, 3, 3, 5}, p == 1, Geo{1, 1, p, p, 1, 1, 1}, seed += 4);
        }
    // margins of 8 and more (a padded row's zeros fill a whole vector of doubles before it starts)
    check_against(run_conv, direct_conv, {2, 2, 5, 6}, {3, 2, 11, 12}, true, Geo{1, 1, 9, 10, 1, 1, 1}, 690);
    check_against(run_conv_t, direct_conv_t, {2, 3, 13, 15}, {3, 2, 11, 12}, false, Geo{1, 1, 1, 2, 1, 1, 1}, 694);
    check_against(run_conv, direct_conv, {3, 6, 9, 17}, {10, 3, 5, 4}, true, Geo{1, 1, 4, 3, 1, 1, 2}, 700);
    check_against(run_conv, direct_conv, {3, 6, 9, 17}, {10, 3, 5, 4}, false, Geo{1, 1, 2, 1, 1, 1, 2}, 704);
    check_against(run_conv_t, direct_conv_t, {3, 10, 9, 17}, {10, 3, 5, 4}, true, Geo{1, 1, 2, 1, 1, 1, 2}, 708);
}

}  // namespace

BOOST_AUTO_TEST_CASE(conv2d_every_combination_against_direct_loops) { conv2d_every_combination(); }

BOOST_AUTO_TEST_CASE(conv2d_every_combination_against_direct_loops_without_the_direct_loop) {
    const DirectLoopOff off;
    conv2d_every_combination();
}

BOOST_AUTO_TEST_CASE(conv_transpose2d_every_combination_against_direct_loops) { conv_transpose2d_every_combination(); }

BOOST_AUTO_TEST_CASE(conv_transpose2d_every_combination_against_direct_loops_without_the_direct_loop) {
    const DirectLoopOff off;
    conv_transpose2d_every_combination();
}

BOOST_AUTO_TEST_CASE(larger_images_against_direct_loops) {
    larger_images();
    const DirectLoopOff off;
    larger_images();
}

BOOST_AUTO_TEST_CASE(inf_reaches_only_the_weights_that_read_it) {
    // x is zero but for an inf at the right edge of row 2 and one at the left edge of row 4; with
    // padding 1 a 3 x 3 kernel's first column (tap j = 0) never reads the right edge and its last
    // (j = 2) never the left one, so those weight gradients stay 0 (the direct loop's rows of the
    // padded width hand both to those taps' lanes that are not outputs, which must not count)
    auto run = [] {
        A xa = xt::zeros<double>({2, 1, 5, 6});
        xa(1, 0, 2, 5) = INFINITY;
        xa(1, 0, 4, 0) = INFINITY;
        V w(A(xt::ones<double>({3, 1, 3, 3})), true);
        xg::sum(xg::conv2d(V(xa), w, V(), {.padding = 1})).backward();
        const A& g = w.grad().data();
        for (std::size_t k = 0; k < 3; ++k)
            for (std::size_t i = 0; i < 3; ++i) {
                BOOST_TEST(g(k, 0, i, 0) == (i >= 1 ? INFINITY : 0.0));  // the left inf, from kernel row 1
                BOOST_TEST(g(k, 0, i, 1) == INFINITY);
                BOOST_TEST(g(k, 0, i, 2) == INFINITY);  // reads the right one
            }
        // the same with only one of them: the other column stays exactly 0
        A left = xt::zeros<double>({1, 1, 5, 6}), right = left;
        left(0, 0, 4, 0) = INFINITY;
        right(0, 0, 2, 5) = INFINITY;
        for (const A* xa1 : {&left, &right}) {
            V w1(A(xt::ones<double>({2, 1, 3, 3})), true);
            xg::sum(xg::conv2d(V(*xa1), w1, V(), {.padding = 1})).backward();
            const A& g1 = w1.grad().data();
            const std::size_t untouched = xa1 == &left ? 2 : 0;  // the column of taps that never reads it
            for (std::size_t k = 0; k < 2; ++k)
                for (std::size_t i = 0; i < 3; ++i)
                    for (std::size_t j = 0; j < 3; ++j) {
                        const bool reads = j != untouched && (xa1 == &left ? i >= 1 : true);
                        BOOST_TEST(g1(k, 0, i, j) == (reads ? INFINITY : 0.0), "k " << k << " i " << i << " j " << j);
                    }
        }
    };
    run();
    const DirectLoopOff off;
    run();
}

BOOST_AUTO_TEST_CASE(conv2d_gradient_is_conv_transpose2d) {
    // the input gradient of a strided convolution that drops a row and a column equals
    // conv_transpose2d of gy with the output_padding that restores x's size
    const A xa = random_array({2, 3, 8, 7}, 1), wa = random_array({4, 3, 3, 3}, 2);
    V x(xa, true);
    V y = xg::conv2d(x, V(wa), V(), {.stride = 2, .padding = 1});
    BOOST_TEST(y.shape() == xg::Shape({2, 4, 4, 4}));
    const A gy = random_array(y.shape(), 3);
    xg::sum(y * V(gy)).backward();
    const V gx = xg::conv_transpose2d(V(gy), V(wa), V(), {.stride = 2, .padding = 1, .output_padding = {1, 0}});
    BOOST_TEST(gx.shape() == x.shape());
    BOOST_TEST(max_rel_diff(x.grad().data(), gx.data()) <= 1e-14);
}

BOOST_AUTO_TEST_CASE(second_derivatives) {
    // gradgradcheck through both ops and the weight-gradient op, in geometries the op list does
    // not have (output_padding at or above the stride)
    struct Case {
        std::string name;
        xg::VariableFn<double> f;
        std::vector<xg::Shape> shapes;
    };
    const std::vector<Case> cases = {
        {"conv2d",
         [](const std::vector<V>& v) {
             return xg::conv2d(v[0], v[1], v[2], {.stride = {2, 1}, .padding = {0, 1}, .dilation = {1, 2}, .groups = 2});
         },
         {{2, 4, 5, 4}, {4, 2, 2, 3}, {4}}},
        {"conv_transpose2d",
         [](const std::vector<V>& v) {
             return xg::conv_transpose2d(v[0], v[1], v[2],
                                         {.stride = {1, 2}, .padding = 1, .output_padding = 1, .groups = 2,
                                          .dilation = {2, 1}});
         },
         {{2, 4, 5, 4}, {4, 1, 2, 3}, {2}}},
    };
    unsigned seed = 7;
    for (const Case& c : cases) {
        std::vector<V> in;
        for (const xg::Shape& s : c.shapes) in.emplace_back(random_array(s, seed++), true);
        BOOST_TEST_CONTEXT(c.name) {
            const auto r1 = xg::gradcheck(c.f, in);
            BOOST_TEST(r1.ok, r1.str());
            const auto r2 = xg::gradgradcheck(c.f, in);
            BOOST_TEST(r2.ok, r2.str());
        }
    }
}

// conv2d_relu's backward (not recorded) takes the images a chunk at a time: its gradients must be
// those of relu(conv2d(...)) run as two ops, bit for bit for x and w (the bias sums the same
// numbers per image first: to rounding), over several chunks (37 images of 65 KB of output: 8 to
// a chunk, the weight gradient's at most 16), for each set of inputs that want a gradient, with
// the direct loop and without.
void conv2d_relu_backward_in_chunks() {
    const A xs = random_array({37, 2, 30, 34}, 40), ws = random_array({8, 2, 3, 3}, 41), bs = random_array({8}, 42);
    const A gys = random_array({37, 8, 30, 34}, 43);
    for (int wanted : {7, 1, 2, 4, 3}) {  // bits: x, w, b
        BOOST_TEST_CONTEXT("inputs wanting a gradient " << wanted) {
            auto run = [&](bool fused) {
                V x(xs, (wanted & 1) != 0), w(ws, (wanted & 2) != 0), b(bs, (wanted & 4) != 0);
                const V y = fused ? xg::conv2d_relu(x, w, b, {.padding = 1}) : xg::relu(xg::conv2d(x, w, b, {.padding = 1}));
                xg::sum(y * V(gys)).backward();
                const A none = A::from_shape({0});
                return std::vector<A>{y.data(), x.has_grad() ? x.grad().data() : none,
                                      w.has_grad() ? w.grad().data() : none, b.has_grad() ? b.grad().data() : none};
            };
            const std::vector<A> fused = run(true), apart = run(false);
            BOOST_TEST(fused[0] == apart[0], tt::per_element());
            for (int i : {1, 2}) {
                BOOST_TEST(fused[i].size() == (wanted & (1 << (i - 1)) ? apart[i].size() : 0));
                BOOST_TEST(fused[i] == apart[i], tt::per_element());
            }
            BOOST_TEST(fused[3].size() == apart[3].size());
            if (wanted & 4) BOOST_TEST(xgt::close(fused[3], apart[3], 1e-12));
        }
    }
}

BOOST_AUTO_TEST_CASE(conv2d_relu_backward_in_chunks_is_the_composed_backward) { conv2d_relu_backward_in_chunks(); }

BOOST_AUTO_TEST_CASE(conv2d_relu_backward_in_chunks_is_the_composed_backward_without_the_direct_loop) {
    const DirectLoopOff off;
    conv2d_relu_backward_in_chunks();
}

BOOST_AUTO_TEST_CASE(float32_close_to_float64) {
    const A xa = random_array({3, 4, 9, 8}, 21), wa = random_array({6, 2, 3, 3}, 22), ba = random_array({6}, 23);
    const xg::Conv2dOptions o{.stride = 2, .padding = 1, .dilation = 1, .groups = 2};
    using F = xg::Variable<float>;
    using AF = xg::Array<float>;
    V x(xa, true), w(wa, true), b(ba, true);
    F xf(AF(xt::cast<float>(xa)), true), wf(AF(xt::cast<float>(wa)), true), bf(AF(xt::cast<float>(ba)), true);
    V y = xg::conv2d(x, w, b, o);
    F yf = xg::conv2d(xf, wf, bf, o);
    const A gy = random_array(y.shape(), 24);
    xg::sum(y * V(gy)).backward();
    xg::sum(yf * F(AF(xt::cast<float>(gy)))).backward();
    auto close = [](const AF& f, const A& d) { return max_rel_diff(A(xt::cast<double>(f)), d) <= 1e-5; };
    BOOST_TEST(close(yf.data(), y.data()));
    BOOST_TEST(close(xf.grad().data(), x.grad().data()));
    BOOST_TEST(close(wf.grad().data(), w.grad().data()));
    BOOST_TEST(close(bf.grad().data(), b.grad().data()));
    // and the transposed op
    const xg::ConvTranspose2dOptions t{.stride = 2, .padding = 1, .output_padding = 1, .groups = 2};
    const A wta = random_array({4, 3, 3, 3}, 25);
    F wtf(AF(xt::cast<float>(wta)), true);
    const AF ytf = xg::conv_transpose2d(xf, wtf, F(), t).data();
    const A yt = xg::conv_transpose2d(V(xa), V(wta), V(), t).data();
    BOOST_TEST(close(ytf, yt));
    // stride 1, padding 1, 3 x 3: the direct loop in float (16 lanes) where the CPU has AVX-512
    const A xs = random_array({2, 16, 14, 14}, 26), ws = random_array({19, 16, 3, 3}, 27), bs = random_array({19}, 28);
    V x1(xs, true), w1(ws, true);
    F x1f(AF(xt::cast<float>(xs)), true), w1f(AF(xt::cast<float>(ws)), true);
    const V y1 = xg::conv2d(x1, w1, V(bs), {.padding = 1});
    const F y1f = xg::conv2d(x1f, w1f, F(AF(xt::cast<float>(bs))), {.padding = 1});
    BOOST_TEST(close(y1f.data(), y1.data()));
    const A gy1 = random_array(y1.shape(), 29);
    xg::sum(y1 * V(gy1)).backward();
    xg::sum(y1f * F(AF(xt::cast<float>(gy1)))).backward();
    BOOST_TEST(close(x1f.grad().data(), x1.grad().data()));
    BOOST_TEST(close(w1f.grad().data(), w1.grad().data()));
    // 40 output channels on rows of 8 and 14: the loop with the channels in the lanes, in float
    for (std::size_t side : {8u, 14u}) {
        const A x2 = random_array({2, 16, side, side}, 30), w2 = random_array({40, 16, 3, 3}, 31);
        const A b2 = random_array({40}, 32);
        const V y2 = xg::conv2d_relu(V(x2), V(w2), V(b2), {.padding = 1});
        const F y2f = xg::conv2d_relu(F(AF(xt::cast<float>(x2))), F(AF(xt::cast<float>(w2))), F(AF(xt::cast<float>(b2))),
                                      {.padding = 1});
        BOOST_TEST(close(y2f.data(), y2.data()), "side " << side);
    }
    // SimpleConvNet's 5 x 5 convolution of one channel into 30: its weight gradient in float
    const A x3 = random_array({3, 1, 16, 16}, 33), w3 = random_array({30, 1, 5, 5}, 34);
    const A gy3 = random_array({3, 30, 12, 12}, 35);
    V x3d(x3), w3d(w3, true);
    F x3f(AF(xt::cast<float>(x3))), w3f(AF(xt::cast<float>(w3)), true);
    xg::sum(xg::conv2d(x3d, w3d, V()) * V(gy3)).backward();
    xg::sum(xg::conv2d(x3f, w3f, F()) * F(AF(xt::cast<float>(gy3)))).backward();
    BOOST_TEST(close(w3f.grad().data(), w3d.grad().data()));
}

BOOST_AUTO_TEST_CASE(empty_batch) {
    V x = zeros({0, 4, 7, 6}), w(random_array({6, 2, 3, 2}, 31), true), b(random_array({6}, 32), true);
    V y = xg::conv2d(x, w, b, {.stride = 2, .padding = 1, .groups = 2});
    BOOST_TEST(y.shape() == xg::Shape({0, 6, 4, 4}));
    xg::sum(y).backward();
    BOOST_TEST(x.grad().shape() == x.shape());
    BOOST_TEST(w.grad().data() == A(xt::zeros<double>(w.shape())));
    BOOST_TEST(b.grad().data() == A(xt::zeros<double>({6})));

    V xt_ = zeros({0, 6, 4, 4}), wt(random_array({6, 2, 3, 2}, 33), true), bt(random_array({4}, 34), true);
    V yt = xg::conv_transpose2d(xt_, wt, bt, {.stride = 2, .padding = 1, .output_padding = 1, .groups = 2});
    BOOST_TEST(yt.shape() == xg::Shape({0, 4, 8, 7}));
    xg::sum(yt).backward();
    BOOST_TEST(xt_.grad().shape() == xt_.shape());
    BOOST_TEST(wt.grad().data() == A(xt::zeros<double>(wt.shape())));
    BOOST_TEST(bt.grad().data() == A(xt::zeros<double>({4})));
}

BOOST_AUTO_TEST_CASE(zero_channels) {
    // no input channels: the output is the bias
    const V y = xg::conv2d(zeros({2, 0, 5, 5}), zeros({3, 0, 3, 3}), V(A{1.0, 2.0, 3.0}));
    BOOST_TEST(y.shape() == xg::Shape({2, 3, 3, 3}));
    BOOST_TEST(y.data()(1, 2, 2, 2) == 3.0);
}

BOOST_AUTO_TEST_CASE(large_magnitudes) {
    // values near 1e150 (products near 1e300) and near 1e-150 stay finite and exact to rounding
    for (double scale : {1e150, 1e-150}) {
        BOOST_TEST_CONTEXT("scale " << scale) {
            check_against(run_conv, direct_conv, {2, 4, 7, 6}, {4, 2, 3, 2}, true, Geo{2, 2, 1, 1, 1, 1, 2}, 40, 1e-12,
                          scale);
            Geo g{2, 2, 1, 1, 1, 1, 2};
            g.oph = g.opw = 1;
            check_against(run_conv_t, direct_conv_t, {2, 4, 7, 6}, {4, 3, 3, 2}, true, g, 44, 1e-12, scale);
        }
    }
    // NaN spreads to the outputs whose windows read it, and no further
    A xa = xt::zeros<double>({1, 1, 5, 5});
    xa(0, 0, 0, 0) = std::nan("");
    const A y = xg::conv2d(V(xa), V(A(xt::ones<double>({1, 1, 3, 3})))).data();
    BOOST_TEST(std::isnan(y(0, 0, 0, 0)));
    BOOST_TEST(y(0, 0, 2, 2) == 0.0);
}

BOOST_AUTO_TEST_CASE(conv2d_errors) {
    // not 4-D (the unbatched 3-D input of torch is refused)
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({3, 7, 6}), zeros({4, 3, 3, 3})); },
                                 {"conv2d", "4-D input", "(3, 7, 6)", "unsqueeze"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({1, 1, 3, 7, 6}), zeros({4, 3, 3, 3})); },
                                 {"conv2d", "4-D input", "(1, 1, 3, 7, 6)"});
    // conv2d_relu runs the same checks under its own name
    expect_error<xg::ShapeError>([] { xg::conv2d_relu(zeros({3, 7, 6}), zeros({4, 3, 3, 3})); },
                                 {"conv2d_relu", "4-D input", "(3, 7, 6)"});
    expect_error<xg::ShapeError>([] { xg::conv2d_relu(zeros({2, 4, 7, 6}), zeros({4, 3, 3, 3})); },
                                 {"conv2d_relu", "4 channels", "(2, 4, 7, 6)", "(4, 3, 3, 3)"});
    expect_error<xg::ValueError>([] { xg::conv2d_relu(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 3}), {}, {.stride = 0}); },
                                 {"conv2d_relu", "stride"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3})); },
                                 {"conv2d", "4-D weight", "(4, 3, 3)", "(2, 3, 7, 6)"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 0, 3})); },
                                 {"conv2d", "empty kernel", "(4, 3, 0, 3)"});
    // channels
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 2, 3, 3})); },
                                 {"conv2d", "3 channels", "(2, 3, 7, 6)", "(4, 2, 3, 3)"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 4, 7, 6}), zeros({4, 4, 3, 3}), V(), {.groups = 2}); },
                                 {"conv2d", "4 channels", "2 groups", "(2, 4, 7, 6)", "(4, 4, 3, 3)"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 1, 3, 3}), V(), {.groups = 2}); },
                                 {"conv2d", "groups 2 does not divide", "(2, 3, 7, 6)", "(4, 1, 3, 3)"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 4, 7, 6}), zeros({3, 2, 3, 3}), V(), {.groups = 2}); },
                                 {"conv2d", "groups 2 does not divide", "3 output channels", "(3, 2, 3, 3)"});
    // options
    for (long groups : {0L, -1L})
        expect_error<xg::ValueError>(
            [groups] { xg::conv2d(zeros({2, 4, 7, 6}), zeros({4, 4, 3, 3}), V(), {.groups = groups}); },
            {"conv2d", "groups must be positive", std::to_string(groups), "(2, 4, 7, 6)"});
    expect_error<xg::ValueError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 3}), V(), {.stride = {0, 1}}); },
                                 {"conv2d", "stride", "(0, 1)", "(2, 3, 7, 6)", "(4, 3, 3, 3)"});
    expect_error<xg::ValueError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 3}), V(), {.stride = -2}); },
                                 {"conv2d", "stride", "(-2, -2)"});
    expect_error<xg::ValueError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 3}), V(), {.padding = {1, -1}}); },
                                 {"conv2d", "padding", "(1, -1)"});
    expect_error<xg::ValueError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 3}), V(), {.dilation = 0}); },
                                 {"conv2d", "dilation", "(0, 0)"});
    // kernel larger than the padded input, by size or by dilation
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 2, 6}), zeros({4, 3, 3, 3})); },
                                 {"conv2d", "padded input", "(2, 6)", "(4, 3, 3, 3)"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 2, 6}), zeros({4, 3, 3, 3}), V(), {.padding = {0, 1}}); },
                                 {"conv2d", "padded input", "(2, 8)"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 3}), V(), {.dilation = 3}); },
                                 {"conv2d", "padded input", "dilation (3, 3)", "(7, 6)"});
    // bias
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 3}), zeros({3})); },
                                 {"conv2d", "bias of shape (3,)", "(4,)"});
    expect_error<xg::ShapeError>([] { xg::conv2d(zeros({2, 3, 7, 6}), zeros({4, 3, 3, 3}), zeros({4, 1})); },
                                 {"conv2d", "bias of shape (4, 1)"});
    // sizes that overflow: in the output size's arithmetic, and in the output's element count
    expect_error<xg::ResourceError>([] { xg::conv2d(zeros({1, 1, 1, 1}), zeros({1, 1, 1, 1}), V(), {.padding = LONG_MAX / 2 + 1}); },
                                    {"conv2d", "overflow", "(1, 1, 1, 1)"});
    expect_error<xg::ResourceError>([] { xg::conv2d(zeros({1, 1, 1, 1}), zeros({1, 1, 2, 1}), V(), {.dilation = {LONG_MAX, 1}}); },
                                    {"conv2d", "overflow", "(1, 1, 2, 1)"});
    expect_error<xg::ResourceError>([] { xg::conv2d(zeros({1, 1, 1, 1}), zeros({1, 1, 1, 1}), V(), {.padding = 1L << 40}); },
                                    {"conv2d", "more elements"});
}

BOOST_AUTO_TEST_CASE(conv_transpose2d_errors) {
    expect_error<xg::ShapeError>([] { xg::conv_transpose2d(zeros({3, 7, 6}), zeros({3, 4, 3, 3})); },
                                 {"conv_transpose2d", "4-D input", "(3, 7, 6)", "unsqueeze"});
    expect_error<xg::ShapeError>([] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 4, 3})); },
                                 {"conv_transpose2d", "4-D weight", "(3, 4, 3)"});
    expect_error<xg::ShapeError>([] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({4, 2, 3, 3})); },
                                 {"conv_transpose2d", "3 channels", "(2, 3, 7, 6)", "(4, 2, 3, 3)"});
    expect_error<xg::ShapeError>(
        [] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 2, 3, 3}), V(), {.groups = 2}); },
        {"conv_transpose2d", "groups 2 does not divide", "(2, 3, 7, 6)"});
    expect_error<xg::ValueError>(
        [] { xg::conv_transpose2d(zeros({2, 4, 7, 6}), zeros({4, 2, 3, 3}), V(), {.groups = 0}); },
        {"conv_transpose2d", "groups must be positive"});
    expect_error<xg::ValueError>([] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 2, 3, 3}), V(), {.stride = 0}); },
                                 {"conv_transpose2d", "stride", "(0, 0)"});
    expect_error<xg::ValueError>(
        [] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 2, 3, 3}), V(), {.padding = -1}); },
        {"conv_transpose2d", "padding", "(-1, -1)"});
    expect_error<xg::ValueError>(
        [] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 2, 3, 3}), V(), {.dilation = {1, 0}}); },
        {"conv_transpose2d", "dilation", "(1, 0)"});
    // output_padding: below max(stride, dilation), not negative
    expect_error<xg::ValueError>(
        [] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 2, 3, 3}), V(), {.stride = 2, .output_padding = 2}); },
        {"conv_transpose2d", "output_padding (2, 2)", "stride (2, 2)", "dilation (1, 1)"});
    expect_error<xg::ValueError>(
        [] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 2, 3, 3}), V(), {.output_padding = {0, 1}}); },
        {"conv_transpose2d", "output_padding (0, 1)"});
    expect_error<xg::ValueError>(
        [] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 2, 3, 3}), V(), {.output_padding = -1}); },
        {"conv_transpose2d", "output_padding (-1, -1)"});
    // an output size that is not positive; bias; overflow
    expect_error<xg::ShapeError>(
        [] { xg::conv_transpose2d(zeros({1, 1, 1, 1}), zeros({1, 1, 1, 1}), V(), {.padding = 1}); },
        {"conv_transpose2d", "output size (-1, -1)", "(1, 1, 1, 1)"});
    expect_error<xg::ShapeError>([] { xg::conv_transpose2d(zeros({2, 3, 7, 6}), zeros({3, 2, 3, 3}), zeros({3})); },
                                 {"conv_transpose2d", "bias of shape (3,)", "(2,)"});
    expect_error<xg::ResourceError>(
        [] { xg::conv_transpose2d(zeros({1, 1, 2, 2}), zeros({1, 1, 1, 1}), V(), {.stride = LONG_MAX}); },
        {"conv_transpose2d", "overflow", "(1, 1, 2, 2)"});
    expect_error<xg::ResourceError>(
        [] { xg::conv_transpose2d(zeros({1, 1, 2, 2}), zeros({1, 1, 1, 1}), V(), {.stride = 1L << 40}); },
        {"conv_transpose2d", "more elements"});
}

BOOST_AUTO_TEST_SUITE_END()
