#include "optim/adaptive.hpp"

#include <cmath>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "optim/simd_rules.hpp"

namespace xg::optim {

namespace {
// f(w[k], g[k], h[k]) for every element from `first` on, w and h updated in place: xsimd batches
// for the body, scalars for the tail (GCC does not vectorise std::sqrt without -fno-math-errno).
// The same operations in the same order as the xtensor expressions these loops replace, so the
// same bits, at a fraction of the compile time. The elements before `first` are the AVX2 or
// AVX-512 loop's (optim/simd_rules.hpp), which gives these bits too.
template <class T, class F>
void update_in_place(Array<T>& w, const Array<T>& g, Array<T>& h, std::size_t first, F f) {
    using B = xsimd::batch<T>;
    T* pw = w.data();
    const T* pg = g.data();
    T* ph = h.data();
    const std::size_t n = w.size();
    std::size_t k = first;
    for (; k + B::size <= n; k += B::size) {
        B wk = B::load_unaligned(pw + k), hk = B::load_unaligned(ph + k);
        f(wk, B::load_unaligned(pg + k), hk);
        wk.store_unaligned(pw + k);
        hk.store_unaligned(ph + k);
    }
    for (; k < n; ++k) f(pw[k], pg[k], ph[k]);
}

// w -= lr * g / (sqrt(h) + eps), for batches and scalars alike.
template <class T>
auto scaled_step(T lr, T eps) {
    return [=](auto& w, const auto& g, const auto& h) {
        using std::sqrt;
        using xsimd::sqrt;
        w = w - lr * g / (sqrt(h) + eps);
    };
}

void require_eps(std::string_view who, double eps) {
    detail::require(eps > 0, who, "eps", eps, "> 0");  // it keeps lr*g/sqrt(h) finite where h = 0
}
}  // namespace

template <class T>
AdaGrad<T>::AdaGrad(std::vector<Variable<T>> params, AdaGradOptions options)
    : Optimizer<T>("AdaGrad", std::move(params), options.lr, options.weight_decay, WeightDecay::l2, {{"sum", true}}),
      eps_(options.eps) {
    require_eps(this->name(), eps_);
}

template <class T>
void AdaGrad<T>::update(std::size_t i, Array<T>& w, const Array<T>& g) {
    const T lr = static_cast<T>(this->lr()), eps = static_cast<T>(eps_);
    const auto step = scaled_step(lr, eps);
    Array<T>& h = this->state(i, w)[0];
    const std::size_t done = simd::adagrad(w.data(), g.data(), h.data(), w.size(), lr, eps);
    update_in_place(w, g, h, done, [&](auto& wk, const auto& gk, auto& hk) {
        hk = hk + gk * gk;
        step(wk, gk, hk);
    });
}

template <class T>
RMSProp<T>::RMSProp(std::vector<Variable<T>> params, RMSPropOptions options)
    : Optimizer<T>("RMSProp", std::move(params), options.lr, options.weight_decay, WeightDecay::l2,
                   {{"square_avg", true}}),
      alpha_(options.alpha),
      eps_(options.eps) {
    detail::require(alpha_ >= 0 && alpha_ < 1, this->name(), "alpha", alpha_, "in [0, 1)");
    require_eps(this->name(), eps_);
}

template <class T>
void RMSProp<T>::update(std::size_t i, Array<T>& w, const Array<T>& g) {
    const T alpha = static_cast<T>(alpha_), lr = static_cast<T>(this->lr()), eps = static_cast<T>(eps_);
    const auto step = scaled_step(lr, eps);
    Array<T>& h = this->state(i, w)[0];
    const std::size_t done = simd::rmsprop(w.data(), g.data(), h.data(), w.size(), alpha, lr, eps);
    update_in_place(w, g, h, done, [&](auto& wk, const auto& gk, auto& hk) {
        hk = alpha * hk + (1 - alpha) * gk * gk;
        step(wk, gk, hk);
    });
}

#define XG_INSTANTIATE(T)      \
    template class AdaGrad<T>; \
    template class RMSProp<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::optim
