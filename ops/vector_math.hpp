#pragma once
// Internal to the ops' .cpp files (not installed): the loops whose cost is their exponentials or
// their narrow SIMD batches, over arrays at raw pointers, run with AVX2 or AVX-512 where the CPU
// has them: the activations (sigmoid, tanh, gelu and its derivative), the softmaxes' contiguous
// rows, layer_norm's rows, batch_norm's channels. xsimd's exp takes 2.2 ns an element in the baseline build's 4-lane
// SSE2 batches and 0.65 ns in 8-lane AVX2 ones; gelu's erfc 5.0 and 1.7 (float, this machine).
// The same source, ops/vector_math.inc, is compiled three times: for the build's baseline
// (ops/vector_math.cpp, which also dispatches), with -mavx2 (ops/vector_math_avx2.cpp) and for
// AVX-512 (ops/vector_math_avx512.cpp), without fused multiply-add, so all give the same bits
// (tests/test_elementwise.cpp checks).
#include <cstddef>

// y = f(x + b) for sigmoid and tanh (b may be null: f(x)); gelu and its derivative times g;
// gelu and its derivative d together (the bits of gelu and of gelu_grad with g = 1);
// x = exp(x - shift) in place (a softmax row less its maximum).
//
// Reductions over n contiguous elements, in one order whatever the build's batch width, so that
// every build gives the baseline's bits: 64 bytes of running lanes (16 floats or 8 doubles, lane k
// taking elements k, k + 16, k + 32, ... in turn), then lane k and lane k + 8 combined, and so on
// down to one. row_sum, row_dot (sum of a * b); row_max: the largest element that is not NaN
// (-inf if there is none); exp_shifted_sum: exp_shifted, returning the sum of the new values.
// scale_row: x *= s.
// layer_norm_rows: for each of `rows` rows of n (n > 0): mean[i], rstd[i] = 1 / sqrt(the mean of
// (x - mean)^2 + eps), y = (x - mean) * rstd [* gamma] [+ beta] (gamma, beta may be null).
// layer_norm_rows_backward: gx = rstd * (g - mean(g) - xhat * mean(g * xhat)) for g = gy [* gamma]
// and xhat = (x - mean) * rstd (gx may be null), and the column sums over the rows, in row order,
// ggamma += gy * xhat and gbeta += gy (both null, or neither).
// batch_norm: x holds `outer` blocks of `channels` rows of `inner` contiguous elements ((N, C, H,
// W) is outer N, inner H W; (N, C) is inner 1); for each channel c over its outer * inner
// elements (at least one): mean[c], var[c] = the mean of (x - mean)^2 (biased), rstd[c] =
// 1 / sqrt(var + eps), y = (x - mean) * (rstd [* gamma]) [+ beta] (gamma, beta per channel, may be
// null). The sums run over the blocks in order, each block's (inner > 1) in row_sum's order.
// batch_norm_backward: per channel sum_g = the sum of gy and sum_gd = the sum of gy * (x - mean),
// and if gx is not null gx = (gy - sum_g / count - (x - mean) rstd^2 sum_gd / count) * rstd
// [* gamma], count = outer * inner.
// softmax_rows: attention's probabilities from its scores in place, for each of `rows` rows of n
// (row i reaching only its first min(n, i + 1) columns when causal, the others set to 0): the
// scores times `scale`, less their row_max m, through exp_shifted_sum, times 1 / the sum; a row
// whose maximum is -inf (all masked) is 0, or NaN if it holds a NaN.
// softmax_rows_backward: gs = p * (gp - row_dot(gp, p)) for each of `rows` rows of n.
//
// The LSTM cell's loops (ops/recurrent.cpp), in the order of operations given; `add`: the result
// added to y (y + result) instead of written.
// mul: a * b. mul_add: a * b + c * d (c null: a * b). gate_grad: g * (1 - a^2) for a tanh gate,
// g * (a * (1 - a)) for a sigmoid one, a the activation. mul_tanh_grad: y = g * o * (1 - t^2).
//
// fill_rows: each of `rows` rows of y (n elements) set to row[0..n) (a bias before the GEMM adds
// to it). add_rows: y[j] += x[r n + j] for r = 0, 1, ..., rows - 1 in turn (a bias's gradient).
// relu_grad_rows: relu's backward from its output or its input y (both are > 0 at the same
// places), h = g where y > 0, else 0 * g (NaN for an infinite g, as leaky_relu_grad), over `rows`
// rows of n; sums (may be null) += each row of h in
// turn (the bias's gradient of linear_relu). relu: y = x < 0 ? 0 : x (-0 and NaN stay; y may be
// x), for the relu op and linear_relu's and conv2d's fused relu.
#define XG_VECTOR_MATH_DECLARE(T)                                                                   \
    void sigmoid(const T* x, const T* b, T* y, std::size_t n);                                      \
    void tanh(const T* x, const T* b, T* y, std::size_t n);                                         \
    void gelu(const T* x, T* y, std::size_t n, bool tanh_form);                                     \
    void gelu_grad(const T* g, const T* x, T* y, std::size_t n, bool tanh_form);                    \
    void gelu_with_grad(const T* x, T* y, T* d, std::size_t n, bool tanh_form);                     \
    void exp_shifted(T* x, T shift, std::size_t n);                                                 \
    T row_sum(const T* x, std::size_t n);                                                           \
    T row_dot(const T* a, const T* b, std::size_t n);                                               \
    T row_max(const T* x, std::size_t n);                                                           \
    T exp_shifted_sum(T* x, T shift, std::size_t n);                                                \
    void scale_row(T* x, T s, std::size_t n);                                                       \
    void layer_norm_rows(const T* x, T* y, std::size_t rows, std::size_t n, const T* gamma,         \
                         const T* beta, T eps, T* mean, T* rstd);                                   \
    void layer_norm_rows_backward(const T* x, const T* gy, T* gx, std::size_t rows, std::size_t n,  \
                                  const T* mean, const T* rstd, const T* gamma, T* ggamma,          \
                                  T* gbeta);                                                        \
    void batch_norm(const T* x, T* y, std::size_t outer, std::size_t channels, std::size_t inner,   \
                    const T* gamma, const T* beta, T eps, T* mean, T* var, T* rstd);                \
    void batch_norm_backward(const T* x, const T* gy, T* gx, std::size_t outer, std::size_t channels, \
                             std::size_t inner, const T* mean, const T* rstd, const T* gamma,       \
                             T* sum_g, T* sum_gd);                                                  \
    void softmax_rows(T* s, std::size_t rows, std::size_t n, T scale, bool causal);                 \
    void softmax_rows_backward(const T* p, const T* gp, T* gs, std::size_t rows, std::size_t n);     \
    void mul(const T* a, const T* b, T* y, std::size_t n, bool add);                                \
    void mul_add(const T* a, const T* b, const T* c, const T* d, T* y, std::size_t n);               \
    void gate_grad(const T* a, const T* g, T* y, std::size_t n, bool tanh_gate, bool add);          \
    void mul_tanh_grad(const T* g, const T* o, const T* t, T* y, std::size_t n);                    \
    void fill_rows(const T* row, std::size_t n, std::size_t rows, T* y);                            \
    void add_rows(const T* x, std::size_t rows, std::size_t n, T* y);                                \
    void relu_grad_rows(const T* g, const T* y, T* h, std::size_t rows, std::size_t n, T* sums);     \
    void relu(const T* x, T* y, std::size_t n);

namespace xg::vmath {
XG_VECTOR_MATH_DECLARE(float)
XG_VECTOR_MATH_DECLARE(double)
// The builds, called directly by the dispatching functions above and by the test that compares
// them; avx2_available() (avx512_available()) is false where that build was not made or the CPU
// lacks its instructions.
bool avx2_available();
bool avx512_available();
namespace baseline {
XG_VECTOR_MATH_DECLARE(float)
XG_VECTOR_MATH_DECLARE(double)
}  // namespace baseline
namespace avx2 {
XG_VECTOR_MATH_DECLARE(float)
XG_VECTOR_MATH_DECLARE(double)
}  // namespace avx2
namespace avx512 {
XG_VECTOR_MATH_DECLARE(float)
XG_VECTOR_MATH_DECLARE(double)
}  // namespace avx512
}  // namespace xg::vmath
