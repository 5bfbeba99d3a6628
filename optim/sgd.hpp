#pragma once
// Gradient descent with and without momentum (Deep Learning from Scratch, chapter 6).
#include "optim/optimizer.hpp"

namespace xg::optim {

struct SGDOptions {
    double lr = 0.01;
    double weight_decay = 0;
};

// W <- W - lr*g
template <class T>
class SGD : public Optimizer<T> {
public:
    explicit SGD(std::vector<Variable<T>> params, SGDOptions options = {});

protected:
    void update(std::size_t i, Array<T>& w, const Array<T>& g) override;
};

struct MomentumOptions {
    double lr = 0.01;
    double momentum = 0.9;
    double weight_decay = 0;
};

// v <- a*v - lr*g; W <- W + v
template <class T>
class Momentum : public Optimizer<T> {
public:
    explicit Momentum(std::vector<Variable<T>> params, MomentumOptions options = {});
    double momentum() const { return momentum_; }

protected:
    Momentum(std::string name, std::vector<Variable<T>> params, MomentumOptions options);
    void update(std::size_t i, Array<T>& w, const Array<T>& g) override;
    // The velocity after this step's update: v <- a*v - lr*g.
    Array<T>& advance_velocity(std::size_t i, const Array<T>& w, const Array<T>& g);

private:
    double momentum_;
};

using NesterovOptions = MomentumOptions;

// Nesterov's accelerated gradient in the book's re-parameterised form, which evaluates the
// gradient at W itself rather than at the look-ahead point:
// v <- a*v - lr*g; W <- W + a*a*v - (1+a)*lr*g
template <class T>
class Nesterov : public Momentum<T> {
public:
    explicit Nesterov(std::vector<Variable<T>> params, NesterovOptions options = {});

protected:
    void update(std::size_t i, Array<T>& w, const Array<T>& g) override;
};

extern template class SGD<float>;
extern template class SGD<double>;
extern template class Momentum<float>;
extern template class Momentum<double>;
extern template class Nesterov<float>;
extern template class Nesterov<double>;

}  // namespace xg::optim
