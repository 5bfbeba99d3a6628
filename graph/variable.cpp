#include "graph/variable.hpp"

#include <atomic>
#include <ostream>
#include <sstream>

#include <fmt/format.h>
#include <xtensor/xio.hpp>

#include "graph/function.hpp"

namespace xg {

template <class T>
Variable<T>::Variable(Array<T> data, bool requires_grad, std::string name)
    : node_(std::make_shared<Node<T>>()) {
    node_->data = std::move(data);
    node_->requires_grad = requires_grad;
    node_->name = std::move(name);
}

template <class T>
Node<T>& Variable<T>::checked_node() const {
    if (!node_) throw GraphError("Variable: use of an undefined Variable (default-constructed)");
    return *node_;
}

template <class T>
const Array<T>& Variable<T>::data() const {
    return checked_node().data;
}

template <class T>
Array<T>& Variable<T>::mutable_data() const {
    Node<T>& n = checked_node();
    ++n.version;
    return n.data;
}

template <class T>
void Variable<T>::set_data(Array<T> data) const {
    Node<T>& n = checked_node();
    ++n.version;
    n.data = std::move(data);
}

template <class T>
std::uint64_t Variable<T>::version() const {
    return checked_node().version;
}

template <class T>
T Variable<T>::item() const {
    const auto& a = data();
    if (a.size() != 1)
        throw ShapeError(fmt::format("item: variable of shape {} has {} elements, not one",
                                     shape_str(a.shape()), a.size()));
    return *a.begin();
}

template <class T>
Variable<T> Variable<T>::grad() const {
    return Variable<T>(checked_node().grad);
}

template <class T>
void Variable<T>::set_grad(const Variable& g) const {
    auto& n = checked_node();
    if (g.defined() && g.shape() != n.data.shape())
        throw ShapeError(fmt::format("set_grad: gradient of shape {} for a variable of shape {}",
                                     shape_str(g.shape()), shape_str(n.data.shape())));
    n.grad = g.node_;
}

template <class T>
void Variable<T>::zero_grad() const {
    checked_node().grad.reset();
}

template <class T>
bool Variable<T>::requires_grad() const {
    return checked_node().requires_grad;
}

template <class T>
const Variable<T>& Variable<T>::requires_grad_(bool on) const {
    auto& n = checked_node();
    if (!on && n.creator)
        throw GraphError("requires_grad_(false): only leaves can stop requiring grad; use detach()");
    n.requires_grad = on;
    return *this;
}

template <class T>
const Variable<T>& Variable<T>::retain_grad() const {
    checked_node().retains_grad = true;
    return *this;
}

template <class T>
const std::string& Variable<T>::name() const {
    return checked_node().name;
}

template <class T>
const Variable<T>& Variable<T>::set_name(std::string name) const {
    checked_node().name = std::move(name);
    return *this;
}

namespace {
std::atomic<long> grad_hook_count{0};
std::atomic<std::uint64_t> next_hook_id{1};
}  // namespace

void detail::count_grad_hooks(long delta) { grad_hook_count.fetch_add(delta, std::memory_order_relaxed); }
bool detail::any_grad_hooks() { return grad_hook_count.load(std::memory_order_relaxed) > 0; }

template <class T>
GradHooks<T>::~GradHooks() {
    detail::count_grad_hooks(-static_cast<long>(list.size()));
}

template <class T>
std::uint64_t Variable<T>::register_post_accumulate_grad_hook(std::function<void(const Variable&)> hook) const {
    auto& n = checked_node();
    if (n.creator || !n.requires_grad)
        throw GraphError(fmt::format("register_post_accumulate_grad_hook: the variable (shape {}) is {}; only a leaf "
                                     "that requires grad accumulates a gradient",
                                     shape_str(n.data.shape()), n.creator ? "the result of an op" : "not requiring grad"));
    if (!hook) throw GraphError("register_post_accumulate_grad_hook: the hook is empty");
    if (!n.grad_hooks) n.grad_hooks = std::make_unique<GradHooks<T>>();
    const std::uint64_t id = next_hook_id.fetch_add(1, std::memory_order_relaxed);
    n.grad_hooks->list.emplace_back(id, std::move(hook));
    detail::count_grad_hooks(1);
    return id;
}

template <class T>
bool Variable<T>::remove_hook(std::uint64_t id) const {
    auto& n = checked_node();
    if (!n.grad_hooks) return false;
    auto& list = n.grad_hooks->list;
    for (auto it = list.begin(); it != list.end(); ++it) {
        if (it->first != id) continue;
        list.erase(it);
        detail::count_grad_hooks(-1);
        return true;
    }
    return false;
}

template <class T>
Variable<T> Variable<T>::detach() const {
    return Variable<T>(data(), false, name());
}

template <class T>
Variable<T> scalar(T value, bool requires_grad, std::string name) {
    return Variable<T>(Array<T>(value), requires_grad, std::move(name));
}

template <class T>
std::ostream& operator<<(std::ostream& os, const Variable<T>& v) {
    if (!v.defined()) return os << "Variable(undefined)";
    std::ostringstream values;
    values << v.data();
    // Continuation lines line up under the first value.
    std::string text = values.str();
    for (std::size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', at + 1))
        text.insert(at + 1, std::string(sizeof("Variable(") - 1, ' '));
    os << "Variable(" << text << ", shape=" << shape_str(v.shape())
       << ", dtype=" << (sizeof(T) == 4 ? "float32" : "float64");
    if (!v.name().empty()) os << ", name=\"" << v.name() << '"';
    if (auto f = v.creator()) os << ", op=" << f->name();
    else if (v.requires_grad()) os << ", requires_grad";
    return os << ')';
}

template std::ostream& operator<<(std::ostream&, const Variable<float>&);
template std::ostream& operator<<(std::ostream&, const Variable<double>&);
template struct GradHooks<float>;
template struct GradHooks<double>;
template class Variable<float>;
template class Variable<double>;
template Variable<float> scalar(float, bool, std::string);
template Variable<double> scalar(double, bool, std::string);

}  // namespace xg
