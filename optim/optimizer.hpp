#pragma once
// Optimizer: the PyTorch C++ frontend's shape. An optimizer holds the parameters (handles, so
// they share the nodes the model uses) and updates their arrays in place, outside the graph.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "graph/array.hpp"
#include "graph/state_dict.hpp"
#include "graph/variable.hpp"

namespace xg::optim {

// How `weight_decay` enters an update: added to the gradient (L2 regularisation, g + wd*w), or
// applied to the weights directly, outside the adaptive scaling (AdamW's decoupled decay).
enum class WeightDecay { l2, decoupled };

template <class T>
class Optimizer {
public:
    virtual ~Optimizer() = default;

    // Updates every parameter that has a gradient; the others are left alone.
    virtual void step();
    void zero_grad();

    double lr() const { return lr_; }
    void set_lr(double lr);
    double weight_decay() const { return weight_decay_; }
    const std::vector<Variable<T>>& params() const { return params_; }
    const std::string& name() const { return name_; }

    // The learning rate and each parameter's step count and state arrays, as "lr", "<i>.steps"
    // and "<i>.<state name>" (Adam's "0.exp_avg", "0.exp_avg_sq"), for checkpoints. Parameters
    // not yet updated have no entries.
    StateDict<T> state_dict() const;
    // Restores what state_dict() gave, for the same parameters in the same order. Everything is
    // checked before anything changes: the rule's own state names (Momentum's "velocity" is
    // refused by Adam, Adam's by AdaGrad or SGD), every state array of an updated parameter,
    // shapes (ShapeError), step counts (whole numbers >= 1), finite values (and non-negative
    // running squares), a finite lr >= 0. On any error the optimizer is unchanged.
    void load_state_dict(const StateDict<T>& state);

protected:
    // One per-parameter state array of a rule, e.g. Adam's {"exp_avg"} and {"exp_avg_sq", true}.
    struct StateSpec {
        std::string name;
        bool non_negative = false;  // a running sum or average of squares
    };

    Optimizer(std::string name, std::vector<Variable<T>> params, double lr, double weight_decay,
              WeightDecay decay = WeightDecay::l2, std::vector<StateSpec> state_specs = {});

    // The rule itself, for parameter i: `w` in place from gradient `g` (weight decay applied).
    virtual void update(std::size_t i, Array<T>& w, const Array<T>& g) = 0;

    // Parameter i's state arrays, in state_specs order: zeros of w's shape made on its first update.
    std::vector<Array<T>>& state(std::size_t i, const Array<T>& w);
    // How many updates parameter i has had, this one included (Adam's bias correction).
    long steps(std::size_t i) const { return states_[i].steps; }

private:
    struct State {
        long steps = 0;
        std::vector<Array<T>> arrays;
    };

    std::string name_;
    std::vector<StateSpec> state_specs_;
    std::vector<Variable<T>> params_;
    std::vector<State> states_;
    double lr_;
    double weight_decay_;
    WeightDecay decay_;
};

// Scales all gradients in place so that their global L2 norm is at most max_norm; returns the
// norm before clipping. Parameters without a gradient are skipped.
template <class T>
double clip_grad_norm(const std::vector<Variable<T>>& params, double max_norm);

namespace detail {
// Throws ValueError "<who>: <what> must be <expected>, got <value>" unless `ok`.
void require(bool ok, std::string_view who, std::string_view what, double value, std::string_view expected);
}  // namespace detail

extern template class Optimizer<float>;
extern template class Optimizer<double>;
extern template double clip_grad_norm(const std::vector<Variable<float>>&, double);
extern template double clip_grad_norm(const std::vector<Variable<double>>&, double);

}  // namespace xg::optim
