#include "optim/adam.hpp"

#include <cmath>
#include <utility>

#include <xtensor/xmath.hpp>

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

template <class T>
void Adam<T>::update(std::size_t i, Array<T>& w, const Array<T>& g) {
    const T b1 = static_cast<T>(options_.beta1);
    const T b2 = static_cast<T>(options_.beta2);
    std::vector<Array<T>>& s = this->state(i, 2, w);
    Array<T>& m = s[0];
    Array<T>& v = s[1];
    m *= b1;
    m += (1 - b1) * g;
    v *= b2;
    v += (1 - b2) * g * g;
    // Per parameter, as in PyTorch: a parameter that missed steps has its own t.
    const double t = static_cast<double>(this->steps(i));
    const T correction1 = static_cast<T>(1 - std::pow(options_.beta1, t));
    const T correction2 = static_cast<T>(1 - std::pow(options_.beta2, t));
    w -= static_cast<T>(this->lr()) * (m / correction1) /
         (xt::sqrt(v / correction2) + static_cast<T>(options_.eps));
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
