// Attention (issue 15): the scaled_dot_product_attention op's edge values (scores near 1e4 in float
// and double, one query, one key, a fully masked row, empty sizes) and errors (its op cases in
// tests/op_cases.cpp are gradchecked and compared with PyTorch elsewhere); nn::MultiheadAttention
// and nn::TransformerBlock: names and shapes of the parameters, initialisation, gradchecks in
// float64, layouts (batch_first, unbatched, torch's 3-D mask), causality, errors, and agreement
// with PyTorch on shared weights (tests/data/torch_attention.npz, written by
// scripts/torch_attention_fixture.py).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

#ifndef XGT_DATA_DIR
#error "tests/meson.build defines XGT_DATA_DIR, the folder of the committed fixtures"
#endif

namespace nn = xg::nn;
using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::expect_error;
using xgt::close;
using xgt::random_array;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// A column (n, 1): a braced list of one-element rows is ambiguous for xtensor.
template <class T = double>
xg::Array<T> column(std::initializer_list<T> values) {
    xg::Array<T> a = xg::Array<T>::from_shape({values.size(), 1});
    std::copy(values.begin(), values.end(), a.begin());
    return a;
}

// softmax(q kᵀ / sqrt(E) + mask) v for 2-D operands, by the definition (no max subtraction).
A reference_attention(const A& q, const A& k, const A& v, const A* mask, bool causal) {
    const std::size_t L = q.shape()[0], S = k.shape()[0], E = q.shape()[1], Ev = v.shape()[1];
    A out = xg::full<double>({L, Ev}, 0.0);
    for (std::size_t i = 0; i < L; ++i) {
        std::vector<double> w(S, 0.0);
        double total = 0;
        for (std::size_t j = 0; j < S; ++j) {
            double s = 0;
            for (std::size_t e = 0; e < E; ++e) s += q(i, e) * k(j, e);
            s = s / std::sqrt(double(E)) + (mask ? (*mask)(i, j) : 0.0);
            w[j] = (causal && j > i) ? 0.0 : std::exp(s);
            total += w[j];
        }
        for (std::size_t j = 0; j < S; ++j)
            for (std::size_t e = 0; e < Ev; ++e) out(i, e) += w[j] / total * v(j, e);
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(attention)

// ---- the op ----

BOOST_AUTO_TEST_CASE(sdpa_matches_the_definition) {
    const A q = random_array({3, 4}, 1), k = random_array({5, 4}, 2), v = random_array({5, 2}, 3);
    const A mask = random_array({3, 5}, 4);
    BOOST_TEST(close(xg::scaled_dot_product_attention(V(q), V(k), V(v)).data(), reference_attention(q, k, v, nullptr, false)));
    BOOST_TEST(close(xg::scaled_dot_product_attention(V(q), V(k), V(v), V(mask)).data(),
                     reference_attention(q, k, v, &mask, false)));
    // causal: query i sees keys j <= i (torch's is_causal, also for L != S)
    BOOST_TEST(close(xg::scaled_dot_product_attention(V(q), V(k), V(v), {}, true).data(),
                     reference_attention(q, k, v, nullptr, true)));
    BOOST_TEST(close(xg::scaled_dot_product_attention(V(q), V(k), V(v), V(mask), true).data(),
                     reference_attention(q, k, v, &mask, true)));
}

BOOST_AUTO_TEST_CASE(sdpa_large_scores_do_not_overflow) {
    // E = 1, scale 1: scores 1e4, -1e4 and 1e4 - 100. exp(1e4) overflows in float and double;
    // the row maximum subtracted, the weights are 1 / (1 + e^-100), 0, e^-100 / (1 + e^-100).
    const A q = column({100.0, -100.0}), k = column({100.0, -100.0, 99.0}), v{{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}};
    const V qv(q, true), kv(k, true), vv(v, true);
    const V y = xg::scaled_dot_product_attention(qv, kv, vv);
    const double tiny = std::exp(-100.0);
    const A want{{(1.0 + 5.0 * tiny) / (1 + tiny), (2.0 + 6.0 * tiny) / (1 + tiny)}, {3.0, 4.0}};
    BOOST_TEST(close(y.data(), want, 1e-15));
    xg::sum(y).backward();
    for (const V& x : {qv, kv, vv})
        for (double g : x.grad().data()) BOOST_TEST(std::isfinite(g));
    BOOST_TEST(close(vv.grad().data(), A{{1.0 / (1 + tiny), 1.0 / (1 + tiny)}, {1.0, 1.0}, {tiny / (1 + tiny), tiny / (1 + tiny)}}));
    // float: the same, finite
    const xg::Variable<float> yf = xg::scaled_dot_product_attention(
        xg::Variable<float>(column<float>({100.0f, -100.0f})), xg::Variable<float>(column<float>({100.0f, -100.0f, 99.0f})),
        xg::Variable<float>(xg::Array<float>{{1.0f, 2.0f}, {3.0f, 4.0f}, {5.0f, 6.0f}}));
    BOOST_TEST(yf.data()(0, 0) == 1.0f);
    BOOST_TEST(yf.data()(1, 1) == 4.0f);
}

BOOST_AUTO_TEST_CASE(sdpa_one_query_and_one_key) {
    // L = 1: one row; S = 1: the softmax is 1, the output v itself, and q and k get no gradient.
    const V q(random_array({2, 1, 3}, 5), true), k(random_array({2, 1, 3}, 6), true), v(random_array({2, 1, 4}, 7), true);
    const V y = xg::scaled_dot_product_attention(q, k, v);
    BOOST_TEST(y.shape() == (xg::Shape{2, 1, 4}));
    BOOST_TEST(close(y.data(), v.data(), 0.0));
    xg::sum(y * V(random_array({2, 1, 4}, 8))).backward();
    for (double g : q.grad().data()) BOOST_TEST(g == 0.0);
    for (double g : k.grad().data()) BOOST_TEST(g == 0.0);
}

BOOST_AUTO_TEST_CASE(sdpa_fully_masked_row_gives_zeros) {
    // Row 1 has every key masked: its output and every gradient through it are 0 (torch 1.13's
    // formula gives NaN). The other rows are those of the same attention without row 1.
    const A qa = random_array({3, 4}, 9), ka = random_array({4, 4}, 10), va = random_array({4, 2}, 11);
    const A mask{{0.0, 0.5, -1.0, 0.0}, {-inf, -inf, -inf, -inf}, {-inf, 0.0, -inf, 1.0}};
    const V q(qa, true), k(ka, true), v(va, true), m(mask, true);
    const V y = xg::scaled_dot_product_attention(q, k, v, m);
    BOOST_TEST(y.data()(1, 0) == 0.0);
    BOOST_TEST(y.data()(1, 1) == 0.0);
    const A ref = reference_attention(qa, ka, va, &mask, false);
    for (std::size_t i : {0, 2})
        for (std::size_t e = 0; e < 2; ++e) BOOST_TEST(std::abs(y.data()(i, e) - ref(i, e)) <= 1e-14);
    xg::sum(y * V(random_array({3, 2}, 12))).backward();
    for (std::size_t e = 0; e < 4; ++e) {
        BOOST_TEST(q.grad().data()(1, e) == 0.0);
        BOOST_TEST(m.grad().data()(1, e) == 0.0);
    }
    for (double g : m.grad().data()) BOOST_TEST(std::isfinite(g));
    for (double g : k.grad().data()) BOOST_TEST(std::isfinite(g));
    // the masked entries of the other rows get no gradient either
    BOOST_TEST(m.grad().data()(2, 0) == 0.0);
    BOOST_TEST(m.grad().data()(2, 2) == 0.0);
    // a NaN score is not a masked one: the row is NaN
    const A nan_mask{{0.0, std::nan(""), 0.0, 0.0}, {0, 0, 0, 0}, {0, 0, 0, 0}};
    const V yn = xg::scaled_dot_product_attention(V(qa), V(ka), V(va), V(nan_mask));
    BOOST_TEST(std::isnan(yn.data()(0, 0)));
    BOOST_TEST(std::isfinite(yn.data()(1, 0)));
}

BOOST_AUTO_TEST_CASE(sdpa_empty_sizes) {
    // L = 0: an empty output; S = 0: no key to attend to, every row zeros; N = 0: an empty batch.
    // Each with a backward pass.
    auto run = [](const xg::Shape& qs, const xg::Shape& ks, const xg::Shape& vs, const xg::Shape& want) {
        const V q(xg::full<double>(qs, 0.5), true), k(xg::full<double>(ks, 0.25), true), v(xg::full<double>(vs, 1.0), true);
        const V y = xg::scaled_dot_product_attention(q, k, v, {}, true);
        BOOST_TEST(y.shape() == want);
        for (double x : y.data()) BOOST_TEST(x == 0.0);
        xg::sum(y).backward();
        BOOST_TEST(q.grad().shape() == qs);
        BOOST_TEST(k.grad().shape() == ks);
        BOOST_TEST(v.grad().shape() == vs);
        for (const V& x : {q, k, v})
            for (double g : x.grad().data()) BOOST_TEST(g == 0.0);
    };
    run({2, 0, 3}, {2, 4, 3}, {2, 4, 2}, {2, 0, 2});
    run({2, 3, 3}, {2, 0, 3}, {2, 0, 2}, {2, 3, 2});
    run({0, 3, 3}, {0, 4, 3}, {0, 4, 2}, {0, 3, 2});
}

BOOST_AUTO_TEST_CASE(sdpa_errors_name_the_op_and_shapes) {
    const V q(random_array({2, 3, 4}, 1)), k(random_array({2, 5, 4}, 2)), v(random_array({2, 5, 3}, 3));
    using xg::scaled_dot_product_attention;
    expect_error<xg::ShapeError>([&] { scaled_dot_product_attention(V(random_array({4}, 1)), k, v); },
                                 {"scaled_dot_product_attention", "at least 2 dimensions", "q (4,)"});
    expect_error<xg::ShapeError>([&] { scaled_dot_product_attention(q, V(random_array({2, 5, 3}, 2)), v); },
                                 {"scaled_dot_product_attention", "same last dimension", "q (2, 3, 4)", "k (2, 5, 3)"});
    expect_error<xg::ShapeError>([&] { scaled_dot_product_attention(q, k, V(random_array({2, 4, 3}, 2))); },
                                 {"scaled_dot_product_attention", "same length S", "v (2, 4, 3)"});
    expect_error<xg::ShapeError>([&] { scaled_dot_product_attention(q, V(random_array({3, 5, 4}, 2)), v); },
                                 {"scaled_dot_product_attention", "do not broadcast", "k (3, 5, 4)"});
    expect_error<xg::ShapeError>([&] { scaled_dot_product_attention(q, k, v, V(random_array({5, 3}, 4))); },
                                 {"scaled_dot_product_attention", "mask must broadcast", "(2, 3, 5)", "mask (5, 3)"});
    // a mask may not enlarge the batch
    expect_error<xg::ShapeError>([&] { scaled_dot_product_attention(q, k, v, V(random_array({4, 2, 3, 5}, 4))); },
                                 {"scaled_dot_product_attention", "mask (4, 2, 3, 5)"});
    expect_error<xg::ShapeError>(
        [&] { scaled_dot_product_attention(V(A::from_shape({3, 0})), V(A::from_shape({5, 0})), V(A::from_shape({5, 2}))); },
        {"scaled_dot_product_attention", "E = 0", "q (3, 0)"});
    expect_error<xg::ValueError>([&] { scaled_dot_product_attention(q, V(), v); }, {"scaled_dot_product_attention"});
}

BOOST_AUTO_TEST_CASE(sdpa_create_graph_through_masked_and_causal) {
    // Second derivatives with a fully masked row and causal masking (the op cases gradgradcheck
    // the other shapes).
    const A mask{{0.0, -inf, 0.5}, {-inf, -inf, -inf}};
    const auto f = [&](const std::vector<V>& x) { return xg::scaled_dot_product_attention(x[0], x[1], x[2], V(mask), true); };
    const std::vector<V> in{V(random_array({2, 3}, 1), true), V(random_array({3, 3}, 2), true), V(random_array({3, 2}, 3), true)};
    const auto r = xg::gradgradcheck<double>(f, in, 1e-6, 1e-7, 1e-5);
    BOOST_TEST(r.ok, r.str());
}

// ---- heads_attention ----

// random_array's values in T.
template <class T>
xg::Array<T> random_as(const xg::Shape& shape, unsigned seed) {
    const A a = random_array(shape, seed);
    xg::Array<T> b = xg::Array<T>::from_shape(shape);
    std::copy(a.begin(), a.end(), b.begin());
    return b;
}

// heads_attention against what it replaces: the heads split by reshape and permute,
// scaled_dot_product_attention, merged back. Values and the gradients of q, k, v and a mask
// (with -inf entries and a fully masked row), in float and double, causal or not.
template <class T>
void check_heads_equal_composition(std::size_t N, std::size_t L, std::size_t S, std::size_t H, std::size_t E,
                                   std::size_t Ev, bool causal, double tol) {
    using VT = xg::Variable<T>;
    auto arr = [](const xg::Shape& shape, unsigned seed) { return random_as<T>(shape, seed); };
    xg::Array<T> m = arr({H, L, S}, 4);
    if (L > 1 && S > 2) m(0, 1, 2) = -std::numeric_limits<T>::infinity();
    if (H > 1 && L > 0)
        for (std::size_t j = 0; j < S; ++j) m(1, 0, j) = -std::numeric_limits<T>::infinity();  // fully masked
    const long n = static_cast<long>(N), h = static_cast<long>(H);
    auto split = [&](const VT& x) {
        return xg::permute(xg::reshape(x, {n, static_cast<long>(x.shape()[1]), h, static_cast<long>(x.shape()[2]) / h}),
                           {0, 2, 1, 3});
    };
    auto merge = [&](const VT& x) {
        return xg::reshape(xg::permute(x, {0, 2, 1, 3}),
                           {n, static_cast<long>(x.shape()[2]), h * static_cast<long>(x.shape()[3])});
    };
    for (bool with_mask : {false, true}) {
        std::vector<VT> a{VT(arr({N, L, H * E}, 1), true), VT(arr({N, S, H * E}, 2), true), VT(arr({N, S, H * Ev}, 3), true),
                          VT(m, true)};
        std::vector<VT> b{VT(a[0].data(), true), VT(a[1].data(), true), VT(a[2].data(), true), VT(m, true)};
        const VT ya = xg::heads_attention(a[0], a[1], a[2], H, with_mask ? a[3] : VT(), causal);
        const VT yb = merge(xg::scaled_dot_product_attention(split(b[0]), split(b[1]), split(b[2]),
                                                             with_mask ? b[3] : VT(), causal));
        BOOST_TEST_CONTEXT(fmt::format("{}-byte, N {} L {} S {} H {} E {} Ev {}, causal {}, mask {}", sizeof(T), N, L,
                                       S, H, E, Ev, causal, with_mask)) {
            BOOST_TEST(close(ya.data(), yb.data(), tol));
            const VT g(arr(ya.shape(), 5));
            xg::sum(ya * g).backward();
            xg::sum(yb * g).backward();
            for (std::size_t i = 0; i < (with_mask ? 4u : 3u); ++i) {
                BOOST_TEST(a[i].grad().shape() == b[i].grad().shape());
                BOOST_TEST(close(a[i].grad().data(), b[i].grad().data(), tol), "gradient " << i);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(heads_attention_equals_split_attend_merge) {
    for (bool causal : {false, true}) {
        check_heads_equal_composition<double>(2, 5, 7, 4, 3, 2, causal, 1e-12);
        check_heads_equal_composition<double>(3, 6, 6, 2, 8, 8, causal, 1e-12);
        check_heads_equal_composition<float>(2, 5, 7, 4, 3, 2, causal, 1e-5);
        check_heads_equal_composition<float>(2, 64, 64, 4, 32, 32, causal, 1e-5);  // the bench's sizes, 2 samples
    }
    check_heads_equal_composition<double>(1, 4, 3, 1, 2, 5, false, 1e-12);  // one head
    // empty sizes: no sample, no query, no key (zeros)
    check_heads_equal_composition<double>(0, 4, 3, 2, 2, 2, true, 1e-12);
    check_heads_equal_composition<double>(2, 0, 3, 2, 2, 2, true, 1e-12);
    check_heads_equal_composition<double>(2, 4, 0, 2, 2, 2, false, 1e-12);
}

BOOST_AUTO_TEST_CASE(heads_attention_create_graph_equals_composition) {
    // Under create_graph the backward is the composition's own (ops): second derivatives agree too.
    const auto f = [](const std::vector<V>& x) { return xg::heads_attention(x[0], x[1], x[2], 2, x[3], true); };
    const std::vector<V> in{V(random_array({2, 3, 4}, 1), true), V(random_array({2, 3, 4}, 2), true),
                            V(random_array({2, 3, 6}, 3), true), V(random_array({2, 1, 3}, 4), true)};
    const auto r = xg::gradgradcheck<double>(f, in, 1e-6, 1e-7, 1e-5);
    BOOST_TEST(r.ok, r.str());
}

// qkv_attention against heads_attention of the three thirds: values and the gradients of qkv and
// of a mask, float and double, causal or not, and empty sizes.
template <class T>
void check_qkv_equals_heads(std::size_t N, std::size_t L, std::size_t H, std::size_t E, bool causal, double tol) {
    using VT = xg::Variable<T>;
    auto arr = [](const xg::Shape& shape, unsigned seed) { return random_as<T>(shape, seed); };
    xg::Array<T> m = arr({H, 1, L}, 4);
    if (L > 1) m(0, 0, 1) = -std::numeric_limits<T>::infinity();
    const std::size_t w = H * E;
    for (bool with_mask : {false, true}) {
        const VT x(arr({N, L, 3 * w}, 1), true), mx(m, true);
        const VT x2(x.data(), true), mx2(m, true);
        const VT ya = xg::qkv_attention(x, H, with_mask ? mx : VT(), causal);
        const VT yb = xg::heads_attention(xg::slice(x2, 2, 0, w), xg::slice(x2, 2, w, 2 * w), xg::slice(x2, 2, 2 * w, 3 * w),
                                          H, with_mask ? mx2 : VT(), causal);
        BOOST_TEST_CONTEXT(fmt::format("{}-byte, N {} L {} H {} E {}, causal {}, mask {}", sizeof(T), N, L, H, E, causal,
                                       with_mask)) {
            BOOST_TEST(ya.shape() == yb.shape());
            BOOST_TEST(close(ya.data(), yb.data(), tol));
            const VT g(arr(ya.shape(), 5));
            xg::sum(ya * g).backward();
            xg::sum(yb * g).backward();
            BOOST_TEST(close(x.grad().data(), x2.grad().data(), tol));
            if (with_mask) BOOST_TEST(close(mx.grad().data(), mx2.grad().data(), tol));
        }
    }
}

BOOST_AUTO_TEST_CASE(qkv_attention_equals_heads_attention_of_its_thirds) {
    for (bool causal : {false, true}) {
        check_qkv_equals_heads<double>(2, 5, 3, 2, causal, 1e-12);
        check_qkv_equals_heads<float>(2, 64, 4, 32, causal, 1e-5);  // the bench's sizes, 2 samples
    }
    check_qkv_equals_heads<double>(1, 4, 1, 3, false, 1e-12);  // one head
    check_qkv_equals_heads<double>(0, 4, 2, 2, true, 1e-12);   // no sample
    check_qkv_equals_heads<double>(2, 0, 2, 2, true, 1e-12);   // no position
    // Under create_graph the backward is the composition's: second derivatives check out.
    const auto f = [](const std::vector<V>& x) { return xg::qkv_attention(x[0], 2, x[1], true); };
    const auto r = xg::gradgradcheck<double>(f, {V(random_array({2, 3, 6}, 1), true), V(random_array({2, 1, 3}, 2), true)},
                                             1e-6, 1e-7, 1e-5);
    BOOST_TEST(r.ok, r.str());
    using xg::qkv_attention;
    expect_error<xg::ShapeError>([] { qkv_attention(V(random_array({3, 12}, 1)), 2); }, {"qkv_attention", "3-D", "qkv (3, 12)"});
    expect_error<xg::ValueError>([] { qkv_attention(V(random_array({2, 3, 12}, 1)), 0); },
                                 {"qkv_attention", "num_heads 0"});
    expect_error<xg::ShapeError>([] { qkv_attention(V(random_array({2, 3, 12}, 1)), 3); },
                                 {"qkv_attention", "multiple of 3 num_heads", "num_heads 3", "qkv (2, 3, 12)"});
    expect_error<xg::ShapeError>([] { qkv_attention(V(random_array({2, 3, 12}, 1)), 2, V(random_array({3, 3, 3}, 2))); },
                                 {"qkv_attention", "mask must broadcast", "(2, 2, 3, 3)", "mask (3, 3, 3)"});
    expect_error<xg::ValueError>([] { qkv_attention(V(), 2); }, {"qkv_attention"});
}

BOOST_AUTO_TEST_CASE(attention_sizes_beyond_blas_are_refused) {
    // BLAS takes int sizes: 2^31 columns (empty batches here, so nothing is allocated) are refused
    // with ResourceError, not truncated.
    const std::size_t big = std::size_t(1) << 31;
    const auto empty = [](const xg::Shape& s) { return V(A::from_shape(s)); };
    expect_error<xg::ResourceError>(
        [&] { xg::scaled_dot_product_attention(empty({0, 1, big}), empty({0, 1, big}), empty({0, 1, 1})); },
        {"scaled_dot_product_attention", "exceeds BLAS", "q (0, 1, 2147483648)"});
    expect_error<xg::ResourceError>(
        [&] { xg::heads_attention(empty({0, 1, big}), empty({0, 1, big}), empty({0, 1, 2}), 2); },
        {"heads_attention", "exceeds BLAS", "q (0, 1, 2147483648)"});
    expect_error<xg::ResourceError>([&] { xg::qkv_attention(empty({0, 1, 3 * big}), 1); },
                                    {"qkv_attention", "exceeds BLAS", "qkv (0, 1, 6442450944)"});
}

BOOST_AUTO_TEST_CASE(heads_attention_errors_name_the_op_and_shapes) {
    const V q(random_array({2, 3, 4}, 1)), k(random_array({2, 5, 4}, 2)), v(random_array({2, 5, 6}, 3));
    using xg::heads_attention;
    expect_error<xg::ShapeError>([&] { heads_attention(V(random_array({3, 4}, 1)), k, v, 2); },
                                 {"heads_attention", "3-D", "q (3, 4)"});
    expect_error<xg::ValueError>([&] { heads_attention(q, k, v, 0); }, {"heads_attention", "num_heads 0"});
    expect_error<xg::ShapeError>([&] { heads_attention(q, k, v, 3); },
                                 {"heads_attention", "must divide", "num_heads 3", "q (2, 3, 4)", "v (2, 5, 6)"});
    expect_error<xg::ShapeError>([&] { heads_attention(q, V(random_array({3, 5, 4}, 2)), v, 2); },
                                 {"heads_attention", "same batch size", "k (3, 5, 4)"});
    expect_error<xg::ShapeError>([&] { heads_attention(q, V(random_array({2, 5, 6}, 2)), v, 2); },
                                 {"heads_attention", "same width", "k (2, 5, 6)"});
    expect_error<xg::ShapeError>([&] { heads_attention(q, k, V(random_array({2, 4, 6}, 2)), 2); },
                                 {"heads_attention", "same length S", "v (2, 4, 6)"});
    expect_error<xg::ShapeError>([&] { heads_attention(q, k, v, 2, V(random_array({3, 3, 5}, 4))); },
                                 {"heads_attention", "mask must broadcast", "(2, 2, 3, 5)", "mask (3, 3, 5)"});
    expect_error<xg::ValueError>([&] { heads_attention(q, k, V(), 2); }, {"heads_attention"});
}

// ---- MultiheadAttention ----

BOOST_AUTO_TEST_CASE(mha_parameters_names_shapes_and_init) {
    nn::Generator gen(3);
    nn::MultiheadAttention<double> mha(8, 2, {.generator = &gen});
    BOOST_TEST(xgt::names_and_shapes(mha.named_parameters()) == (std::vector<std::string>{"in_proj_weight (24, 8)", "in_proj_bias (24,)",
                                                                           "out_proj.weight (8, 8)", "out_proj.bias (8,)"}));
    const double a = std::sqrt(6.0 / (8 + 24));
    double m = 0;
    for (double w : mha.in_proj_weight().data()) m = std::max(m, std::abs(w));
    BOOST_TEST(m <= a);
    BOOST_TEST(m > 0.9 * a);
    for (double b : mha.in_proj_bias().data()) BOOST_TEST(b == 0.0);
    for (double b : mha.out_proj()->bias().data()) BOOST_TEST(b == 0.0);
    double mo = 0;
    for (double w : mha.out_proj()->weight().data()) mo = std::max(mo, std::abs(w));
    BOOST_TEST(mo <= 1.0 / std::sqrt(8.0));
    nn::MultiheadAttention<double> nobias(8, 4, {.bias = false});
    BOOST_TEST(xgt::names_and_shapes(nobias.named_parameters()) == (std::vector<std::string>{"in_proj_weight (24, 8)", "out_proj.weight (8, 8)"}));
    BOOST_TEST(mha.repr() == "MultiheadAttention(embed_dim=8, num_heads=2, bias=true, batch_first=true)");
}

BOOST_AUTO_TEST_CASE(mha_gradcheck) {
    nn::Generator gen(4);
    nn::MultiheadAttention<double> mha(4, 2, {.generator = &gen});
    for (auto& p : mha.parameters()) p.mutable_data() = random_array(p.shape(), 40 + unsigned(p.size()), -0.7, 0.7);
    const V x(random_array({2, 3, 4}, 5), true);
    const V kv(random_array({2, 4, 4}, 6), true);
    const V mask(random_array({3, 4}, 7), true);
    const V w(random_array({2, 3, 4}, 8));
    std::vector<V> self_params = mha.parameters();
    self_params.push_back(x);
    const auto r = xg::gradcheck_params<double>([&] { return xg::sum(mha(x, x, x, {}, true) * w); }, self_params, 1e-6,
                                                1e-8, 1e-6);
    BOOST_TEST(r.ok, r.str());
    std::vector<V> cross_params = mha.parameters();
    cross_params.insert(cross_params.end(), {x, kv, mask});
    const auto c = xg::gradcheck_params<double>([&] { return xg::sum(mha(x, kv, kv, mask) * w); }, cross_params, 1e-6,
                                                1e-8, 1e-6);
    BOOST_TEST(c.ok, c.str());
}

BOOST_AUTO_TEST_CASE(mha_layouts_agree) {
    // Self-attention (one projection GEMM) equals cross-attention on copies of the input (three);
    // batch_first=false on (L, N, E) equals batch_first on (N, L, E); unbatched (L, E) equals N = 1;
    // torch's (N * heads, L, S) mask equals the same as (N, heads, L, S).
    nn::Generator g1(5), g2(5);
    nn::MultiheadAttention<double> a(6, 3, {.generator = &g1});
    nn::MultiheadAttention<double> b(6, 3, {.batch_first = false, .generator = &g2});
    for (auto& p : a.parameters()) p.mutable_data() = random_array(p.shape(), 50 + unsigned(p.size()), -0.7, 0.7);
    b.load_state_dict(a.state_dict());
    const A x = random_array({2, 4, 6}, 9);
    const V y = a(V(x), V(x), V(x), {}, true);
    BOOST_TEST(close(y.data(), a(V(x), V(A(x)), V(A(x)), {}, true).data()));
    const V yt = b(xg::permute(V(x), {1, 0, 2}), xg::permute(V(x), {1, 0, 2}), xg::permute(V(x), {1, 0, 2}), {}, true);
    BOOST_TEST(close(xg::permute(yt, {1, 0, 2}).data(), y.data()));
    const V x0 = xg::slice(V(x), 0, 0, 1);
    const V u = a(xg::squeeze(x0, 0), xg::squeeze(x0, 0), xg::squeeze(x0, 0), {}, true);
    BOOST_TEST(u.shape() == (xg::Shape{4, 6}));
    BOOST_TEST(close(u.data(), xg::squeeze(xg::slice(y, 0, 0, 1), 0).data()));
    const A m4 = random_array({2, 3, 4, 4}, 10);
    const V y4 = a(V(x), V(x), V(x), V(m4));
    const V y3 = a(V(x), V(x), V(x), xg::reshape(V(m4), {6, 4, 4}));
    BOOST_TEST(close(y4.data(), y3.data(), 0.0));
    // a (L, S) mask broadcasts over the batch and the heads
    const A m2 = random_array({4, 4}, 11);
    BOOST_TEST(close(a(V(x), V(x), V(x), V(m2)).data(),
                     a(V(x), V(x), V(x), xg::broadcast_to(V(m2), {2, 3, 4, 4})).data(), 0.0));
}

BOOST_AUTO_TEST_CASE(mha_fully_masked_query_and_large_inputs) {
    // A query whose keys are all masked gets zeros from the attention, so out_proj.bias, with
    // finite gradients; inputs of magnitude 1e4 (scores ~1e8) give finite values and gradients.
    nn::Generator gen(7);
    nn::MultiheadAttention<double> mha(4, 2, {.generator = &gen});
    for (auto& p : mha.parameters()) p.mutable_data() = random_array(p.shape(), 70 + unsigned(p.size()), -0.7, 0.7);
    A mask = xg::full<double>({3, 3}, 0.0);
    for (std::size_t j = 0; j < 3; ++j) mask(1, j) = -inf;
    const V x(random_array({2, 3, 4}, 8), true);
    const V y = mha(x, x, x, V(mask));
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t e = 0; e < 4; ++e) BOOST_TEST(y.data()(n, 1, e) == mha.out_proj()->bias().data()(e));
    xg::sum(y).backward();
    for (double g : x.grad().data()) BOOST_TEST(std::isfinite(g));
    const V big(random_array({2, 3, 4}, 9, -1e4, 1e4), true);
    const V yb = mha(big, big, big, {}, true);
    for (double v : yb.data()) BOOST_TEST(std::isfinite(v));
    xg::sum(yb).backward();
    for (double g : big.grad().data()) BOOST_TEST(std::isfinite(g));
}

BOOST_AUTO_TEST_CASE(mha_errors) {
    expect_error<xg::ShapeError>([] { nn::MultiheadAttention<double>(6, 4); }, {"MultiheadAttention", "num_heads 4", "embed_dim 6"});
    expect_error<xg::ShapeError>([] { nn::MultiheadAttention<double>(0, 1); }, {"MultiheadAttention", "positive"});
    expect_error<xg::ShapeError>([] { nn::MultiheadAttention<double>(4, 0); }, {"MultiheadAttention", "positive"});
    nn::MultiheadAttention<double> mha(4, 2);
    const V x(random_array({2, 3, 4}, 1));
    expect_error<xg::ShapeError>([&] { mha(V(random_array({2, 3, 5}, 1)), x, x); },
                                 {"MultiheadAttention(embed_dim=4, num_heads=2)", "embed_dim 4", "query (2, 3, 5)"});
    expect_error<xg::ShapeError>([&] { mha(V(random_array({1, 2, 3, 4}, 1)), x, x); },
                                 {"MultiheadAttention", "3-D", "query (1, 2, 3, 4)"});
    expect_error<xg::ShapeError>([&] { mha(x, V(random_array({3, 3, 4}, 2)), V(random_array({3, 3, 4}, 2))); },
                                 {"MultiheadAttention", "batch size", "key (3, 3, 4)"});
    expect_error<xg::ShapeError>([&] { mha(x, x, V(random_array({2, 5, 4}, 2))); },
                                 {"MultiheadAttention", "same length", "value (2, 5, 4)"});
    expect_error<xg::ShapeError>([&] { mha(x, x, x, V(random_array({3, 4}, 2))); },
                                 {"MultiheadAttention", "mask", "(2, 2, 3, 3)", "mask (3, 4)"});
    expect_error<xg::ValueError>([&] { mha(x, V(), x); }, {"MultiheadAttention", "(undefined)"});
}

// ---- TransformerBlock ----

BOOST_AUTO_TEST_CASE(block_names_and_shapes) {
    nn::TransformerBlock<double> block(8, 2);
    BOOST_TEST(xgt::names_and_shapes(block.named_parameters()) ==
               (std::vector<std::string>{"ln1.weight (8,)", "ln1.bias (8,)", "attn.in_proj_weight (24, 8)",
                                         "attn.in_proj_bias (24,)", "attn.out_proj.weight (8, 8)",
                                         "attn.out_proj.bias (8,)", "ln2.weight (8,)", "ln2.bias (8,)",
                                         "mlp.0.weight (32, 8)", "mlp.0.bias (32,)", "mlp.2.weight (8, 32)",
                                         "mlp.2.bias (8,)"}));
    const V y = block(V(random_array({3, 5, 8}, 1)));
    BOOST_TEST(y.shape() == (xg::Shape{3, 5, 8}));
    nn::TransformerBlock<double> wide(8, 4, {.mlp_ratio = 2});
    BOOST_TEST(wide.mlp()->get<nn::TorchLinear<double>>(0)->weight().shape() == (xg::Shape{16, 8}));
}

BOOST_AUTO_TEST_CASE(block_gradcheck) {
    nn::Generator gen(6);
    nn::TransformerBlock<double> block(4, 2, {.mlp_ratio = 2, .generator = &gen});
    for (auto& p : block.parameters()) p.mutable_data() = random_array(p.shape(), 60 + unsigned(p.size()), -0.7, 0.7);
    const V x(random_array({2, 3, 4}, 7), true);
    const V w(random_array({2, 3, 4}, 8));
    std::vector<V> params = block.parameters();
    params.push_back(x);
    const auto r = xg::gradcheck_params<double>([&] { return xg::sum(block(x) * w); }, params, 1e-6, 1e-8, 1e-6);
    BOOST_TEST(r.ok, r.str());
}

BOOST_AUTO_TEST_CASE(block_is_causal) {
    // With causal attention, the output at position t does not depend on the inputs after t; without,
    // it does.
    nn::TransformerBlock<double> block(8, 2);
    const A x = random_array({2, 5, 8}, 2);
    A x2 = x;
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t e = 0; e < 8; ++e) x2(n, 4, e) += 0.3 * double(e);  // the last position only (not a shift, which ln1 removes)
    const A y = block(V(x)).data(), y2 = block(V(x2)).data();
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t t = 0; t < 4; ++t)
            for (std::size_t e = 0; e < 8; ++e) BOOST_TEST(y(n, t, e) == y2(n, t, e));
    BOOST_TEST(std::abs(block(V(x), false).data()(0, 0, 0) - block(V(x2), false).data()(0, 0, 0)) > 1e-6);
}

BOOST_AUTO_TEST_CASE(block_dropout_and_errors) {
    nn::TransformerBlock<double> block(8, 2, {.dropout = 0.5});
    BOOST_TEST(block.named_children().back().first == "dropout");
    const V x(random_array({2, 3, 8}, 3));
    block.eval();
    BOOST_TEST(close(block(x).data(), block(x).data(), 0.0));  // the identity in evaluation
    block.train();
    BOOST_TEST(!close(block(x).data(), block(x).data(), 0.0));  // fresh masks in training
    expect_error<xg::ShapeError>([] { nn::TransformerBlock<double>(6, 4); }, {"TransformerBlock", "num_heads 4", "d_model 6"});
    expect_error<xg::ShapeError>([] { nn::TransformerBlock<double>(0, 1); }, {"TransformerBlock", "positive"});
    expect_error<xg::ShapeError>([] { nn::TransformerBlock<double>(4, 2, {.mlp_ratio = 0}); }, {"TransformerBlock", "mlp_ratio 0"});
    expect_error<xg::ValueError>([] { nn::TransformerBlock<double>(4, 2, {.dropout = 1.0}); }, {"TransformerBlock", "dropout", "1"});
    nn::TransformerBlock<double> b(4, 2);
    expect_error<xg::ShapeError>([&] { b(V(random_array({3, 4}, 1))); }, {"TransformerBlock(d_model=4)", "(N, L, 4)", "(3, 4)"});
    expect_error<xg::ShapeError>([&] { b(V(random_array({2, 3, 5}, 1))); }, {"TransformerBlock(d_model=4)", "(2, 3, 5)"});
    // L = 0 and N = 0: empty outputs, no crash
    BOOST_TEST(b(V(A::from_shape({2, 0, 4}))).shape() == (xg::Shape{2, 0, 4}));
    BOOST_TEST(b(V(A::from_shape({0, 3, 4}))).shape() == (xg::Shape{0, 3, 4}));
}

// ---- agreement with PyTorch ----

namespace {

// One case of tests/data/torch_attention.npz: "param/<name>", "in/<x>", "out", "gout", "grad/...".
std::map<std::string, A> fixture_case(const std::string& name) {
    static const auto all = nn::load_npz<double>(std::string(XGT_DATA_DIR) + "/torch_attention.npz");
    std::map<std::string, A> out;
    for (const auto& [key, array] : all)
        if (key.rfind(name + "/", 0) == 0) out[key.substr(name.size() + 1)] = array;
    BOOST_REQUIRE_MESSAGE(!out.empty(), "no case " << name << " in torch_attention.npz");
    return out;
}

// Loads the case's weights into `m`, runs `run` on the case's inputs, and compares the output and
// the gradients of sum(out * gout) with torch's at a relative 1e-10.
void check_against_torch(nn::Module<double>& m, const std::string& name, const std::vector<std::string>& input_names,
                         const std::function<V(const std::map<std::string, V>&)>& run) {
    auto c = fixture_case(name);
    xg::StateDict<double> state;
    for (const auto& [key, array] : c)
        if (key.rfind("param/", 0) == 0) state.emplace_back(key.substr(6), array);
    m.load_state_dict(state);
    std::map<std::string, V> in;
    for (const auto& n : input_names) in.emplace(n, V(c.at("in/" + n), true));
    for (const auto& p : m.parameters()) p.zero_grad();
    const V y = run(in);
    // the largest |got - want| / |want| over entries with |want| > 1e-6, and the largest |got - want|,
    // reported with --log_level=message
    double worst = 0, worst_abs = 0;
    auto agree = [&](const A& got, const A& want) {
        if (got.shape() != want.shape()) return false;
        for (std::size_t i = 0; i < got.size(); ++i) {
            const double d = std::abs(got.flat(i) - want.flat(i));
            if (std::abs(want.flat(i)) > 1e-6) worst = std::max(worst, d / std::abs(want.flat(i)));
            worst_abs = std::max(worst_abs, d);
            if (!(d <= 1e-10 * std::abs(want.flat(i)) + 1e-13)) return false;
        }
        return true;
    };
    BOOST_TEST(agree(y.data(), c.at("out")), name << ": output");
    xg::sum(y * V(c.at("gout"))).backward();
    for (const auto& n : input_names) BOOST_TEST(agree(in.at(n).grad().data(), c.at("grad/" + n)), name << ": grad " << n);
    for (const auto& [pname, p] : m.named_parameters())
        BOOST_TEST(agree(p.grad().data(), c.at("grad/param/" + pname)), name << ": grad " << pname);
    BOOST_TEST_MESSAGE(name << ": largest relative difference from torch " << worst << ", absolute " << worst_abs);
}

}  // namespace

BOOST_AUTO_TEST_CASE(mha_agrees_with_pytorch) {
    nn::MultiheadAttention<double> self(6, 2);
    check_against_torch(self, "mha_self_causal", {"x"}, [&](const auto& in) {
        const V& x = in.at("x");
        return self(x, x, x, {}, true);
    });
    nn::MultiheadAttention<double> cross(6, 3);
    check_against_torch(cross, "mha_cross_mask", {"q", "k", "v", "mask"},
                        [&](const auto& in) { return cross(in.at("q"), in.at("k"), in.at("v"), in.at("mask")); });
}

BOOST_AUTO_TEST_CASE(block_agrees_with_pytorch) {
    nn::TransformerBlock<double> block(8, 2);
    check_against_torch(block, "block", {"x"}, [&](const auto& in) { return block(in.at("x")); });
}

BOOST_AUTO_TEST_SUITE_END()
