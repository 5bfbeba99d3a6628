// ops/vector_math.inc for the build's baseline instruction set, and the dispatch to the AVX2
// build (ops/vector_math_avx2.cpp) when it exists (XG_VECTOR_MATH_AVX2, x86-64) and the CPU has
// AVX2.
#include "ops/vector_math.hpp"

#include "ops/simd_math.hpp"

namespace xg::vmath {
namespace baseline {
#include "ops/vector_math.inc"
}  // namespace baseline

#ifndef XG_VECTOR_MATH_AVX2
// Not built: never called (avx2_available() is false), defined so that tests link everywhere.
namespace avx2 {
#define XG_VECTOR_MATH_FORWARD(T)                                                                          \
    void sigmoid(const T* x, const T* b, T* y, std::size_t n) { baseline::sigmoid(x, b, y, n); }         \
    void tanh(const T* x, const T* b, T* y, std::size_t n) { baseline::tanh(x, b, y, n); }               \
    void gelu(const T* x, T* y, std::size_t n, bool t) { baseline::gelu(x, y, n, t); }                   \
    void gelu_grad(const T* g, const T* x, T* y, std::size_t n, bool t) { baseline::gelu_grad(g, x, y, n, t); } \
    void gelu_with_grad(const T* x, T* y, T* d, std::size_t n, bool t) { baseline::gelu_with_grad(x, y, d, n, t); }
XG_VECTOR_MATH_FORWARD(float)
XG_VECTOR_MATH_FORWARD(double)
#undef XG_VECTOR_MATH_FORWARD
}  // namespace avx2
#endif

bool avx2_available() {
#ifdef XG_VECTOR_MATH_AVX2
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
    return yes;
#else
    return false;
#endif
}

#define XG_VECTOR_MATH_DISPATCH(T)                                                                        \
    void sigmoid(const T* x, const T* b, T* y, std::size_t n) {                                           \
        avx2_available() ? avx2::sigmoid(x, b, y, n) : baseline::sigmoid(x, b, y, n);                     \
    }                                                                                                     \
    void tanh(const T* x, const T* b, T* y, std::size_t n) {                                              \
        avx2_available() ? avx2::tanh(x, b, y, n) : baseline::tanh(x, b, y, n);                           \
    }                                                                                                     \
    void gelu(const T* x, T* y, std::size_t n, bool t) {                                                  \
        avx2_available() ? avx2::gelu(x, y, n, t) : baseline::gelu(x, y, n, t);                           \
    }                                                                                                     \
    void gelu_grad(const T* g, const T* x, T* y, std::size_t n, bool t) {                                 \
        avx2_available() ? avx2::gelu_grad(g, x, y, n, t) : baseline::gelu_grad(g, x, y, n, t);           \
    }                                                                                                     \
    void gelu_with_grad(const T* x, T* y, T* d, std::size_t n, bool t) {                                  \
        avx2_available() ? avx2::gelu_with_grad(x, y, d, n, t) : baseline::gelu_with_grad(x, y, d, n, t); \
    }
XG_VECTOR_MATH_DISPATCH(float)
XG_VECTOR_MATH_DISPATCH(double)
#undef XG_VECTOR_MATH_DISPATCH

}  // namespace xg::vmath
