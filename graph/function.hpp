#pragma once
// Function: one recorded op. forward() works on arrays; backward() is written with ops, so
// that the backward pass is itself a graph (create_graph) and gradients of gradients work.
#include <array>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/mode.hpp"
#include "graph/variable.hpp"

namespace xg {

// Read-only view of the input arrays handed to forward(). Up to four live inline, so an op with
// one to four inputs allocates nothing for them (this is on every op's path).
template <class T>
class ArrayRefs {
public:
    ArrayRefs() = default;
    explicit ArrayRefs(const std::vector<const Array<T>*>& arrays) {
        for (const Array<T>* a : arrays) push_back(a);
    }
    const Array<T>& operator[](std::size_t i) const { return *(many_.empty() ? few_[i] : many_[i]); }
    std::size_t size() const { return size_; }
    void push_back(const Array<T>* a) {
        if (size_ < few_.size()) {
            few_[size_] = a;
        } else {
            if (many_.empty()) many_.assign(few_.begin(), few_.end());
            many_.push_back(a);
        }
        ++size_;
    }

private:
    std::array<const Array<T>*, 4> few_{};
    std::vector<const Array<T>*> many_;  // all of them, once there are more than four
    std::size_t size_ = 0;
};

template <class T>
class Function {
public:
    using value_type = T;
    virtual ~Function() = default;

    // The op's name, used in error messages, anomaly reports and DOT export.
    virtual std::string_view name() const = 0;
    virtual Array<T> forward(const ArrayRefs<T>& xs) = 0;
    // One gradient per input, each of that input's shape; an undefined Variable means zero
    // (ops may skip inputs for which needs_input_grad(i) is false).
    virtual std::vector<Variable<T>> backward(const Variable<T>& gy) = 0;

    const std::vector<Variable<T>>& inputs() const { return inputs_; }
    const Variable<T>& input(std::size_t i) const;
    // The variable this op produced (alive while any backward can reach this op).
    Variable<T> output() const;
    bool needs_input_grad(std::size_t i) const { return inputs_.at(i).requires_grad(); }
    int generation() const { return generation_; }
    bool released() const { return released_; }

    // Called by the engine. Records inputs and output; the output is held weakly so the graph
    // (output -> creator -> inputs) has no reference cycle.
    void attach(std::vector<Variable<T>> inputs, const std::shared_ptr<Node<T>>& output);
    // Drops what the op saved for backward (inputs and any state); further backward throws.
    void release();

protected:
    // Ops that keep state besides their inputs (masks, cached softmax) free it here.
    virtual void release_saved() {}

private:
    std::vector<Variable<T>> inputs_;
    std::weak_ptr<Node<T>> output_;
    int generation_ = 0;
    bool released_ = false;
};

namespace detail {
// Validates inputs (defined, same dtype is enforced by the type system) and returns their arrays.
template <class T>
ArrayRefs<T> input_arrays(std::string_view op, const Variable<T>* inputs, std::size_t n);
template <class T>
ArrayRefs<T> input_arrays(std::string_view op, const std::vector<Variable<T>>& inputs) {
    return input_arrays(op, inputs.data(), inputs.size());
}
// True if an op on these inputs must be recorded: grad mode on and some input requires grad.
template <class T>
bool should_record(const Variable<T>* inputs, std::size_t n);
template <class T>
bool should_record(const std::vector<Variable<T>>& inputs) {
    return should_record(inputs.data(), inputs.size());
}
// Wraps a forward result: checks it (anomaly mode) and links it to `fn` when recording.
template <class T>
Variable<T> finish(std::shared_ptr<Function<T>> fn, std::string_view op, std::vector<Variable<T>> inputs,
                   Array<T>&& result);
}  // namespace detail

// Runs `fn` on `inputs` and records it in the graph when gradients are needed.
template <class F>
Variable<typename F::value_type> apply(std::shared_ptr<F> fn,
                                       std::vector<Variable<typename F::value_type>> inputs) {
    using T = typename F::value_type;
    ArrayRefs<T> xs = detail::input_arrays<T>(fn->name(), inputs);
    Array<T> y = fn->forward(xs);
    const std::string_view op = fn->name();
    return detail::finish<T>(std::move(fn), op, std::move(inputs), std::move(y));
}

// apply<Op>({x, y}, op_args...): when nothing is recorded the op lives on the stack, so
// no-grad mode costs the array arithmetic and little else.
template <class Op, class... Args>
Variable<typename Op::value_type> apply(std::vector<Variable<typename Op::value_type>> inputs,
                                        Args&&... args) {
    using T = typename Op::value_type;
    if (detail::should_record(inputs))
        return apply(std::make_shared<Op>(std::forward<Args>(args)...), std::move(inputs));
    Op op(std::forward<Args>(args)...);
    ArrayRefs<T> xs = detail::input_arrays(op.name(), inputs);
    return detail::finish<T>(nullptr, op.name(), {}, op.forward(xs));
}

// The same for a braced list of inputs, apply<Op>({x, y}): the inputs are copied into the graph
// only when the op is recorded (in no-grad mode and in backward passes they are not).
template <class Op, class... Args>
Variable<typename Op::value_type> apply(std::initializer_list<Variable<typename Op::value_type>> inputs,
                                        Args&&... args) {
    using T = typename Op::value_type;
    if (detail::should_record(inputs.begin(), inputs.size()))
        return apply(std::make_shared<Op>(std::forward<Args>(args)...), std::vector<Variable<T>>(inputs));
    Op op(std::forward<Args>(args)...);
    ArrayRefs<T> xs = detail::input_arrays(op.name(), inputs.begin(), inputs.size());
    return detail::finish<T>(nullptr, op.name(), {}, op.forward(xs));
}

extern template class Function<float>;
extern template class Function<double>;

}  // namespace xg
