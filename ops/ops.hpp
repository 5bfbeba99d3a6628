#pragma once
// Every differentiable op of xgrad. Each is defined next to its backward in one ops/*.cpp file
// and explicitly instantiated there for float and double, by name (XG_INSTANTIATE_OP, in
// ops/instantiate.hpp) unless the name is overloaded: a signature is written here and at the
// definition, nowhere else. The declarations are here because user code compiles against this
// header while the definitions, heavy with xtensor templates, are compiled once, in the library.
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "graph/function.hpp"
#include "graph/variable.hpp"

namespace xg {

// The number argument of an op on Variable<T> (a constant, an exponent, a slope): T itself, in a
// form that takes no part in deducing T. `2.0 * x` with x a Variable<float> deduces T = float from
// x alone and converts 2.0 to float; a plain `T c` parameter would deduce double from 2.0 as well,
// and the call would match nothing. Every wrapper taking a number beside a Variable<T> takes a
// Scalar<T>.
template <class T>
using Scalar = std::type_identity_t<T>;

// Integer class labels, one per row, for softmax_cross_entropy.
using Labels = xt::xtensor<std::int64_t, 1>;

// ---- elementwise, with numpy broadcasting (ops/elementwise.cpp) ----
template <class T> Variable<T> add(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> sub(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> mul(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> div(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> neg(const Variable<T>& x);
template <class T> Variable<T> add(const Variable<T>& x, Scalar<T> c);   // x + c
template <class T> Variable<T> mul(const Variable<T>& x, Scalar<T> c);   // x * c
template <class T> Variable<T> rsub(Scalar<T> c, const Variable<T>& x);  // c - x
template <class T> Variable<T> rdiv(Scalar<T> c, const Variable<T>& x);  // c / x
template <class T> Variable<T> pow(const Variable<T>& x, Scalar<T> exponent);
template <class T> Variable<T> exp(const Variable<T>& x);
template <class T> Variable<T> log(const Variable<T>& x);
template <class T> Variable<T> sqrt(const Variable<T>& x);
template <class T> Variable<T> abs(const Variable<T>& x);

// ---- activations (ops/activation.cpp) ----
template <class T> Variable<T> sigmoid(const Variable<T>& x);
template <class T> Variable<T> tanh(const Variable<T>& x);
template <class T> Variable<T> relu(const Variable<T>& x);
template <class T> Variable<T> leaky_relu(const Variable<T>& x, Scalar<T> slope = Scalar<T>(0.01));
template <class T> Variable<T> softplus(const Variable<T>& x);  // log(1 + e^x), stable for large |x|
// leaky_relu's backward as one fused op: gy where x > 0, slope * gy elsewhere (slope 0: relu's).
template <class T> Variable<T> leaky_relu_grad(const Variable<T>& gy, const Variable<T>& x, Scalar<T> slope);

// ---- reductions (ops/reduce.cpp); axes may be negative ----
template <class T> Variable<T> sum(const Variable<T>& x);
template <class T> Variable<T> sum(const Variable<T>& x, long axis, bool keepdims = false);
template <class T> Variable<T> mean(const Variable<T>& x);
template <class T> Variable<T> mean(const Variable<T>& x, long axis, bool keepdims = false);
template <class T> Variable<T> max(const Variable<T>& x);
template <class T> Variable<T> max(const Variable<T>& x, long axis, bool keepdims = false);

// ---- shape (ops/shape.cpp) ----
// One dimension of `shape` may be -1: it is inferred from the size.
template <class T> Variable<T> reshape(const Variable<T>& x, const std::vector<long>& shape);
template <class T> Variable<T> transpose(const Variable<T>& x);  // reverses the axes
template <class T> Variable<T> transpose(const Variable<T>& x, const std::vector<std::size_t>& axes);
template <class T> Variable<T> broadcast_to(const Variable<T>& x, const Shape& shape);
// Sums x down to `shape` (the inverse of broadcast_to); the gradient of broadcasting.
template <class T> Variable<T> sum_to(const Variable<T>& x, const Shape& shape);
// Rows x[indices[0]], x[indices[1]], ... along axis 0 (a mini-batch, an embedding lookup):
// index_select along axis 0, defined with it in ops/index.cpp.
template <class T> Variable<T> rows(const Variable<T>& x, const std::vector<std::size_t>& indices);
// x[start:stop:step] along `axis`.
template <class T>
Variable<T> slice(const Variable<T>& x, long axis, std::size_t start, std::size_t stop, std::size_t step = 1);
template <class T> Variable<T> concatenate(const std::vector<Variable<T>>& xs, long axis = 0);

// ---- linear algebra (ops/linalg.cpp), BLAS ----
// torch.matmul's rules: 1-D·1-D is a dot product (0-d result); a 1-D operand is a row (left) or
// a column (right) vector, its dimension removed from the result; N-d operands are stacks of
// matrices over their leading (batch) dimensions, which broadcast: (B, 1, M, K)·(H, K, N) is
// (B, H, M, N). Each batch entry is one GEMM on the arrays in place.
template <class T> Variable<T> matmul(const Variable<T>& a, const Variable<T>& b);
// op(a)·op(b) where op transposes the last two axes when asked (a and b at least 2-D; batch
// dimensions broadcast as above): transposes go to BLAS as flags, never copied.
template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b, bool transpose_a, bool transpose_b);
// torch.bmm: a (B, M, K), b (B, K, N) -> (B, M, N), without broadcasting.
template <class T> Variable<T> bmm(const Variable<T>& a, const Variable<T>& b);
// x·W + b for x (..., in), W (in, out), b (out,) or undefined for no bias: any number of leading
// dimensions, as torch's Linear (the 2-D case is one GEMM on x as it is).
template <class T> Variable<T> linear(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b = {});
// relu(linear(x, W, b)) as one op (nn::Sequential runs Linear then ReLU so): same values and
// gradients, one pass over the activations fewer each way.
template <class T> Variable<T> linear_relu(const Variable<T>& x, const Variable<T>& W, const Variable<T>& b = {});

// ---- indexing (ops/index.cpp) ----
// Integer index arrays (torch's LongTensor), e.g. IndexArray{2, 0, 2}. An index outside
// [0, size) throws IndexError naming the op, the index and the size (no negative indices).
using IndexArray = xt::xarray<std::int64_t>;
// x's entries at `indices` (1-D) along `axis`: torch.index_select. Repeated indices are allowed;
// the backward adds their gradients.
template <class T> Variable<T> index_select(const Variable<T>& x, long axis, const IndexArray& indices);
// torch.gather: y[i][j][k] = x[index[i][j][k]][j][k] for axis 0 (and so on); index has x's number
// of dimensions, at most x's size on the other axes, and y has index's shape.
template <class T> Variable<T> gather(const Variable<T>& x, long axis, const IndexArray& index);
// torch.scatter_add (out of place): x with src[i][j][k] added at [index[i][j][k]][j][k] for axis
// 0 (and so on), for every position of index (at most src's size on every axis, x's on the others).
template <class T>
Variable<T> scatter_add(const Variable<T>& x, long axis, const IndexArray& index, const Variable<T>& src);
// Rows of weight (num, dim) for ids of any shape: ids.shape + (dim,). The backward adds the
// gradients of repeated ids.
template <class T> Variable<T> embedding(const Variable<T>& weight, const IndexArray& ids);

// ---- softmax and losses (ops/loss.cpp) ----
enum class Reduction { mean, sum, none };
template <class T> Variable<T> softmax(const Variable<T>& x, long axis = -1);
template <class T> Variable<T> log_softmax(const Variable<T>& x, long axis = -1);
// Fused, stable softmax + cross entropy over rows of x (N, C): integer labels or one-hot (N, C).
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& x, const Labels& labels, Reduction r = Reduction::mean);
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& x, const Variable<T>& onehot,
                                  Reduction r = Reduction::mean);
// mean((a - b)^2) over every element.
template <class T> Variable<T> mean_squared_error(const Variable<T>& a, const Variable<T>& b);

// ---- operators ----
template <class T> Variable<T> operator+(const Variable<T>& a, const Variable<T>& b) { return add(a, b); }
template <class T> Variable<T> operator-(const Variable<T>& a, const Variable<T>& b) { return sub(a, b); }
template <class T> Variable<T> operator*(const Variable<T>& a, const Variable<T>& b) { return mul(a, b); }
template <class T> Variable<T> operator/(const Variable<T>& a, const Variable<T>& b) { return div(a, b); }
template <class T> Variable<T> operator-(const Variable<T>& x) { return neg(x); }
template <class T> Variable<T> operator+(const Variable<T>& x, Scalar<T> c) { return add(x, c); }
template <class T> Variable<T> operator+(Scalar<T> c, const Variable<T>& x) { return add(x, c); }
template <class T> Variable<T> operator-(const Variable<T>& x, Scalar<T> c) { return add(x, -c); }
template <class T> Variable<T> operator-(Scalar<T> c, const Variable<T>& x) { return rsub(c, x); }
template <class T> Variable<T> operator*(const Variable<T>& x, Scalar<T> c) { return mul(x, c); }
template <class T> Variable<T> operator*(Scalar<T> c, const Variable<T>& x) { return mul(x, c); }
template <class T> Variable<T> operator/(const Variable<T>& x, Scalar<T> c) { return mul(x, Scalar<T>(1) / c); }
template <class T> Variable<T> operator/(Scalar<T> c, const Variable<T>& x) { return rdiv(c, x); }

}  // namespace xg
