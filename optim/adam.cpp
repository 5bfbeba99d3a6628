#include "optim/adam.hpp"

#include <cmath>
#include <utility>

#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

namespace xg::optim {

template <class T>
Adam<T>::Adam(std::vector<Variable<T>> params, AdamOptions options)
    : Adam("Adam", std::move(params), options, WeightDecay::l2) {}

template <class T>
Adam<T>::Adam(std::string name, std::vector<Variable<T>> params, AdamOptions options, WeightDecay decay)
    : Optimizer<T>(std::move(name), std::move(params), options.lr, options.weight_decay, decay,
                   {{"exp_avg"}, {"exp_avg_sq", true}}),
      options_(options) {
    detail::require(options_.beta1 >= 0 && options_.beta1 < 1, this->name(), "beta1", options_.beta1, "in [0, 1)");
    detail::require(options_.beta2 >= 0 && options_.beta2 < 1, this->name(), "beta2", options_.beta2, "in [0, 1)");
    detail::require(options_.eps > 0, this->name(), "eps", options_.eps, "> 0");
}

namespace {

// m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g*g; w <- w - step * m / (sqrt(v) / sqrt(c2) + eps), with
// step = lr / c1 (PyTorch's arrangement), in one pass over the four arrays. Explicit SIMD: GCC does
// not vectorise std::sqrt without -fno-math-errno, and the same rule as xtensor expressions costs
// about three times as much (bench/mlp_step).
template <class T>
void adam_rule(T* w, const T* g, T* m, T* v, std::size_t n, T b1, T b2, T step, T inv_sqrt_c2, T eps) {
    auto rule = [=](auto& wk, auto gk, auto& mk, auto& vk) {
        using std::sqrt;
        using xsimd::sqrt;
        mk = b1 * mk + (1 - b1) * gk;
        vk = b2 * vk + (1 - b2) * gk * gk;
        wk = wk - step * mk / (sqrt(vk) * inv_sqrt_c2 + eps);
    };
    using B = xsimd::batch<T>;
    std::size_t k = 0;
    for (; k + B::size <= n; k += B::size) {
        B wk = B::load_unaligned(w + k), mk = B::load_unaligned(m + k), vk = B::load_unaligned(v + k);
        rule(wk, B::load_unaligned(g + k), mk, vk);
        wk.store_unaligned(w + k);
        mk.store_unaligned(m + k);
        vk.store_unaligned(v + k);
    }
    for (; k < n; ++k) rule(w[k], g[k], m[k], v[k]);
}

#if defined(__GNUC__) && defined(__x86_64__)
// The same rule with AVX2 and with AVX-512 where the CPU has them (chosen at run time; the library
// is built for baseline x86-64). It is bound by the divider and the square root, and each wider
// form does twice the work per instruction: for the benchmark model's 109k parameters, 100 us
// with SSE2, 50 with AVX2, and at batch 32 a training step 26 us shorter again with AVX-512 on a
// CPU with full-width AVX-512 units (bench/mlp_step).
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
#include "optim/adam_simd.inc"
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
#include "optim/adam_simd.inc"
}  // namespace avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options
#undef XG_SIMD_OPS

struct CpuFeatures {
    bool avx512 = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
    bool avx2 = __builtin_cpu_supports("avx2");
};
#endif

template <class T>
void adam_step(T* w, const T* g, T* m, T* v, std::size_t n, T b1, T b2, T step, T inv_sqrt_c2, T eps) {
#if defined(__GNUC__) && defined(__x86_64__)
    static const CpuFeatures cpu;
    std::size_t done = 0;
    if (cpu.avx512) done = avx512::rule(w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps);
    else if (cpu.avx2) done = avx2::rule(w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps);
    w += done, g += done, m += done, v += done, n -= done;
#endif
    adam_rule(w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps);
}

}  // namespace

template <class T>
void Adam<T>::update(std::size_t i, Array<T>& w, const Array<T>& g) {
    std::vector<Array<T>>& s = this->state(i, w);
    // Per parameter, as in PyTorch: a parameter that missed steps has its own t.
    const double t = static_cast<double>(this->steps(i));
    const T correction1 = static_cast<T>(1 - std::pow(options_.beta1, t));
    const T correction2 = static_cast<T>(1 - std::pow(options_.beta2, t));
    // In T from T's lr: a learning rate that went through a float checkpoint gives the same steps.
    const T lr = static_cast<T>(this->lr());
    adam_step(w.data(), g.data(), s[0].data(), s[1].data(), w.size(), static_cast<T>(options_.beta1),
              static_cast<T>(options_.beta2), lr / correction1, T(1) / std::sqrt(correction2),
              static_cast<T>(options_.eps));
}

template <class T>
AdamW<T>::AdamW(std::vector<Variable<T>> params, AdamWOptions o)
    : Adam<T>("AdamW", std::move(params),
              AdamOptions{.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps,
                          .weight_decay = o.weight_decay},
              WeightDecay::decoupled) {}

#define XG_INSTANTIATE(T)   \
    template class Adam<T>; \
    template class AdamW<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::optim
