#pragma once
// Per-element learning rates from the history of squared gradients (Deep Learning from Scratch,
// chapter 6): W <- W - lr*g/(sqrt(h)+eps), AdaGrad and RMSProp differing only in how h moves.
#include "optim/optimizer.hpp"

namespace xg::optim {

struct AdaGradOptions {
    double lr = 0.01;
    double eps = 1e-7;
    double weight_decay = 0;
};

// h <- h + g*g
template <class T>
class AdaGrad : public Optimizer<T> {
public:
    explicit AdaGrad(std::vector<Variable<T>> params, AdaGradOptions options = {});

protected:
    void update(std::size_t i, Array<T>& w, const Array<T>& g) override;

private:
    double eps_;
};

struct RMSPropOptions {
    double lr = 0.01;
    double alpha = 0.99;  // the book's decay_rate
    double eps = 1e-7;
    double weight_decay = 0;
};

// h <- alpha*h + (1-alpha)*g*g
template <class T>
class RMSProp : public Optimizer<T> {
public:
    explicit RMSProp(std::vector<Variable<T>> params, RMSPropOptions options = {});

protected:
    void update(std::size_t i, Array<T>& w, const Array<T>& g) override;

private:
    double alpha_;
    double eps_;
};

extern template class AdaGrad<float>;
extern template class AdaGrad<double>;
extern template class RMSProp<float>;
extern template class RMSProp<double>;

}  // namespace xg::optim
