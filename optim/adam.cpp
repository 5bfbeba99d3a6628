#include "optim/adam.hpp"

#include <cmath>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "optim/simd_rules.hpp"

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

// The SIMD loop (optim/simd_rules.hpp) takes the whole vectors, adam_rule the rest.
template <class T>
void adam_step(T* w, const T* g, T* m, T* v, std::size_t n, T b1, T b2, T step, T inv_sqrt_c2, T eps) {
    const std::size_t done = simd::adam(w, g, m, v, n, b1, b2, step, inv_sqrt_c2, eps);
    adam_rule(w + done, g + done, m + done, v + done, n - done, b1, b2, step, inv_sqrt_c2, eps);
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
