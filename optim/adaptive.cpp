#include "optim/adaptive.hpp"

#include <utility>

#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

namespace xg::optim {

namespace {
template <class T>
void scaled_step(Array<T>& w, const Array<T>& g, const Array<T>& h, double lr, double eps) {
    xt::noalias(w) -= static_cast<T>(lr) * g / (xt::sqrt(h) + static_cast<T>(eps));
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
    Array<T>& h = this->state(i, w)[0];
    xt::noalias(h) += g * g;
    scaled_step(w, g, h, this->lr(), eps_);
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
    const T alpha = static_cast<T>(alpha_);
    Array<T>& h = this->state(i, w)[0];
    xt::noalias(h) = alpha * h + (1 - alpha) * g * g;
    scaled_step(w, g, h, this->lr(), eps_);
}

#define XG_INSTANTIATE(T)      \
    template class AdaGrad<T>; \
    template class RMSProp<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::optim
