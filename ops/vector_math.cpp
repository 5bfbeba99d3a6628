// ops/vector_math.inc for the build's baseline instruction set, and the dispatch to the widest
// build the CPU runs: AVX-512 (ops/vector_math_avx512.cpp, XG_VECTOR_MATH_AVX512) or AVX2
// (ops/vector_math_avx2.cpp, XG_VECTOR_MATH_AVX2), where they were built (x86-64).
#include "ops/vector_math.hpp"

#include "ops/simd_math.hpp"

namespace xg::vmath {
namespace baseline {
#include "ops/vector_math.inc"
}  // namespace baseline

// A build that was not made is never called (its *_available() is false); it is defined as the
// baseline so that tests link everywhere.
#define XG_VECTOR_MATH_FORWARD(T)                                                                          \
    void sigmoid(const T* x, const T* b, T* y, std::size_t n) { baseline::sigmoid(x, b, y, n); }         \
    void tanh(const T* x, const T* b, T* y, std::size_t n) { baseline::tanh(x, b, y, n); }               \
    void gelu(const T* x, T* y, std::size_t n, bool t) { baseline::gelu(x, y, n, t); }                   \
    void gelu_grad(const T* g, const T* x, T* y, std::size_t n, bool t) { baseline::gelu_grad(g, x, y, n, t); } \
    void gelu_with_grad(const T* x, T* y, T* d, std::size_t n, bool t) { baseline::gelu_with_grad(x, y, d, n, t); } \
    void exp_shifted(T* x, T s, std::size_t n) { baseline::exp_shifted(x, s, n); }                       \
    T row_sum(const T* x, std::size_t n) { return baseline::row_sum(x, n); }                             \
    T row_dot(const T* a, const T* b, std::size_t n) { return baseline::row_dot(a, b, n); }              \
    T row_max(const T* x, std::size_t n) { return baseline::row_max(x, n); }                             \
    T exp_shifted_sum(T* x, T s, std::size_t n) { return baseline::exp_shifted_sum(x, s, n); }           \
    void scale_row(T* x, T s, std::size_t n) { baseline::scale_row(x, s, n); }                           \
    void layer_norm_rows(const T* x, T* y, std::size_t rows, std::size_t n, const T* gamma, const T* beta, \
                         T eps, T* mean, T* rstd) {                                                       \
        baseline::layer_norm_rows(x, y, rows, n, gamma, beta, eps, mean, rstd);                           \
    }                                                                                                     \
    void layer_norm_rows_backward(const T* x, const T* gy, T* gx, std::size_t rows, std::size_t n,        \
                                  const T* mean, const T* rstd, const T* gamma, T* ggamma, T* gbeta) {    \
        baseline::layer_norm_rows_backward(x, gy, gx, rows, n, mean, rstd, gamma, ggamma, gbeta);         \
    }                                                                                                     \
    void batch_norm(const T* x, T* y, std::size_t outer, std::size_t channels, std::size_t inner,        \
                    const T* gamma, const T* beta, T eps, T* mean, T* var, T* rstd) {                     \
        baseline::batch_norm(x, y, outer, channels, inner, gamma, beta, eps, mean, var, rstd);            \
    }                                                                                                     \
    void batch_norm_backward(const T* x, const T* gy, T* gx, std::size_t outer, std::size_t channels,     \
                             std::size_t inner, const T* mean, const T* rstd, const T* gamma, T* sum_g,   \
                             T* sum_gd) {                                                                 \
        baseline::batch_norm_backward(x, gy, gx, outer, channels, inner, mean, rstd, gamma, sum_g, sum_gd); \
    }                                                                                                     \
    void softmax_rows(T* s, std::size_t rows, std::size_t n, T scale, bool causal) {                      \
        baseline::softmax_rows(s, rows, n, scale, causal);                                                \
    }                                                                                                     \
    void softmax_rows_backward(const T* p, const T* gp, T* gs, std::size_t rows, std::size_t n) {         \
        baseline::softmax_rows_backward(p, gp, gs, rows, n);                                              \
    }                                                                                                     \
    void mul(const T* a, const T* b, T* y, std::size_t n, bool add) { baseline::mul(a, b, y, n, add); }   \
    void mul_add(const T* a, const T* b, const T* c, const T* d, T* y, std::size_t n) {                   \
        baseline::mul_add(a, b, c, d, y, n);                                                              \
    }                                                                                                     \
    void gate_grad(const T* a, const T* g, T* y, std::size_t n, bool tanh_gate, bool add) {               \
        baseline::gate_grad(a, g, y, n, tanh_gate, add);                                                  \
    }                                                                                                     \
    void mul_tanh_grad(const T* g, const T* o, const T* t, T* y, std::size_t n) {                         \
        baseline::mul_tanh_grad(g, o, t, y, n);                                                           \
    }                                                                                                     \
    void fill_rows(const T* row, std::size_t n, std::size_t rows, T* y) { baseline::fill_rows(row, n, rows, y); } \
    void add_rows(const T* x, std::size_t rows, std::size_t n, T* y) { baseline::add_rows(x, rows, n, y); } \
    void relu_grad_rows(const T* g, const T* y, T* h, std::size_t rows, std::size_t n, T* sums) {                \
        baseline::relu_grad_rows(g, y, h, rows, n, sums);                                                      \
    }                                                                                                          \
    void relu(const T* x, T* y, std::size_t n) { baseline::relu(x, y, n); }
#ifndef XG_VECTOR_MATH_AVX2
namespace avx2 {
XG_VECTOR_MATH_FORWARD(float)
XG_VECTOR_MATH_FORWARD(double)
}  // namespace avx2
#endif
#ifndef XG_VECTOR_MATH_AVX512
namespace avx512 {
XG_VECTOR_MATH_FORWARD(float)
XG_VECTOR_MATH_FORWARD(double)
}  // namespace avx512
#endif
#undef XG_VECTOR_MATH_FORWARD

bool avx2_available() {
#ifdef XG_VECTOR_MATH_AVX2
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
    return yes;
#else
    return false;
#endif
}

bool avx512_available() {
#ifdef XG_VECTOR_MATH_AVX512
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") &&
                                                       __builtin_cpu_supports("avx512cd") &&
                                                       __builtin_cpu_supports("avx512bw") &&
                                                       __builtin_cpu_supports("avx512dq") &&
                                                       __builtin_cpu_supports("avx512vl"));
    return yes;
#else
    return false;
#endif
}

namespace {
enum class Build { baseline, avx2, avx512 };
Build best_build() {
    static const Build b = avx512_available() ? Build::avx512 : avx2_available() ? Build::avx2 : Build::baseline;
    return b;
}
}  // namespace

// The widest build the CPU runs.
#define XG_VECTOR_MATH_CALL(f, ...)                  \
    switch (best_build()) {                          \
        case Build::avx512: return avx512::f(__VA_ARGS__); \
        case Build::avx2: return avx2::f(__VA_ARGS__);     \
        default: return baseline::f(__VA_ARGS__);          \
    }
#define XG_VECTOR_MATH_DISPATCH(T)                                                                              \
    void sigmoid(const T* x, const T* b, T* y, std::size_t n) { XG_VECTOR_MATH_CALL(sigmoid, x, b, y, n) }     \
    void tanh(const T* x, const T* b, T* y, std::size_t n) { XG_VECTOR_MATH_CALL(tanh, x, b, y, n) }           \
    void gelu(const T* x, T* y, std::size_t n, bool t) { XG_VECTOR_MATH_CALL(gelu, x, y, n, t) }               \
    void gelu_grad(const T* g, const T* x, T* y, std::size_t n, bool t) {                                       \
        XG_VECTOR_MATH_CALL(gelu_grad, g, x, y, n, t)                                                           \
    }                                                                                                           \
    void gelu_with_grad(const T* x, T* y, T* d, std::size_t n, bool t) {                                        \
        XG_VECTOR_MATH_CALL(gelu_with_grad, x, y, d, n, t)                                                      \
    }                                                                                                           \
    void exp_shifted(T* x, T s, std::size_t n) { XG_VECTOR_MATH_CALL(exp_shifted, x, s, n) }                     \
    T row_sum(const T* x, std::size_t n) { XG_VECTOR_MATH_CALL(row_sum, x, n) }                                  \
    T row_dot(const T* a, const T* b, std::size_t n) { XG_VECTOR_MATH_CALL(row_dot, a, b, n) }                   \
    T row_max(const T* x, std::size_t n) { XG_VECTOR_MATH_CALL(row_max, x, n) }                                  \
    T exp_shifted_sum(T* x, T s, std::size_t n) { XG_VECTOR_MATH_CALL(exp_shifted_sum, x, s, n) }                \
    void scale_row(T* x, T s, std::size_t n) { XG_VECTOR_MATH_CALL(scale_row, x, s, n) }                         \
    void layer_norm_rows(const T* x, T* y, std::size_t rows, std::size_t n, const T* gamma, const T* beta,       \
                         T eps, T* mean, T* rstd) {                                                             \
        XG_VECTOR_MATH_CALL(layer_norm_rows, x, y, rows, n, gamma, beta, eps, mean, rstd)                       \
    }                                                                                                           \
    void layer_norm_rows_backward(const T* x, const T* gy, T* gx, std::size_t rows, std::size_t n,              \
                                  const T* mean, const T* rstd, const T* gamma, T* ggamma, T* gbeta) {          \
        XG_VECTOR_MATH_CALL(layer_norm_rows_backward, x, gy, gx, rows, n, mean, rstd, gamma, ggamma, gbeta)     \
    }                                                                                                           \
    void batch_norm(const T* x, T* y, std::size_t outer, std::size_t channels, std::size_t inner,              \
                    const T* gamma, const T* beta, T eps, T* mean, T* var, T* rstd) {                           \
        XG_VECTOR_MATH_CALL(batch_norm, x, y, outer, channels, inner, gamma, beta, eps, mean, var, rstd)        \
    }                                                                                                           \
    void batch_norm_backward(const T* x, const T* gy, T* gx, std::size_t outer, std::size_t channels,           \
                             std::size_t inner, const T* mean, const T* rstd, const T* gamma, T* sum_g,         \
                             T* sum_gd) {                                                                       \
        XG_VECTOR_MATH_CALL(batch_norm_backward, x, gy, gx, outer, channels, inner, mean, rstd, gamma, sum_g, sum_gd) \
    }                                                                                                           \
    void softmax_rows(T* s, std::size_t rows, std::size_t n, T scale, bool causal) {                            \
        XG_VECTOR_MATH_CALL(softmax_rows, s, rows, n, scale, causal)                                            \
    }                                                                                                           \
    void softmax_rows_backward(const T* p, const T* gp, T* gs, std::size_t rows, std::size_t n) {               \
        XG_VECTOR_MATH_CALL(softmax_rows_backward, p, gp, gs, rows, n)                                          \
    }                                                                                                           \
    void mul(const T* a, const T* b, T* y, std::size_t n, bool add) { XG_VECTOR_MATH_CALL(mul, a, b, y, n, add) } \
    void mul_add(const T* a, const T* b, const T* c, const T* d, T* y, std::size_t n) {                         \
        XG_VECTOR_MATH_CALL(mul_add, a, b, c, d, y, n)                                                          \
    }                                                                                                           \
    void gate_grad(const T* a, const T* g, T* y, std::size_t n, bool tanh_gate, bool add) {                     \
        XG_VECTOR_MATH_CALL(gate_grad, a, g, y, n, tanh_gate, add)                                              \
    }                                                                                                           \
    void mul_tanh_grad(const T* g, const T* o, const T* t, T* y, std::size_t n) {                               \
        XG_VECTOR_MATH_CALL(mul_tanh_grad, g, o, t, y, n)                                                       \
    }                                                                                                           \
    void fill_rows(const T* row, std::size_t n, std::size_t rows, T* y) {                                       \
        XG_VECTOR_MATH_CALL(fill_rows, row, n, rows, y)                                                         \
    }                                                                                                           \
    void add_rows(const T* x, std::size_t rows, std::size_t n, T* y) { XG_VECTOR_MATH_CALL(add_rows, x, rows, n, y) } \
    void relu_grad_rows(const T* g, const T* y, T* h, std::size_t rows, std::size_t n, T* sums) {               \
        XG_VECTOR_MATH_CALL(relu_grad_rows, g, y, h, rows, n, sums)                                             \
    }                                                                                                           \
    void relu(const T* x, T* y, std::size_t n) { XG_VECTOR_MATH_CALL(relu, x, y, n) }
XG_VECTOR_MATH_DISPATCH(float)
XG_VECTOR_MATH_DISPATCH(double)
#undef XG_VECTOR_MATH_DISPATCH
#undef XG_VECTOR_MATH_CALL

}  // namespace xg::vmath
