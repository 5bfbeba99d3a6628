// conv2d_relu_max_pool2d against the three ops it fuses (conv2d_relu, then max_pool2d 2x2): the
// output and the input, weight and bias gradients must be the composed ops' very bits, in float
// and double, through both of the convolution's paths (the AVX-512 direct loop and im2col with
// GEMM), on geometries that leave odd rows and columns, groups, a strided convolution, batches of
// several chunks, and edge values (ties, zeros, infinities, NaN); its flattened output against
// flatten(max_pool2d(...), 1); create_graph; the empty batch; the errors; and the pools it does
// not fuse.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "direct_loop.hpp"
#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

using xgt::expect_error;

namespace {

template <class T>
bool same_bits(const xg::Array<T>& a, const xg::Array<T>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
xg::Array<T> cast(const xg::Array<double>& a) {
    return xg::Array<T>(xt::cast<T>(a));
}

struct Case {
    std::string name;
    xg::Shape x, w;
    bool bias = true;
    xg::Conv2dOptions o{};
    // edge values: integers 0..2 in x (ties everywhere), a negative bias (relu zeros), and
    // infinities and NaN in one image
    bool edges = false;
    bool input_grad = true;  // x requires its gradient (a first layer's does not)
};

std::vector<Case> cases() {
    return {
        {"SimpleConvNet-like, 3 weight-gradient chunks", {37, 1, 12, 12}, {5, 1, 5, 5}},
        {"padding 1, odd rows and columns dropped", {5, 3, 11, 13}, {7, 3, 3, 3}, true, {.padding = 1}},
        {"groups 2, no bias", {3, 4, 9, 10}, {6, 2, 3, 3}, false, {.padding = 1, .groups = 2}},
        {"stride 2 (im2col on every CPU)", {4, 3, 13, 12}, {4, 3, 3, 3}, true, {.stride = 2, .padding = 1}},
        {"several forward chunks", {9, 4, 34, 34}, {16, 4, 3, 3}, true, {.padding = 1}},
        {"ties, zeros, infinities, NaN", {6, 2, 8, 9}, {3, 2, 3, 3}, true, {.padding = 1}, true},
        // more output channels than a vector of floats: the direct loop pools in the lanes
        // (kernels 3 and 5 wide; doubles take blocks of two channel vectors and of one)
        {"5x5, 30 channels (SimpleConvNet's), an odd column dropped", {4, 1, 16, 17}, {30, 1, 5, 5}},
        {"3x3, 20 channels, padding 1, odd rows and columns", {3, 3, 11, 15}, {20, 3, 3, 3}, true, {.padding = 1}},
        {"3x5, groups 2 of 18 channels, no bias", {2, 4, 9, 14}, {36, 2, 3, 5}, false, {.padding = 1, .groups = 2}},
        {"ties, zeros, infinities, NaN in 24 channels", {6, 2, 8, 9}, {24, 2, 3, 3}, true, {.padding = 1}, true},
        // a first layer: no input gradient, several weight-gradient chunks, the bias summed over
        // positions that are not a whole number of vectors (10 x 11, the last two in windows),
        // and without a bias
        {"SimpleConvNet's first layer, 3 chunks, no input gradient", {37, 1, 14, 15}, {30, 1, 5, 5}, true, {}, false, false},
        {"3x3, 40 channels, no bias, no input gradient", {5, 2, 11, 12}, {40, 2, 3, 3}, false, {.padding = 1}, false, false},
        {"ties, zeros, infinities, NaN in 24 channels, no input gradient", {6, 2, 8, 9}, {24, 2, 3, 3}, true,
         {.padding = 1}, true, false},
        // output rows of even length: the weight gradient takes two positions a step, its kernel
        // rows in blocks of 5 (5 wide) or 6, then 3 (3 wide)
        {"SimpleConvNet's shape, no input gradient", {3, 1, 28, 28}, {30, 1, 5, 5}, true, {}, false, false},
        {"5x5 over 3 channels, 20 channels, no input gradient", {2, 3, 12, 12}, {20, 3, 5, 5}, true, {}, false, false},
        {"3x3 over 3 channels, 24 channels, no input gradient", {2, 3, 10, 10}, {24, 3, 3, 3}, true, {.padding = 1},
         false, false},
    };
}

template <class T>
struct Result {
    xg::Array<T> y, gx, gw, gb;
};

enum class Run { composed, fused, flat };  // flat: the fused op with its output flattened

// The op (fused, or flat) or the three ops on one case's inputs, backward with upstream gradient
// gy (flattened for flat, whose y is flat).
template <class T>
Result<T> run(Run how, const Case& c, const xg::Array<T>& x, const xg::Array<T>& w, const xg::Array<T>& b,
              xg::Array<T> gy) {
    using V = xg::Variable<T>;
    const V xv(x, c.input_grad), wv(w, true), bv = c.bias ? V(b, true) : V();
    const V y = how == Run::composed ? xg::max_pool2d(xg::conv2d_relu(xv, wv, bv, c.o), {.kernel = 2})
                                     : xg::conv2d_relu_max_pool2d(xv, wv, bv, c.o, {.kernel = 2}, how == Run::flat);
    BOOST_TEST(std::string(y.creator()->name()) == (how == Run::composed ? "max_pool2d" : "conv2d_relu_max_pool2d"));
    if (how == Run::flat) {
        const xg::Shape flat{gy.shape()[0], gy.size() / gy.shape()[0]};
        BOOST_TEST(y.shape() == flat);
        gy.reshape(flat);
    }
    y.backward(V(gy));
    return {y.data(), c.input_grad ? xv.grad().data() : xg::Array<T>(), wv.grad().data(),
            c.bias ? bv.grad().data() : xg::Array<T>()};
}

template <class T>
void fused_is_composed(const Case& c) {
    xg::Array<double> x = xgt::random_array(c.x, 1, -1.0, 1.0), b = xgt::random_array({c.w[0]}, 3, -0.3, 0.3);
    if (c.edges) {
        for (double& v : x) v = std::floor((v + 1.0) * 1.5);  // 0, 1, 2
        b.fill(-0.5);
        x(1, 0, 2, 3) = std::numeric_limits<double>::infinity();
        x(1, 1, 5, 5) = -std::numeric_limits<double>::infinity();
        x(2, 0, 4, 4) = std::numeric_limits<double>::quiet_NaN();
    }
    const xg::Array<T> xt_ = cast<T>(x), wt = cast<T>(xgt::random_array(c.w, 2, -0.5, 0.5)), bt = cast<T>(b);
    const xg::Shape& ws = c.w;
    const long oh = (long(c.x[2]) + 2 * c.o.padding.h - long(ws[2])) / c.o.stride.h + 1;
    const long ow = (long(c.x[3]) + 2 * c.o.padding.w - long(ws[3])) / c.o.stride.w + 1;
    const xg::Array<T> gy = cast<T>(xgt::random_array({c.x[0], ws[0], std::size_t(oh / 2), std::size_t(ow / 2)}, 4, -1.0, 1.0));
    for (const bool direct : {true, false}) {
        std::optional<xgt::DirectLoopOff> off;
        if (!direct) off.emplace();
        const Result<T> f = run(Run::fused, c, xt_, wt, bt, gy), a = run(Run::composed, c, xt_, wt, bt, gy);
        Result<T> flat = run(Run::flat, c, xt_, wt, bt, gy);
        flat.y.reshape(a.y.shape());
        BOOST_TEST_CONTEXT(c.name << (direct ? ", direct loop" : ", im2col") << ", " << sizeof(T) * 8 << "-bit") {
            for (const Result<T>* r : {&f, &std::as_const(flat)}) {
                BOOST_TEST(same_bits(r->y, a.y));
                BOOST_TEST(same_bits(r->gx, a.gx));
                BOOST_TEST(same_bits(r->gw, a.gw));
                BOOST_TEST(same_bits(r->gb, a.gb));
            }
            if (c.edges) {  // the edge values reach the results
                std::size_t nan = 0, zero = 0;
                for (T v : f.y) nan += std::isnan(v), zero += v == T(0);
                BOOST_TEST(nan > 0u);
                BOOST_TEST(zero > 10u);
            }
            // not recorded: the same output without keeping the places
            xg::NoGradGuard no_grad;
            const xg::Variable<T> bv = c.bias ? xg::Variable<T>(bt) : xg::Variable<T>();
            BOOST_TEST(same_bits(xg::conv2d_relu_max_pool2d(xg::Variable<T>(xt_), xg::Variable<T>(wt), bv, c.o).data(), f.y));
        }
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(conv_pool)

BOOST_AUTO_TEST_CASE(fused_op_is_the_composed_ops_bit_for_bit) {
    for (const Case& c : cases()) {
        fused_is_composed<float>(c);
        fused_is_composed<double>(c);
    }
}

// Under create_graph the backward is recorded from the composed ops: the same input and weight
// gradients (the bias gradient is bias_grad's sum there, equal to rounding), differentiable again.
BOOST_AUTO_TEST_CASE(create_graph_records_the_composed_backward) {
    using V = xg::Variable<double>;
    const V x(xgt::random_array({3, 2, 7, 8}, 5, -1.0, 1.0), true), w(xgt::random_array({4, 2, 3, 3}, 6, -0.5, 0.5), true);
    const V b(xgt::random_array({4}, 7, -0.2, 0.2), true);
    const V gy(xgt::random_array({3, 4, 3, 4}, 8, -1.0, 1.0));
    const xg::Conv2dOptions o{.padding = 1};
    const std::vector<V> plain = xg::grad(xg::conv2d_relu_max_pool2d(x, w, b, o), {x, w, b}, gy);
    const std::vector<V> recorded = xg::grad(xg::conv2d_relu_max_pool2d(x, w, b, o), {x, w, b}, gy, {.create_graph = true});
    BOOST_TEST(same_bits(plain[0].data(), recorded[0].data()));
    BOOST_TEST(same_bits(plain[1].data(), recorded[1].data()));
    BOOST_TEST(xgt::close(plain[2].data(), recorded[2].data(), 1e-14));
    BOOST_TEST(recorded[0].requires_grad());
    BOOST_TEST(recorded[1].requires_grad());
    // flattened: the recorded backward reshapes the flat gradient for the composed ops
    xg::Array<double> gflat_array = gy.data();
    gflat_array.reshape({3, 48});
    const V gflat(gflat_array);
    const V yflat = xg::conv2d_relu_max_pool2d(x, w, b, o, {.kernel = 2}, true);
    const std::vector<V> flat = xg::grad(yflat, {x, w, b}, gflat, {.create_graph = true});
    BOOST_TEST(same_bits(flat[0].data(), recorded[0].data()));
    BOOST_TEST(same_bits(flat[1].data(), recorded[1].data()));
    BOOST_TEST(xgt::close(flat[2].data(), recorded[2].data(), 1e-14));
    BOOST_TEST(flat[1].requires_grad());
}

BOOST_AUTO_TEST_CASE(empty_batch) {
    using V = xg::Variable<float>;
    const V x(xg::Array<float>(xt::zeros<float>({0, 2, 6, 6})), true), w(xg::Array<float>(xt::ones<float>({3, 2, 3, 3})), true);
    const V b(xg::Array<float>(xt::ones<float>({3})), true);
    const V y = xg::conv2d_relu_max_pool2d(x, w, b);
    BOOST_TEST(y.shape() == xg::Shape({0, 3, 2, 2}), boost::test_tools::per_element());
    xg::sum(y).backward();
    BOOST_TEST(x.grad().shape() == xg::Shape({0, 2, 6, 6}), boost::test_tools::per_element());
    BOOST_TEST(xg::Array<float>(w.grad().data()) == xg::Array<float>(xt::zeros<float>({3, 2, 3, 3})), boost::test_tools::per_element());
    BOOST_TEST(xg::Array<float>(b.grad().data()) == xg::Array<float>(xt::zeros<float>({3})), boost::test_tools::per_element());
    BOOST_TEST(xg::conv2d_relu_max_pool2d(x, w, b, {}, {.kernel = 2}, true).shape() == xg::Shape({0, 12}),
               boost::test_tools::per_element());
}

// Other pools run as the three ops (their own names), and so do the errors of each.
BOOST_AUTO_TEST_CASE(other_pools_and_errors) {
    using V = xg::Variable<double>;
    const V x(xgt::random_array({2, 3, 8, 8}, 9), true), w(xgt::random_array({4, 3, 3, 3}, 10), true);
    const V pooled3 = xg::conv2d_relu_max_pool2d(x, w, V(), {}, {.kernel = 3});
    BOOST_TEST(std::string(pooled3.creator()->name()) == "max_pool2d");
    BOOST_TEST(xgt::close(pooled3.data(), xg::max_pool2d(xg::conv2d_relu(x, w), {.kernel = 3}).data(), 0));
    // flattened after the composed ops alike: (2, 4 * 2 * 2)
    const V flat3 = xg::conv2d_relu_max_pool2d(x, w, V(), {}, {.kernel = 3}, true);
    BOOST_TEST(flat3.shape() == xg::Shape({2, 16}), boost::test_tools::per_element());
    BOOST_TEST(xgt::close(flat3.data(), xg::flatten(pooled3, 1).data(), 0));
    const V strided = xg::conv2d_relu_max_pool2d(x, w, V(), {}, {.kernel = 2, .stride = 1});
    BOOST_TEST(std::string(strided.creator()->name()) == "max_pool2d");
    BOOST_TEST(std::string(xg::conv2d_relu_max_pool2d(x, w, V(), {}, {.kernel = 2, .stride = 2}).creator()->name()) ==
               "conv2d_relu_max_pool2d");

    expect_error<xg::ShapeError>([&] { xg::conv2d_relu_max_pool2d(V(xgt::random_array({2, 4, 8, 8}, 1)), w); },
                                 {"conv2d_relu_max_pool2d", "(2, 4, 8, 8)", "(4, 3, 3, 3)"});
    expect_error<xg::ShapeError>([&] { xg::conv2d_relu_max_pool2d(x, w, V(xgt::random_array({3}, 1))); },
                                 {"conv2d_relu_max_pool2d", "bias", "(3,)"});
    expect_error<xg::ValueError>([&] { xg::conv2d_relu_max_pool2d(x, w, V(), {.stride = 0}); },
                                 {"conv2d_relu_max_pool2d", "stride"});
    // a convolution output of one row: no 2x2 window, max_pool2d says so
    expect_error<xg::ShapeError>([&] { xg::conv2d_relu_max_pool2d(V(xgt::random_array({2, 3, 3, 8}, 1)), w); },
                                 {"max_pool2d", "kernel is larger than the padded input"});
    expect_error<xg::GraphError>([&] { xg::conv2d_relu_max_pool2d(V(), w); }, {"conv2d_relu_max_pool2d", "undefined"});
}

BOOST_AUTO_TEST_SUITE_END()
