#include "optim/simd_rules.hpp"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

namespace xg::optim::simd {

namespace {

#define XG_SIMD_OPS(Name, T, Vec, p, s)                                            \
    struct Name {                                                                  \
        using V = Vec;                                                             \
        static V set1(T x) { return _mm##p##_set1_##s(x); }                        \
        static V load(const T* a) { return _mm##p##_loadu_##s(a); }                \
        static void store(T* a, V x) { _mm##p##_storeu_##s(a, x); }                \
        static V add(V a, V b) { return _mm##p##_add_##s(a, b); }                  \
        static V sub(V a, V b) { return _mm##p##_sub_##s(a, b); }                  \
        static V mul(V a, V b) { return _mm##p##_mul_##s(a, b); }                  \
        static V div(V a, V b) { return _mm##p##_div_##s(a, b); }                  \
        static V sqrt(V a) { return _mm##p##_sqrt_##s(a); }                        \
    };

// Same bits also means no fused multiply-add: GCC would contract a * b + c into one where the
// target has FMA (AVX-512F does), rounding once instead of twice. meson.build turns contraction
// off (-ffp-contract=off); tests/check_no_fma.sh reads the compiled rules to keep it so.
#pragma GCC push_options
#pragma GCC target("avx2")
namespace avx2 {
XG_SIMD_OPS(Float, float, __m256, 256, ps)
XG_SIMD_OPS(Double, double, __m256d, 256, pd)
#include "optim/simd_rules.inc"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
// GCC 12's own AVX-512 headers trip these in _mm512_undefined_*, used by set1 and sqrt.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {
XG_SIMD_OPS(Float, float, __m512, 512, ps)
XG_SIMD_OPS(Double, double, __m512d, 512, pd)
#include "optim/simd_rules.inc"
}  // namespace avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options
#undef XG_SIMD_OPS

struct CpuFeatures {
    bool avx512 = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
    bool avx2 = __builtin_cpu_supports("avx2");
};
const CpuFeatures& cpu() {
    static const CpuFeatures features;
    return features;
}

}  // namespace

// The widest set the CPU runs, else none (0 elements done).
#define XG_DISPATCH(rule, ...) \
    return cpu().avx512 ? avx512::rule(__VA_ARGS__) : cpu().avx2 ? avx2::rule(__VA_ARGS__) : std::size_t{0};
#define XG_DISPATCHERS(T)                                                                                          \
    std::size_t adam(T* w, const T* g, T* m, T* v, std::size_t n, T b1, T b2, T step, T inv_sqrt_c2, T eps) {     \
        XG_DISPATCH(adam, w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps)                                          \
    }                                                                                                              \
    std::size_t adagrad(T* w, const T* g, T* h, std::size_t n, T lr, T eps) { XG_DISPATCH(adagrad, w, g, h, n, lr, eps) } \
    std::size_t rmsprop(T* w, const T* g, T* h, std::size_t n, T alpha, T lr, T eps) {                           \
        XG_DISPATCH(rmsprop, w, g, h, n, alpha, lr, eps)                                                           \
    }
XG_DISPATCHERS(float)
XG_DISPATCHERS(double)
#undef XG_DISPATCHERS
#undef XG_DISPATCH

}  // namespace xg::optim::simd

#else  // no x86-64 SIMD sets to dispatch to: the callers' loops do everything

namespace xg::optim::simd {
#define XG_NONE(T)                                                                                                   \
    std::size_t adam(T*, const T*, T*, T*, std::size_t, T, T, T, T, T) { return 0; }                                \
    std::size_t adagrad(T*, const T*, T*, std::size_t, T, T) { return 0; }                                          \
    std::size_t rmsprop(T*, const T*, T*, std::size_t, T, T, T) { return 0; }
XG_NONE(float)
XG_NONE(double)
#undef XG_NONE
}  // namespace xg::optim::simd

#endif
