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
    : Optimizer<T>(std::move(name), std::move(params), options.lr, options.weight_decay, decay),
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
// The same rule with AVX2 where the CPU has it (chosen at run time; the library is built for
// baseline x86-64). It is bound by the divider and the square root, and their AVX forms do twice
// the work per instruction: 100 -> 50 us for the benchmark model's 109k parameters. The
// operations and their order are those of adam_rule, so the results are the same bits.
#pragma GCC push_options
#pragma GCC target("avx2")
template <class T, class V, class Ops>
std::size_t adam_rule_avx2(T* w, const T* g, T* m, T* v, std::size_t n, T b1, T b2, T step, T inv_sqrt_c2, T eps) {
    constexpr std::size_t lanes = sizeof(V) / sizeof(T);
    const V vb1 = Ops::set1(b1), vc1 = Ops::set1(1 - b1), vb2 = Ops::set1(b2), vc2 = Ops::set1(1 - b2);
    const V vstep = Ops::set1(step), vinv = Ops::set1(inv_sqrt_c2), veps = Ops::set1(eps);
    std::size_t k = 0;
    for (; k + lanes <= n; k += lanes) {
        const V gk = Ops::load(g + k);
        const V mk = Ops::add(Ops::mul(vb1, Ops::load(m + k)), Ops::mul(vc1, gk));
        const V vk = Ops::add(Ops::mul(vb2, Ops::load(v + k)), Ops::mul(Ops::mul(vc2, gk), gk));
        const V denom = Ops::add(Ops::mul(Ops::sqrt(vk), vinv), veps);
        Ops::store(w + k, Ops::sub(Ops::load(w + k), Ops::div(Ops::mul(vstep, mk), denom)));
        Ops::store(m + k, mk);
        Ops::store(v + k, vk);
    }
    return k;  // the caller does the tail
}
struct Avx2Float {
    static __m256 set1(float x) { return _mm256_set1_ps(x); }
    static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, __m256 x) { _mm256_storeu_ps(p, x); }
    static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
    static __m256 sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
    static __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
    static __m256 div(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }
    static __m256 sqrt(__m256 a) { return _mm256_sqrt_ps(a); }
};
struct Avx2Double {
    static __m256d set1(double x) { return _mm256_set1_pd(x); }
    static __m256d load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, __m256d x) { _mm256_storeu_pd(p, x); }
    static __m256d add(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
    static __m256d sub(__m256d a, __m256d b) { return _mm256_sub_pd(a, b); }
    static __m256d mul(__m256d a, __m256d b) { return _mm256_mul_pd(a, b); }
    static __m256d div(__m256d a, __m256d b) { return _mm256_div_pd(a, b); }
    static __m256d sqrt(__m256d a) { return _mm256_sqrt_pd(a); }
};
std::size_t adam_rule_wide(float* w, const float* g, float* m, float* v, std::size_t n, float b1, float b2,
                           float step, float inv_sqrt_c2, float eps) {
    return adam_rule_avx2<float, __m256, Avx2Float>(w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps);
}
std::size_t adam_rule_wide(double* w, const double* g, double* m, double* v, std::size_t n, double b1, double b2,
                           double step, double inv_sqrt_c2, double eps) {
    return adam_rule_avx2<double, __m256d, Avx2Double>(w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps);
}
#pragma GCC pop_options

bool has_avx2() {
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
    return yes;
}
#endif

template <class T>
void adam_step(T* w, const T* g, T* m, T* v, std::size_t n, T b1, T b2, T step, T inv_sqrt_c2, T eps) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (has_avx2()) {
        const std::size_t done = adam_rule_wide(w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps);
        w += done, g += done, m += done, v += done, n -= done;
    }
#endif
    adam_rule(w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps);
}

}  // namespace

template <class T>
void Adam<T>::update(std::size_t i, Array<T>& w, const Array<T>& g) {
    std::vector<Array<T>>& s = this->state(i, 2, w);
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
