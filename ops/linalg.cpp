// Matrix products through BLAS (cblas on pointers into the arrays). Transposed operands are
// passed to BLAS as flags, so neither the forward nor the backward pass copies a matrix to
// transpose it.
#include <algorithm>
#include <limits>
#include <optional>

#include <fmt/format.h>
#include <xflens/cxxblas/drivers/cblas.h>  // cblas's declarations, as xtensor-blas ships them

#include "ops/gemm.hpp"
#include "ops/instantiate.hpp"
#include "ops/ops.hpp"
#include "ops/vector_math.hpp"

namespace xg {

// gemm_raw (ops/gemm.hpp): the one caller of cblas in the library, through the netlib cblas
// declarations that xtensor-blas ships (int dimensions, as Debian's LP64 OpenBLAS takes them;
// OpenBLAS's own <cblas.h> names that type blasint, netlib's CBLAS_INT).
template <class T>
void gemm_strided(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                  std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const auto M = static_cast<CBLAS_INT>(m), N = static_cast<CBLAS_INT>(n), K = static_cast<CBLAS_INT>(k);
    const auto LDA = static_cast<CBLAS_INT>(lda), LDB = static_cast<CBLAS_INT>(ldb), LDC = static_cast<CBLAS_INT>(ldc);
    if constexpr (std::is_same_v<T, float>)
        cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, a, LDA, b, LDB, beta, c, LDC);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, a, LDA, b, LDB, beta, c, LDC);
}
template void gemm_strided<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                                  const float*, std::size_t, float, float*, std::size_t);
template void gemm_strided<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                                   std::size_t, const double*, std::size_t, double, double*, std::size_t);

template <class T>
void gemm_raw(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, const T* b, T* c, T beta) {
    gemm_strided(ta, tb, m, n, k, T(1), a, ta ? m : k, b, tb ? k : n, beta, c, n);
}
template void gemm_raw<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, const float*, float*,
                              float);
template void gemm_raw<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*, const double*,
                               double*, double);

const std::size_t gemm_max_dim = static_cast<std::size_t>(std::numeric_limits<CBLAS_INT>::max());

namespace {

struct GemmShape {
    std::size_t m, k, n;
};

std::vector<long> as_long(const Shape& s) { return std::vector<long>(s.begin(), s.end()); }

// An operand as a matrix: its last axis the columns, every other axis the rows, which is what
// a row-major array of two or more dimensions is in memory (a (B, L, E) activation is the (B L,
// E) matrix), so a product with it needs no reshape, forward or backward.
template <class T>
std::pair<std::size_t, std::size_t> matrix_of(const Array<T>& x) {
    std::size_t rows = 1;
    for (std::size_t i = 0; i + 1 < x.dimension(); ++i) rows *= x.shape()[i];
    return {rows, x.shape()[x.dimension() - 1]};
}

// Rows/cols of op(a) and op(b) (each operand as matrix_of sees it); throws naming both shapes if
// they do not chain or exceed BLAS's integer type.
template <class T>
GemmShape gemm_shape(std::string_view op, const Array<T>& a, const Array<T>& b, bool ta, bool tb) {
    if (a.dimension() < 2 || b.dimension() < 2)
        throw ShapeError(fmt::format("{}: expects operands of at least 2 dimensions, got shapes {} and {}", op,
                                     shape_str(a.shape()), shape_str(b.shape())));
    const auto [ar, ac] = matrix_of(a);
    const auto [br, bc] = matrix_of(b);
    const std::size_t m = ta ? ac : ar, k = ta ? ar : ac, kb = tb ? bc : br, n = tb ? br : bc;
    if (k != kb)
        throw ShapeError(fmt::format("{}: shapes {}{} and {}{} are not aligned ({} != {})", op,
                                     shape_str(a.shape()), ta ? "^T" : "", shape_str(b.shape()), tb ? "^T" : "",
                                     k, kb));
    shape_size(Shape{m, n}, op);  // (2^40, 0)·(0, 2^40) has more elements than exist
    if (m > gemm_max_dim || k > gemm_max_dim || n > gemm_max_dim)
        throw ResourceError(fmt::format("{}: matrices of shapes {} and {} exceed BLAS's {} rows or columns", op,
                                        shape_str(a.shape()), shape_str(b.shape()), gemm_max_dim));
    return {m, k, n};
}

// c = op(a)·op(b) + beta·c, operands as matrix_of sees them, c of m x n elements. For beta = 0 c
// is cleared here and BLAS adds the product: OpenBLAS cleared C for beta = 0 with a loop that
// took 20 of the 88 us of the first layer's weight gradient at batch 32 (784 x 100 from 32
// rows; memset 3.5) on the Xeon of 2026-11-30. On the AMD EPYC (2026-12-03, C out of the cache)
// the two ways take the same time with OpenBLAS's Cooperlake and Haswell kernels alike (that
// product 40 and 57 us; 4320 x 100 from 32 rows 213 us), and clearing and multiplying C in
// blocks of 128 to 512 kB, to keep each block in L2 between the two, was 3 to 6% slower.
template <class T>
void gemm_into(const Array<T>& a, const Array<T>& b, bool ta, bool tb, Array<T>& c, T beta) {
    const GemmShape s = gemm_shape("matmul", a, b, ta, tb);
    if (c.size() == 0) return;
    if (beta == T(0)) {  // c may be fresh, uninitialised memory: clear it, never scale it
        std::fill_n(c.data(), c.size(), T(0));
        beta = T(1);
    }
    if (s.k == 0) {  // empty inner dimension: op(a)·op(b) = 0
        if (beta != T(1)) std::for_each(c.data(), c.data() + c.size(), [beta](T& v) { v *= beta; });
        return;
    }
    gemm_raw(ta, tb, s.m, s.n, s.k, a.data(), b.data(), c.data(), beta);
}

template <class T>
struct MatMul final : Function<T> {
    MatMul(bool ta, bool tb) : ta(ta), tb(tb) {}
    std::string_view name() const override { return "matmul"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const GemmShape s = gemm_shape(name(), xs[0], xs[1], ta, tb);
        Shape out{s.m, s.n};
        if (!ta && xs[0].dimension() > 2) {  // (..., K) rows in, (..., N) rows out
            out = xs[0].shape();
            out.back() = s.n;
        }
        Array<T> c = Array<T>::from_shape(out);
        gemm_into(xs[0], xs[1], ta, tb, c, T(0));
        return c;
    }
    // C = op(A)·op(B): dA = dC·op(B)^T (transposed back if A was), dB = op(A)^T·dC likewise, as
    // products of the same matrices (an operand of more than two dimensions stays as it is).
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& a = this->input(0);
        const Variable<T>& b = this->input(1);
        const auto product = [](const Variable<T>& x, const Variable<T>& y, bool tx, bool ty, const Shape& want) {
            const Variable<T> p = apply<MatMul<T>>({x, y}, tx, ty);
            return p.shape() == want ? p : reshape(p, as_long(want));
        };
        Variable<T> ga, gb;
        if (this->needs_input_grad(0))
            ga = ta ? product(b, gy, tb, true, a.shape()) : product(gy, b, false, !tb, a.shape());
        if (this->needs_input_grad(1))
            gb = tb ? product(gy, a, true, ta, b.shape()) : product(a, gy, !ta, false, b.shape());
        return {ga, gb};
    }
    // The same products, added by the GEMM (beta = 1): a weight used at every step of a sequence
    // gets its per-step gradients without an array and an add for each.
    bool add_input_grad(std::size_t i, const Array<T>& gy, Array<T>& sum) override {
        const Array<T>& a = this->input(0).data();
        const Array<T>& b = this->input(1).data();
        if (i == 0) {
            if (ta) gemm_into(b, gy, tb, true, sum, T(1));
            else gemm_into(gy, b, false, !tb, sum, T(1));
        } else {
            if (tb) gemm_into(gy, a, true, ta, sum, T(1));
            else gemm_into(a, gy, !ta, false, sum, T(1));
        }
        return true;
    }
    bool ta, tb;
};

// A batched product op(a)·op(b) of operands of at least 2 dimensions: the result's shape, the
// matrix sizes, and for each of the result's matrices (row-major over the broadcast batch
// dimensions) the index of the matrix of a and of b it multiplies.
struct BatchPlan {
    Shape out;
    std::size_t m, k, n;
    std::vector<std::size_t> a_matrix, b_matrix;
};

BatchPlan batch_plan(std::string_view op, const Shape& as, const Shape& bs, bool ta, bool tb) {
    if (as.size() < 2 || bs.size() < 2)
        throw ShapeError(fmt::format("{}: expects operands of at least 2 dimensions with transpose flags, got shapes "
                                     "{} and {}",
                                     op, shape_str(as), shape_str(bs)));
    const std::size_t ra = as.size() - 2, rb = bs.size() - 2, nb = std::max(ra, rb);
    BatchPlan p;
    p.m = ta ? as[ra + 1] : as[ra];
    p.k = ta ? as[ra] : as[ra + 1];
    const std::size_t kb = tb ? bs[rb + 1] : bs[rb];
    p.n = tb ? bs[rb] : bs[rb + 1];
    if (p.k != kb)
        throw ShapeError(fmt::format("{}: shapes {}{} and {}{} are not aligned ({} != {})", op, shape_str(as),
                                     ta ? "^T" : "", shape_str(bs), tb ? "^T" : "", p.k, kb));
    // Batch dimensions aligned on the right; a missing one is 1.
    Shape da(nb, 1), db(nb, 1);
    std::copy_n(as.begin(), ra, da.begin() + static_cast<std::ptrdiff_t>(nb - ra));
    std::copy_n(bs.begin(), rb, db.begin() + static_cast<std::ptrdiff_t>(nb - rb));
    p.out = Shape(nb + 2);
    for (std::size_t i = 0; i < nb; ++i) {
        if (da[i] != db[i] && da[i] != 1 && db[i] != 1)
            throw ShapeError(fmt::format("{}: the batch dimensions of shapes {} and {} do not broadcast", op,
                                         shape_str(as), shape_str(bs)));
        p.out[i] = da[i] == 1 ? db[i] : da[i];
    }
    p.out[nb] = p.m;
    p.out[nb + 1] = p.n;
    shape_size(p.out, op);
    const std::size_t blas_max = gemm_max_dim;
    if (p.m > blas_max || p.k > blas_max || p.n > blas_max)
        throw ResourceError(fmt::format("{}: matrices of shapes {} and {} exceed BLAS's {} rows or columns", op,
                                        shape_str(as), shape_str(bs), blas_max));
    std::size_t count = 1;
    for (std::size_t i = 0; i < nb; ++i) count *= p.out[i];
    p.a_matrix.assign(count, 0);
    p.b_matrix.assign(count, 0);
    if (count == 0) return p;
    // Matrix strides of a and b along each batch dimension, 0 where it is broadcast.
    std::vector<std::size_t> sa(nb, 0), sb(nb, 0);
    for (std::size_t i = nb, step_a = 1, step_b = 1; i-- > 0;) {
        if (da[i] != 1) sa[i] = step_a;
        if (db[i] != 1) sb[i] = step_b;
        step_a *= da[i];
        step_b *= db[i];
    }
    std::vector<std::size_t> index(nb, 0);
    std::size_t ia = 0, ib = 0;
    for (std::size_t t = 0; t < count; ++t) {
        p.a_matrix[t] = ia;
        p.b_matrix[t] = ib;
        for (std::size_t i = nb; i-- > 0;) {  // the odometer's next position
            ia += sa[i];
            ib += sb[i];
            if (++index[i] < p.out[i]) break;
            ia -= sa[i] * index[i];
            ib -= sb[i] * index[i];
            index[i] = 0;
        }
    }
    return p;
}

// op(a)·op(b) over broadcast batch dimensions: one GEMM per matrix of the result, on pointers
// into a and b (a broadcast operand is read in place, never copied).
template <class T>
struct BatchedMatMul final : Function<T> {
    BatchedMatMul(bool ta, bool tb) : ta(ta), tb(tb) {}
    std::string_view name() const override { return "matmul"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const BatchPlan p = batch_plan(name(), xs[0].shape(), xs[1].shape(), ta, tb);
        Array<T> c = Array<T>::from_shape(p.out);
        if (c.size() == 0) return c;
        if (p.k == 0) {  // products over an empty inner dimension: zeros
            std::fill_n(c.data(), c.size(), T(0));
            return c;
        }
        // Each matrix of c is cleared just before its GEMM (see gemm_into: clearing beats BLAS's
        // beta = 0), while it is small enough to stay in L1 for the GEMM, not all of c up front.
        const std::size_t sa = p.m * p.k, sb = p.k * p.n, sc = p.m * p.n;
        for (std::size_t t = 0; t < p.a_matrix.size(); ++t) {
            std::fill_n(c.data() + t * sc, sc, T(0));
            gemm_raw(ta, tb, p.m, p.n, p.k, xs[0].data() + p.a_matrix[t] * sa, xs[1].data() + p.b_matrix[t] * sb,
                     c.data() + t * sc, T(1));
        }
        return c;
    }
    // As MatMul's, each gradient then summed over the batch dimensions its operand broadcast.
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T>& a = this->input(0);
        const Variable<T>& b = this->input(1);
        Variable<T> ga, gb;
        if (this->needs_input_grad(0))
            ga = sum_to(ta ? matmul(b, gy, tb, true) : matmul(gy, b, false, !tb), a.shape());
        if (this->needs_input_grad(1))
            gb = sum_to(tb ? matmul(gy, a, true, ta) : matmul(a, gy, !ta, false), b.shape());
        return {ga, gb};
    }
    bool ta, tb;
};

// x·W + b (xs = {x, W} or {x, W, b}) in one BLAS call: b is copied into each row of the output,
// then gemm adds x·W (beta = 1). (A row copy: xtensor's broadcast assignment took 14% of a
// batch-128 training step.) x (..., K) is the matrix of its rows, as matrix_of sees it, and the
// result (..., N): no reshape of a sequence's activations either way.
template <class T>
Array<T> affine(std::string_view op, const ArrayRefs<T>& xs) {
    const Array<T>& x = xs[0];
    const Array<T>& W = xs[1];
    // W 2-D only: gemm_shape would take a (1, K, N) weight as its (K, N) matrix.
    if (x.dimension() < 2 || W.dimension() != 2)
        throw ShapeError(fmt::format("{}: expects an input of at least 2 dimensions and a 2-D weight here, got "
                                     "shapes {} and {}",
                                     op, shape_str(x.shape()), shape_str(W.shape())));
    const GemmShape s = gemm_shape(op, x, W, false, false);
    Shape out = x.shape();
    out.back() = s.n;
    Array<T> y = Array<T>::from_shape(out);
    if (xs.size() == 2) {
        gemm_into(x, W, false, false, y, T(0));
        return y;
    }
    const Array<T>& b = xs[2];
    if (b.dimension() != 1 || b.shape()[0] != s.n)
        throw ShapeError(fmt::format("{}: bias of shape {} does not match output of shape {}", op,
                                     shape_str(b.shape()), shape_str(out)));
    vmath::fill_rows(b.data(), s.n, s.m, y.data());
    gemm_into(x, W, false, false, y, T(1));
    return y;
}

// The gradients of x·W + b for the gradient gh of its result: {gx, gW} or {gx, gW, gb}. MatMul
// takes x and gh of more than two dimensions as the matrices of their rows.
template <class T>
std::vector<Variable<T>> affine_grads(const Function<T>& fn, const Variable<T>& gh, const Variable<T>& gb) {
    Variable<T> gx, gW;
    if (fn.needs_input_grad(0)) gx = apply<MatMul<T>>({gh, fn.input(1)}, false, true);
    if (fn.needs_input_grad(1)) gW = apply<MatMul<T>>({fn.input(0), gh}, true, false);
    if (fn.inputs().size() == 2) return {gx, gW};
    return {gx, gW, gb};
}

template <class T>
bool needs_bias_grad(const Function<T>& fn) {
    return fn.inputs().size() == 3 && fn.needs_input_grad(2);
}

template <class T>
struct Linear final : Function<T> {
    std::string_view name() const override { return "linear"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return affine(name(), xs); }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return affine_grads(*this, gy, needs_bias_grad(*this) ? sum_to(gy, this->input(2).shape()) : Variable<T>());
    }
};

// relu's backward for a relu output y of m rows of n (its last axis), the bias gradient's column
// sums in the same pass: gh = gy where y > 0, 0 * gy elsewhere (leaky_relu_grad's values, NaN and
// Inf alike), and, when `sums` holds n zeros, sums[j] += gh[0][j] + gh[1][j] + ... in row order,
// as sum_to onto the bias adds them: the same bits.
template <class T>
Array<T> relu_grad_and_column_sums(const Array<T>& gy, const Array<T>& y, std::optional<Array<T>>& sums) {
    const std::size_t n = y.shape().back(), m = n == 0 ? 0 : y.size() / n;
    Array<T> gh = Array<T>::from_shape(y.shape());
    vmath::relu_grad_rows(gy.data(), y.data(), gh.data(), m, n, sums ? sums->data() : nullptr);
    return gh;
}

// relu(x·W + b) as one op: what nn::Sequential runs for a Linear followed by a ReLU. Same values
// and gradients as linear then relu, with relu applied in place to the product and, backward,
// relu's mask and the bias gradient's sums taken in one pass over the gradient; the mask comes
// from the output (y > 0 exactly where x·W + b > 0), so no pre-activation is kept.
template <class T>
struct LinearRelu final : Function<T> {
    std::string_view name() const override { return "linear_relu"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = affine(name(), xs);
        vmath::relu(y.data(), y.data(), y.size());
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        const Variable<T> y = this->output();
        if (recording_backward()) {  // create_graph: the backward is recorded, so it is made of ops
            const Variable<T> gh = leaky_relu_grad(gy, y, T(0));
            return affine_grads(*this, gh, needs_bias_grad(*this) ? sum_to(gh, this->input(2).shape()) : Variable<T>());
        }
        std::optional<Array<T>> sums;  // no array at all when the bias needs no gradient
        if (needs_bias_grad(*this)) sums.emplace(full<T>({y.shape().back()}, T(0)));
        Array<T> gh = relu_grad_and_column_sums(gy.data(), y.data(), sums);
        return affine_grads(*this, Variable<T>(std::move(gh)), sums ? Variable<T>(std::move(*sums)) : Variable<T>());
    }
};

}  // namespace

namespace {

// `shape` without its axis `axis` (a vector operand's dimension, removed from the result).
std::vector<long> drop_axis(const Shape& shape, std::size_t axis) {
    std::vector<long> s = as_long(shape);
    s.erase(s.begin() + static_cast<std::ptrdiff_t>(axis));
    return s;
}

// x·Wᵀ + b, W (out, in), x (..., in) as rows; inputs {x, W} or {x, W, b}. The bias fills the
// result's rows and the GEMM adds to them (beta = 1), as affine does.
template <class T>
struct TorchLinear final : Function<T> {
    std::string_view name() const override { return "torch_linear"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Array<T>& x = xs[0];
        const GemmShape s = gemm_shape(name(), x, xs[1], false, true);
        Shape out = x.shape();
        out.back() = s.n;
        Array<T> y = Array<T>::from_shape(out);
        if (xs.size() == 2) {
            gemm_into(x, xs[1], false, true, y, T(0));
            return y;
        }
        vmath::fill_rows(xs[2].data(), s.n, s.m, y.data());
        gemm_into(x, xs[1], false, true, y, T(1));
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        std::vector<Variable<T>> g(this->inputs().size());
        if (this->needs_input_grad(0)) g[0] = apply<MatMul<T>>({gy, this->input(1)}, false, false);
        if (this->needs_input_grad(1)) g[1] = apply<MatMul<T>>({gy, this->input(0)}, true, false);
        if (g.size() == 3 && this->needs_input_grad(2)) g[2] = sum_to(gy, this->input(2).shape());
        return g;
    }
    // The weight's gradient added by the GEMM (beta = 1), as MatMul's.
    bool add_input_grad(std::size_t i, const Array<T>& gy, Array<T>& sum) override {
        if (i != 1) return false;
        gemm_into(gy, this->input(0).data(), true, false, sum, T(1));
        return true;
    }
};

// x·W + b for x of any number of dimensions: the ops take x (..., in) as the matrix of its rows,
// so only a vector (one row) is reshaped, in and out.
template <class Op, class T>
Variable<T> affine_nd(std::string_view op, const Variable<T>& x, const Variable<T>& W, const Variable<T>& b) {
    auto run = [&](const Variable<T>& x2) {
        if (!b.defined()) return apply<Op>({x2, W});
        return apply<Op>({x2, W, b});
    };
    if (!x.defined() || !W.defined() || x.ndim() != 1 || W.ndim() != 2) return run(x);
    if (x.shape()[0] != W.shape()[0])
        throw ShapeError(fmt::format("{}: input of shape {} does not match weight of shape {} ({} != {})", op,
                                     shape_str(x.shape()), shape_str(W.shape()), x.shape()[0], W.shape()[0]));
    const Variable<T> y = run(reshape(x, {1, static_cast<long>(x.shape()[0])}));
    return reshape(y, {static_cast<long>(W.shape()[1])});
}

}  // namespace

template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b, bool transpose_a, bool transpose_b) {
    if (!a.defined() || !b.defined() || (a.ndim() == 2 && b.ndim() == 2))
        return apply<MatMul<T>>({a, b}, transpose_a, transpose_b);
    batch_plan("matmul", a.shape(), b.shape(), transpose_a, transpose_b);  // the shapes' errors
    // (..., M, K)·(K, N): a's matrices are one (... M, K) matrix, so the product is one GEMM on a
    // as it is (MatMul takes it so), with no reshape either way.
    if (b.ndim() == 2 && !transpose_a) return apply<MatMul<T>>({a, b}, false, transpose_b);
    return apply<BatchedMatMul<T>>({a, b}, transpose_a, transpose_b);
}

template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b) {
    if (!a.defined() || !b.defined() || (a.ndim() >= 2 && b.ndim() >= 2)) return matmul(a, b, false, false);
    if (a.ndim() == 0 || b.ndim() == 0)
        throw ShapeError(fmt::format("matmul: both operands need at least 1 dimension, got shapes {} and {}",
                                     shape_str(a.shape()), shape_str(b.shape())));
    // A vector operand becomes a (1, K) row on the left or a (K, 1) column on the right, whose
    // dimension is then removed from the product.
    const std::size_t k = a.ndim() == 1 ? a.shape()[0] : a.shape()[a.ndim() - 1];
    const std::size_t kb = b.ndim() == 1 ? b.shape()[0] : b.shape()[b.ndim() - 2];
    if (k != kb)
        throw ShapeError(fmt::format("matmul: shapes {} and {} are not aligned ({} != {})", shape_str(a.shape()),
                                     shape_str(b.shape()), k, kb));
    const long K = static_cast<long>(k);
    const Variable<T> a2 = a.ndim() == 1 ? reshape(a, {1, K}) : a;
    const Variable<T> b2 = b.ndim() == 1 ? reshape(b, {K, 1}) : b;
    const Variable<T> y = matmul(a2, b2, false, false);
    if (a.ndim() == 1 && b.ndim() == 1) return reshape(y, {});
    return reshape(y, drop_axis(y.shape(), a.ndim() == 1 ? y.ndim() - 2 : y.ndim() - 1));
}

template <class T>
Variable<T> bmm(const Variable<T>& a, const Variable<T>& b) {
    if (a.defined() && b.defined() && (a.ndim() != 3 || b.ndim() != 3 || a.shape()[0] != b.shape()[0]))
        throw ShapeError(fmt::format("bmm: expects 3-D operands with the same batch size, got shapes {} and {}",
                                     shape_str(a.shape()), shape_str(b.shape())));
    return matmul(a, b, false, false);
}

template <class T>
Variable<T> linear(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b) {
    return affine_nd<Linear<T>>("linear", x, W, b);
}

template <class T>
Variable<T> linear_relu(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b) {
    return affine_nd<LinearRelu<T>>("linear_relu", x, W, b);
}

template <class T>
Variable<T> torch_linear(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b) {
    if (!x.defined() || !W.defined()) throw ValueError("torch_linear: the input and the weight must be defined");
    if (W.ndim() != 2 || x.ndim() == 0 || x.shape().back() != W.shape()[1] ||
        (b.defined() && (b.ndim() != 1 || b.shape()[0] != W.shape()[0])))
        throw ShapeError(fmt::format("torch_linear: expects x (..., in), W (out, in) and b (out,), got x {}, W {}{}",
                                     shape_str(x.shape()), shape_str(W.shape()),
                                     b.defined() ? ", b " + shape_str(b.shape()) : std::string()));
    if (x.ndim() == 1) {  // one row
        const Variable<T> y = torch_linear(reshape(x, {1, static_cast<long>(x.shape()[0])}), W, b);
        return reshape(y, {static_cast<long>(W.shape()[0])});
    }
    if (!b.defined()) return apply<TorchLinear<T>>({x, W});
    return apply<TorchLinear<T>>({x, W, b});
}

XG_INSTANTIATE_OP(bmm)
XG_INSTANTIATE_OP(torch_linear)
XG_INSTANTIATE_OP(linear)
XG_INSTANTIATE_OP(linear_relu)

// Overloaded names: the signature is needed to say which one.
#define XG_INSTANTIATE(T)                                                \
    template Variable<T> matmul(const Variable<T>&, const Variable<T>&); \
    template Variable<T> matmul(const Variable<T>&, const Variable<T>&, bool, bool);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg
