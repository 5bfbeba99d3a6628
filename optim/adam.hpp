#pragma once
// Adam with PyTorch's bias correction, and AdamW (Loshchilov & Hutter), whose weight decay
// shrinks the weights directly instead of passing through Adam's per-element scaling.
#include "optim/optimizer.hpp"

namespace xg::optim {

struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;  // L2: added to the gradient
};

// t += 1; m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g*g;
// W <- W - lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
template <class T>
class Adam : public Optimizer<T> {
public:
    explicit Adam(std::vector<Variable<T>> params, AdamOptions options = {});

protected:
    Adam(std::string name, std::vector<Variable<T>> params, AdamOptions options, WeightDecay decay);
    void update(std::size_t i, Array<T>& w, const Array<T>& g) override;

private:
    AdamOptions options_;
};

struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.01;  // decoupled: W <- W - lr*wd*W before the Adam step
};

template <class T>
class AdamW : public Adam<T> {
public:
    explicit AdamW(std::vector<Variable<T>> params, AdamWOptions options = {});
};

extern template class Adam<float>;
extern template class Adam<double>;
extern template class AdamW<float>;
extern template class AdamW<double>;

}  // namespace xg::optim
