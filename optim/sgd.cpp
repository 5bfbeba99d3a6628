#include "optim/sgd.hpp"

#include <utility>

namespace xg::optim {

template <class T>
SGD<T>::SGD(std::vector<Variable<T>> params, SGDOptions options)
    : Optimizer<T>("SGD", std::move(params), options.lr, options.weight_decay) {}

// The rules are plain loops over the arrays (w and g have the same shape): GCC vectorises them,
// and they cost a third of the equivalent xtensor expressions, which also build a temporary.
template <class T>
void SGD<T>::update(std::size_t, Array<T>& w, const Array<T>& g) {
    const T lr = static_cast<T>(this->lr());
    T* pw = w.data();
    const T* pg = g.data();
    for (std::size_t k = 0, n = w.size(); k < n; ++k) pw[k] -= lr * pg[k];
}

template <class T>
Momentum<T>::Momentum(std::vector<Variable<T>> params, MomentumOptions options)
    : Momentum("Momentum", std::move(params), options) {}

template <class T>
Momentum<T>::Momentum(std::string name, std::vector<Variable<T>> params, MomentumOptions options)
    : Optimizer<T>(std::move(name), std::move(params), options.lr, options.weight_decay, WeightDecay::l2,
                   {{"velocity"}}),
      momentum_(options.momentum) {
    detail::require(momentum_ >= 0 && momentum_ < 1, this->name(), "momentum", momentum_, "in [0, 1)");
}

template <class T>
Array<T>& Momentum<T>::advance_velocity(std::size_t i, const Array<T>& w, const Array<T>& g) {
    Array<T>& v = this->state(i, w)[0];
    const T a = static_cast<T>(momentum_);
    const T lr = static_cast<T>(this->lr());
    T* pv = v.data();
    const T* pg = g.data();
    for (std::size_t k = 0, n = v.size(); k < n; ++k) pv[k] = pv[k] * a - lr * pg[k];
    return v;
}

template <class T>
void Momentum<T>::update(std::size_t i, Array<T>& w, const Array<T>& g) {
    const T* pv = advance_velocity(i, w, g).data();
    T* pw = w.data();
    for (std::size_t k = 0, n = w.size(); k < n; ++k) pw[k] += pv[k];
}

template <class T>
Nesterov<T>::Nesterov(std::vector<Variable<T>> params, NesterovOptions options)
    : Momentum<T>("Nesterov", std::move(params), options) {}

template <class T>
void Nesterov<T>::update(std::size_t i, Array<T>& w, const Array<T>& g) {
    const T a = static_cast<T>(this->momentum());
    const T lr = static_cast<T>(this->lr());
    const T* pv = this->advance_velocity(i, w, g).data();
    const T* pg = g.data();
    T* pw = w.data();
    for (std::size_t k = 0, n = w.size(); k < n; ++k) {
        pw[k] += a * a * pv[k];
        pw[k] -= (1 + a) * lr * pg[k];
    }
}

#define XG_INSTANTIATE(T)       \
    template class SGD<T>;      \
    template class Momentum<T>; \
    template class Nesterov<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::optim
