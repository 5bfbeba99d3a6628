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
    void exp_shifted(T* x, T s, std::size_t n) { baseline::exp_shifted(x, s, n); }
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
    void exp_shifted(T* x, T s, std::size_t n) { XG_VECTOR_MATH_CALL(exp_shifted, x, s, n) }
XG_VECTOR_MATH_DISPATCH(float)
XG_VECTOR_MATH_DISPATCH(double)
#undef XG_VECTOR_MATH_DISPATCH
#undef XG_VECTOR_MATH_CALL

}  // namespace xg::vmath
