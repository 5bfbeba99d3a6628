// N-d matmul, bmm, N-d linear and the indexing ops (index_select, gather, scatter_add,
// embedding): their errors and their values at the edges (empty batches, K = 0, repeated
// indices). Gradients are checked by the op cases (op_cases.cpp).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

namespace tt = boost::test_tools;
using V = xg::Variable<double>;
using A = xg::Array<double>;
using xgt::expect_error;

namespace {
V zeros(std::initializer_list<std::size_t> shape) {
    return V(A(xt::zeros<double>(std::vector<std::size_t>(shape))), true);
}
// 0, 1, 2, ... in `shape`, as a leaf that needs its gradient.
V iota(std::initializer_list<std::size_t> shape) {
    A a = A::from_shape(std::vector<std::size_t>(shape));
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<double>(i);
    return V(a, true);
}
// An index array of `shape` holding `values` (brace lists with one inner list, {{0}} or
// {{3, 7, 3}}, are ambiguous for xarray's constructors).
xg::IndexArray idx(std::vector<std::size_t> shape, std::vector<std::int64_t> values) {
    xg::IndexArray a = xg::IndexArray::from_shape(shape);
    std::copy(values.begin(), values.end(), a.data());
    return a;
}
// An array of `shape` holding `values`.
A arr(std::vector<std::size_t> shape, std::vector<double> values) {
    A a = A::from_shape(shape);
    std::copy(values.begin(), values.end(), a.data());
    return a;
}
// The 2-D matrix `i` of a 3-D array.
A matrix(const A& a, std::size_t i) { return xt::view(a, i, xt::all(), xt::all()); }
}  // namespace

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(nd_matmul_errors_name_both_shapes) {
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({3}), zeros({4})); }, {"matmul", "(3,)", "(4,)"});
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({2, 3}), zeros({4})); }, {"matmul", "(2, 3)", "(4,)"});
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({}), zeros({4})); }, {"matmul", "()", "(4,)"});
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({2, 3, 4}), zeros({2, 5, 2})); },
                                 {"matmul", "(2, 3, 4)", "(2, 5, 2)", "4 != 5"});
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({2, 3, 4}), zeros({3, 4, 2})); },
                                 {"matmul", "batch", "(2, 3, 4)", "(3, 4, 2)"});
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({5, 3, 4}), zeros({3, 2}), false, true); },
                                 {"matmul", "(5, 3, 4)", "(3, 2)^T"});
    expect_error<xg::ShapeError>([] { xg::matmul(zeros({3}), zeros({3, 2}), true, false); },
                                 {"matmul", "(3,)", "(3, 2)"});
    expect_error<xg::ShapeError>([] { xg::bmm(zeros({3, 4}), zeros({4, 2})); }, {"bmm", "(3, 4)", "(4, 2)"});
    expect_error<xg::ShapeError>([] { xg::bmm(zeros({2, 3, 4}), zeros({1, 4, 2})); },
                                 {"bmm", "(2, 3, 4)", "(1, 4, 2)"});
    expect_error<xg::ShapeError>([] { xg::linear(zeros({2, 3, 5}), zeros({4, 2})); },
                                 {"linear", "(2, 3, 5)", "(4, 2)"});
    expect_error<xg::ShapeError>([] { xg::linear(zeros({2, 3, 4}), zeros({4, 2}), zeros({3})); },
                                 {"linear", "bias", "(3,)"});
}

BOOST_AUTO_TEST_CASE(indexing_errors_name_op_index_and_size) {
    expect_error<xg::IndexError>([] { xg::index_select(zeros({2, 3}), 1, {0, 3}); },
                                 {"index_select", "index 3", "size 3", "(2, 3)"});
    expect_error<xg::IndexError>([] { xg::index_select(zeros({2, 3}), 0, {-1}); },
                                 {"index_select", "index -1", "size 2"});
    expect_error<xg::IndexError>([] { xg::index_select(zeros({2, 3}), 2, {0}); }, {"index_select", "2"});
    expect_error<xg::ShapeError>([] { xg::index_select(zeros({2, 3}), 0, idx({2, 1}, {0, 1})); },
                                 {"index_select", "1-D", "(2, 1)"});
    expect_error<xg::IndexError>([] { xg::gather(zeros({2, 3}), 1, {{0, 7}, {1, 1}}); },
                                 {"gather", "index 7", "size 3"});
    expect_error<xg::IndexError>([] { xg::gather(zeros({2, 3}), -1, idx({1, 2}, {0, -2})); },
                                 {"gather", "index -2", "size 3"});
    expect_error<xg::ShapeError>([] { xg::gather(zeros({2, 3}), 1, {0, 1}); }, {"gather", "(2, 3)", "(2,)"});
    expect_error<xg::ShapeError>([] { xg::gather(zeros({2, 3}), 1, idx({3, 1}, {0, 1, 1})); },
                                 {"gather", "axis 0", "(2, 3)", "(3, 1)"});
    expect_error<xg::IndexError>([] { xg::gather(zeros({2, 3}), -3, idx({1, 1}, {0})); }, {"gather", "-3"});
    expect_error<xg::IndexError>([] { xg::scatter_add(zeros({2, 3}), 0, idx({1, 2}, {0, 2}), zeros({1, 2})); },
                                 {"scatter_add", "index 2", "size 2"});
    expect_error<xg::ShapeError>([] { xg::scatter_add(zeros({2, 3}), 0, idx({1, 2}, {0, 1}), zeros({1, 1})); },
                                 {"scatter_add", "src", "(1, 2)", "(1, 1)"});
    expect_error<xg::ShapeError>([] { xg::scatter_add(zeros({2, 3}), 0, idx({1, 2}, {0, 1}), zeros({2})); },
                                 {"scatter_add", "(2, 3)", "(2,)"});
    expect_error<xg::IndexError>([] { xg::embedding(zeros({5, 3}), idx({1, 2}, {0, 5})); },
                                 {"embedding", "index 5", "size 5", "(5, 3)"});
    expect_error<xg::IndexError>([] { xg::embedding(zeros({5, 3}), {-1}); }, {"embedding", "index -1", "size 5"});
    expect_error<xg::ShapeError>([] { xg::embedding(zeros({5}), {0}); }, {"embedding", "2-D", "(5,)"});
    expect_error<xg::GraphError>([] { xg::gather(V(), 0, {0}); }, {"gather", "undefined"});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(values)

BOOST_AUTO_TEST_CASE(matmul_vectors_follow_torch) {
    V a(A{1, 2, 3}), b(A{4, 5, 6});
    const V dot = xg::matmul(a, b);
    BOOST_TEST(dot.ndim() == 0u);
    BOOST_TEST(dot.item() == 32.0);
    V m(A{{1, 0, 2}, {0, 1, 1}});
    BOOST_TEST(xg::matmul(m, a).data() == A({7, 5}), tt::per_element());
    BOOST_TEST(xg::matmul(V(A{1, 2}), m).data() == A({1, 2, 4}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(batched_matmul_is_a_matmul_per_batch_entry) {
    V a = iota({2, 1, 3, 4}), b = iota({3, 4, 2});
    const V c = xg::matmul(a, b);
    BOOST_TEST(c.shape() == xg::Shape({2, 3, 3, 2}), tt::per_element());
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t h = 0; h < 3; ++h) {
            const A expect = xg::matmul(V(matrix(xt::view(a.data(), i), 0)), V(matrix(b.data(), h))).data();
            BOOST_TEST(A(xt::view(c.data(), i, h)) == expect, tt::per_element());
        }
    // (B, M, K)·(K, N) and bmm agree with the per-entry products too.
    V x = iota({3, 2, 4}), w = iota({4, 5});
    const V y = xg::matmul(x, w);
    for (std::size_t i = 0; i < 3; ++i)
        BOOST_TEST(A(xt::view(y.data(), i)) == xg::matmul(V(matrix(x.data(), i)), w).data(), tt::per_element());
    V p = iota({2, 3, 4}), q = iota({2, 4, 2});
    const V r = xg::bmm(p, q);
    for (std::size_t i = 0; i < 2; ++i)
        BOOST_TEST(A(xt::view(r.data(), i)) == xg::matmul(V(matrix(p.data(), i)), V(matrix(q.data(), i))).data(),
                   tt::per_element());
}

BOOST_AUTO_TEST_CASE(matmul_broadcast_gradient_sums_over_batch) {
    V a = iota({3, 2, 4}), w = iota({4, 5});
    xg::sum(xg::matmul(a, w)).backward();
    V a2 = iota({3, 2, 4}), w2 = iota({4, 5});
    V total;
    for (std::size_t i = 0; i < 3; ++i) {
        const V yi = xg::sum(xg::matmul(xg::reshape(xg::slice(a2, 0, i, i + 1), {2, 4}), w2));
        total = total.defined() ? total + yi : yi;
    }
    total.backward();
    BOOST_TEST(w.grad().data() == w2.grad().data(), tt::per_element());
    BOOST_TEST(a.grad().data() == a2.grad().data(), tt::per_element());
}

BOOST_AUTO_TEST_CASE(matmul_empty_batch_and_empty_inner_dimension) {
    V a = zeros({0, 3, 4}), b = zeros({0, 4, 2});
    const V c = xg::matmul(a, b);
    BOOST_TEST(c.shape() == xg::Shape({0, 3, 2}), tt::per_element());
    xg::sum(c).backward();
    BOOST_TEST(a.grad().shape() == a.shape(), tt::per_element());
    BOOST_TEST(b.grad().shape() == b.shape(), tt::per_element());
    // K = 0: the product of empty matrices is zeros, as in torch.
    V p = zeros({2, 3, 0}), q = zeros({2, 0, 4});
    const V r = xg::matmul(p, q);
    BOOST_TEST(r.data() == A(xt::zeros<double>({2, 3, 4})), tt::per_element());
    xg::sum(r).backward();
    BOOST_TEST(p.grad().shape() == p.shape(), tt::per_element());
    V u = zeros({0}), v = zeros({0});
    BOOST_TEST(xg::matmul(u, v).item() == 0.0);
    // an empty batch folded into one GEMM: (0, 3, 4)·(4, 2)
    BOOST_TEST(xg::matmul(zeros({0, 3, 4}), zeros({4, 2})).shape() == xg::Shape({0, 3, 2}), tt::per_element());
    BOOST_TEST(xg::matmul(zeros({2, 3, 0}), zeros({0, 2})).data() == A(xt::zeros<double>({2, 3, 2})),
               tt::per_element());
    // The same rows path with a transposed weight, backward too: no rows, and K = 0.
    V e = zeros({2, 0, 4}), w = zeros({3, 4});
    const V f = xg::matmul(e, w, false, true);
    BOOST_TEST(f.shape() == xg::Shape({2, 0, 3}), tt::per_element());
    xg::sum(f).backward();
    BOOST_TEST(e.grad().shape() == e.shape(), tt::per_element());
    BOOST_TEST(w.grad().data() == A(xt::zeros<double>({3, 4})), tt::per_element());
    V g = zeros({2, 3, 0}), h = zeros({5, 0});
    const V k = xg::matmul(g, h, false, true);
    BOOST_TEST(k.data() == A(xt::zeros<double>({2, 3, 5})), tt::per_element());
    xg::sum(k).backward();
    BOOST_TEST(g.grad().shape() == g.shape(), tt::per_element());
    BOOST_TEST(h.grad().shape() == h.shape(), tt::per_element());
}

// torch_linear at its edges: no rows (an empty result, a zero weight gradient, a zero bias
// gradient) and K = 0 (every row is the bias; the bias gradient counts the rows).
BOOST_AUTO_TEST_CASE(torch_linear_empty_rows_and_inner_dimension) {
    V x = zeros({2, 0, 4}), w = zeros({3, 4}), b(A{1, 2, 3}, true);
    const V y = xg::torch_linear(x, w, b);
    BOOST_TEST(y.shape() == xg::Shape({2, 0, 3}), tt::per_element());
    xg::sum(y).backward();
    BOOST_TEST(x.grad().shape() == x.shape(), tt::per_element());
    BOOST_TEST(w.grad().data() == A(xt::zeros<double>({3, 4})), tt::per_element());
    BOOST_TEST(b.grad().data() == A({0, 0, 0}), tt::per_element());
    V p = zeros({2, 0}), q = zeros({3, 0}), c(A{1, 2, 3}, true);
    const V r = xg::torch_linear(p, q, c);
    BOOST_TEST(r.data() == A({{1, 2, 3}, {1, 2, 3}}), tt::per_element());
    xg::sum(r).backward();
    BOOST_TEST(c.grad().data() == A({2, 2, 2}), tt::per_element());
    BOOST_TEST(q.grad().shape() == q.shape(), tt::per_element());
}

BOOST_AUTO_TEST_CASE(matmul_propagates_nan_and_inf) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    V a(arr({2, 1, 2}, {1, nan, 1, 2})), b(arr({2, 1}, {1, 1}));
    const A c = xg::matmul(a, b).data();
    BOOST_TEST(std::isnan(c(0, 0, 0)));
    BOOST_TEST(c(1, 0, 0) == 3.0);
}

BOOST_AUTO_TEST_CASE(linear_takes_leading_dimensions) {
    V x = iota({2, 3, 4}), W = iota({4, 5}), b(A{1, 2, 3, 4, 5}, true);
    const V y = xg::linear(x, W, b);
    BOOST_TEST(y.shape() == xg::Shape({2, 3, 5}), tt::per_element());
    const V y2 = xg::linear(xg::reshape(x, {6, 4}), W, b);
    BOOST_TEST(xg::reshape(y, {6, 5}).data() == y2.data(), tt::per_element());
    BOOST_TEST(xg::linear(V(A{1, 0, 0, 1}), W, b).data() == A({16, 19, 22, 25, 28}), tt::per_element());
    BOOST_TEST(xg::linear_relu(x, W, b).shape() == xg::Shape({2, 3, 5}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(index_select_and_its_gradient) {
    V x(A{{1, 2, 3}, {4, 5, 6}}, true);
    const V y = xg::index_select(x, -1, {2, 0, 2});
    BOOST_TEST(y.data() == A({{3, 1, 3}, {6, 4, 6}}), tt::per_element());
    xg::sum(y).backward();
    BOOST_TEST(x.grad().data() == A({{1, 0, 2}, {1, 0, 2}}), tt::per_element());
    BOOST_TEST(xg::index_select(x, 0, xg::IndexArray::from_shape({0})).shape() == xg::Shape({0, 3}),
               tt::per_element());
}

BOOST_AUTO_TEST_CASE(gather_and_scatter_add_values) {
    V x(A{{1, 2}, {3, 4}}, true);
    const V g = xg::gather(x, 1, {{0, 0}, {1, 0}});
    BOOST_TEST(g.data() == A({{1, 1}, {4, 3}}), tt::per_element());
    xg::sum(g).backward();
    BOOST_TEST(x.grad().data() == A({{2, 0}, {1, 1}}), tt::per_element());  // repeated indices add up
    V base(A{{0, 0, 0}, {0, 0, 0}}), src(A{{1, 2, 3}, {4, 5, 6}});
    const V s = xg::scatter_add(base, 0, {{1, 0, 1}, {1, 1, 1}}, src);
    BOOST_TEST(s.data() == A({{0, 2, 0}, {5, 5, 9}}), tt::per_element());
    // index smaller than src: src's other entries are unused and get a zero gradient
    V src2(A{{1, 2, 3}, {4, 5, 6}}, true);
    xg::sum(xg::scatter_add(base, 1, idx({1, 1}, {2}), src2)).backward();
    BOOST_TEST(src2.grad().data() == A({{1, 0, 0}, {0, 0, 0}}), tt::per_element());
    // an empty index gathers nothing and scatters nothing
    BOOST_TEST(xg::gather(x, 0, xg::IndexArray::from_shape({0, 2})).shape() == xg::Shape({0, 2}), tt::per_element());
    const double nan = std::numeric_limits<double>::quiet_NaN();
    BOOST_TEST(std::isnan(xg::gather(V(arr({1, 2}, {nan, 1})), 1, idx({1, 1}, {0})).item()));
}

BOOST_AUTO_TEST_CASE(embedding_shapes_and_repeated_ids) {
    V w(A{{1, 2}, {3, 4}, {5, 6}}, true);
    const V e = xg::embedding(w, {{2, 0}, {2, 2}});
    BOOST_TEST(e.shape() == xg::Shape({2, 2, 2}), tt::per_element());
    BOOST_TEST(e.data() == A({{{5, 6}, {1, 2}}, {{5, 6}, {5, 6}}}), tt::per_element());
    xg::sum(e).backward();
    BOOST_TEST(w.grad().data() == A({{1, 1}, {0, 0}, {3, 3}}), tt::per_element());
    BOOST_TEST(xg::embedding(w, xg::IndexArray(1)).data() == A({3, 4}), tt::per_element());  // 0-d id
    BOOST_TEST(xg::embedding(w, xg::IndexArray::from_shape({2, 0})).shape() == xg::Shape({2, 0, 2}),
               tt::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nn_index_matmul)

BOOST_AUTO_TEST_CASE(embedding_layer_looks_up_rows_and_learns) {
    namespace nn = xg::nn;
    nn::Generator gen(5);
    nn::Embedding<double> emb(1000, 20, {.generator = &gen});
    BOOST_TEST(emb.repr() == "Embedding(1000, 20)");
    BOOST_TEST(emb.parameters().size() == 1u);
    const A& w = emb.weight().data();
    const double mean = xt::mean(w)(), var = xt::variance(w)();
    BOOST_TEST(std::abs(mean) < 0.03);  // N(0, 1), as torch's
    BOOST_TEST(std::abs(var - 1.0) < 0.05);
    const V y = emb(idx({1, 3}, {3, 7, 3}));
    BOOST_TEST(y.shape() == xg::Shape({1, 3, 20}), tt::per_element());
    BOOST_TEST(A(xt::view(y.data(), 0, 0)) == A(xt::view(w, 3)), tt::per_element());
    xg::sum(y).backward();
    BOOST_TEST(emb.weight().grad().data()(3, 0) == 2.0);
    BOOST_TEST(emb.weight().grad().data()(0, 0) == 0.0);
    expect_error<xg::ShapeError>([&] { nn::Embedding<float>(0, 3); }, {});
    expect_error<xg::IndexError>([&] { emb({1000}); }, {});
}

BOOST_AUTO_TEST_CASE(embedding_state_dict_and_checkpoint_round_trip) {
    namespace nn = xg::nn;
    xgt::TempDir dir{"embedding"};
    nn::Generator g1(1), g2(2);
    nn::Embedding<float> a(6, 4, {.generator = &g1}), b(6, 4, {.generator = &g2});
    BOOST_TEST(!xt::allclose(a.weight().data(), b.weight().data()));
    const auto state = a.state_dict();
    BOOST_TEST(state.size() == 1u);
    nn::save(dir / "emb.npz", a);
    nn::load(dir / "emb.npz", b);
    BOOST_TEST(xt::all(xt::equal(a.weight().data(), b.weight().data())));
    nn::Embedding<float> wrong(7, 4);
    expect_error<xg::IoError>([&] { nn::load(dir / "emb.npz", wrong); }, {});
}

BOOST_AUTO_TEST_CASE(linear_and_sequential_take_leading_dimensions) {
    namespace nn = xg::nn;
    nn::Generator gen(3);
    auto lin = std::make_shared<nn::Linear<double>>(4, 3, nn::LinearOptions{.generator = &gen});
    nn::Sequential<double> net(lin, std::make_shared<nn::ReLU<double>>(),
                               std::make_shared<nn::Linear<double>>(3, 2, nn::LinearOptions{.generator = &gen}));
    V x = iota({2, 5, 4});
    const V y = net(x);
    BOOST_TEST(y.shape() == xg::Shape({2, 5, 2}), tt::per_element());
    const V y2 = net(xg::reshape(x, {10, 4}));
    BOOST_TEST(xg::reshape(y, {10, 2}).data() == y2.data(), tt::per_element());
    xg::sum(y).backward();
    BOOST_TEST(x.grad().shape() == x.shape(), tt::per_element());
    BOOST_TEST((*lin)(V(A{1, 2, 3, 4})).shape() == xg::Shape({3}), tt::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
