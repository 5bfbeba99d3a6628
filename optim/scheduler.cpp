#include "optim/scheduler.hpp"

#include <cmath>
#include <numbers>

namespace xg::optim {

template <class T>
LRScheduler<T>::LRScheduler(Optimizer<T>& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}

template <class T>
void LRScheduler<T>::step() {
    optimizer_.set_lr(lr_at(++epoch_));
}

template <class T>
StepLR<T>::StepLR(Optimizer<T>& optimizer, long step_size, double gamma)
    : LRScheduler<T>(optimizer), step_size_(step_size), gamma_(gamma) {
    detail::require(step_size > 0, "StepLR", "step_size", static_cast<double>(step_size), "> 0");
    detail::require(gamma > 0 && std::isfinite(gamma), "StepLR", "gamma", gamma, "finite and > 0");
}

template <class T>
double StepLR<T>::lr_at(long epoch) const {
    return this->base_lr() * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

template <class T>
ExponentialLR<T>::ExponentialLR(Optimizer<T>& optimizer, double gamma) : LRScheduler<T>(optimizer), gamma_(gamma) {
    detail::require(gamma > 0 && std::isfinite(gamma), "ExponentialLR", "gamma", gamma, "finite and > 0");
}

template <class T>
double ExponentialLR<T>::lr_at(long epoch) const {
    return this->base_lr() * std::pow(gamma_, static_cast<double>(epoch));
}

template <class T>
CosineAnnealingLR<T>::CosineAnnealingLR(Optimizer<T>& optimizer, long T_max, double eta_min)
    : LRScheduler<T>(optimizer), T_max_(T_max), eta_min_(eta_min) {
    detail::require(T_max > 0, "CosineAnnealingLR", "T_max", static_cast<double>(T_max), "> 0");
    detail::require(eta_min >= 0 && std::isfinite(eta_min), "CosineAnnealingLR", "eta_min", eta_min,
                    "finite and >= 0");
}

template <class T>
double CosineAnnealingLR<T>::lr_at(long epoch) const {
    const double phase = std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(T_max_);
    return eta_min_ + (this->base_lr() - eta_min_) * (1 + std::cos(phase)) / 2;
}

#define XG_INSTANTIATE(T)                 \
    template class LRScheduler<T>;        \
    template class StepLR<T>;             \
    template class ExponentialLR<T>;      \
    template class CosineAnnealingLR<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::optim
