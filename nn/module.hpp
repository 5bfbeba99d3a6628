#pragma once
// Module: the PyTorch C++ frontend's shape. A module registers its parameters, buffers (state
// that is saved but not trained, e.g. running statistics) and sub-modules under names, and knows
// train/eval mode, state_dict and printing. It imposes no forward(): a module may take (x, mask),
// return a tuple, or carry state between calls, computing with graph ops so that
// back-propagation through it needs no code of its own. UnaryModule is the one-input, one-output
// kind the library's layers are and Sequential chains.
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/state_dict.hpp"
#include "graph/variable.hpp"

namespace xg::nn {

template <class T>
using Named = std::pair<std::string, Variable<T>>;

// Whether a parameter is a weight that weight decay applies to (the seeds decay the weights of
// affine layers, not biases nor batch-norm's gamma and beta).
enum class Decay { yes, no };

template <class T>
class Module {
public:
    using value_type = T;

    Module() = default;
    virtual ~Module() = default;
    // Modules hold parameter handles: a copy would silently share them, so there is none.
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // This module's and its descendants' parameters, in registration order, each once.
    std::vector<Variable<T>> parameters() const;
    // The same with dotted names: "layers.0.weight".
    std::vector<Named<T>> named_parameters() const;
    std::vector<Named<T>> named_buffers() const;
    // The parameters registered with Decay::yes (what weight decay penalises).
    std::vector<Variable<T>> decayed_parameters() const;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }

    // Training mode (dropout active, batch statistics) or evaluation mode, for the whole tree.
    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    void zero_grad();

    // Copies of every parameter and buffer under its dotted name.
    StateDict<T> state_dict() const;
    // Copies `state` into the parameters and buffers. Every name must be present with the same
    // shape and no other name may appear; otherwise throws, naming the first mismatch.
    void load_state_dict(const StateDict<T>& state);

    // A one-line description of this module alone, e.g. "Linear(784 -> 100)"; by default the
    // class name.
    virtual std::string repr() const { return type_name(); }
    // The class name, e.g. "xg::nn::Linear<float>" (not virtual: safe in constructors, where
    // messages use it).
    std::string type_name() const;
    // The whole tree, indented, like printing a torch module.
    std::string str() const;

protected:
    // Registers and returns `p` (which is made to require grad) under `name`.
    Variable<T> register_parameter(std::string name, Variable<T> p, Decay decay = Decay::no);
    Variable<T> register_buffer(std::string name, Variable<T> b);
    template <class M>
    std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
        add_child(std::move(name), m);
        return m;
    }

private:
    struct Entry {
        std::string name;
        Variable<T> var;
        Decay decay = Decay::no;
    };
    void add_child(std::string name, std::shared_ptr<Module> m);
    void check_new_name(const std::string& name) const;
    void collect(const std::string& prefix, bool buffers, std::vector<Named<T>>& out) const;
    void print(std::ostream& os, const std::string& name, int depth) const;

    std::vector<Entry> params_;
    std::vector<Entry> buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

// A module with one input and one output, called as m(x): the library's layers. Sequential
// chains these and any other module with a forward(const Variable<T>&) (see AnyModule).
template <class T>
class UnaryModule : public Module<T> {
public:
    virtual Variable<T> forward(const Variable<T>& x) = 0;
    Variable<T> operator()(const Variable<T>& x) { return forward(x); }
};

template <class T>
std::ostream& operator<<(std::ostream& os, const Module<T>& m) {
    return os << m.str();
}

extern template class Module<float>;
extern template class Module<double>;

}  // namespace xg::nn
