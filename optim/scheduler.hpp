#pragma once
// Learning-rate schedules. Each computes the rate in closed form from the optimizer's lr at
// construction and the epoch count, so a schedule never drifts through repeated multiplication.
// The optimizer must outlive its schedule.
#include "optim/optimizer.hpp"

namespace xg::optim {

template <class T>
class LRScheduler {
public:
    virtual ~LRScheduler() = default;
    // Ends an epoch: sets the optimizer's lr for the next one. Call once per epoch.
    void step();
    long epoch() const { return epoch_; }
    double base_lr() const { return base_lr_; }
    // The rate for a given epoch (epoch 0 is base_lr).
    virtual double lr_at(long epoch) const = 0;

protected:
    explicit LRScheduler(Optimizer<T>& optimizer);

private:
    Optimizer<T>& optimizer_;
    double base_lr_;
    long epoch_ = 0;
};

// base_lr * gamma^floor(epoch / step_size)
template <class T>
class StepLR : public LRScheduler<T> {
public:
    StepLR(Optimizer<T>& optimizer, long step_size, double gamma = 0.1);
    double lr_at(long epoch) const override;

private:
    long step_size_;
    double gamma_;
};

// base_lr * gamma^epoch
template <class T>
class ExponentialLR : public LRScheduler<T> {
public:
    ExponentialLR(Optimizer<T>& optimizer, double gamma);
    double lr_at(long epoch) const override;

private:
    double gamma_;
};

// eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2
template <class T>
class CosineAnnealingLR : public LRScheduler<T> {
public:
    CosineAnnealingLR(Optimizer<T>& optimizer, long T_max, double eta_min = 0);
    double lr_at(long epoch) const override;

private:
    long T_max_;
    double eta_min_;
};

extern template class LRScheduler<float>;
extern template class LRScheduler<double>;
extern template class StepLR<float>;
extern template class StepLR<double>;
extern template class ExponentialLR<float>;
extern template class ExponentialLR<double>;
extern template class CosineAnnealingLR<float>;
extern template class CosineAnnealingLR<double>;

}  // namespace xg::optim
