#include "nn/module.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <sstream>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::nn {

template <class T>
std::string Module<T>::type_name() const {
    const char* mangled = typeid(*this).name();
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
    std::string name = status == 0 && demangled ? demangled.get() : mangled;
    // A user's module defined in an unnamed namespace reads as its own name.
    const std::string_view unnamed = "(anonymous namespace)::";
    for (std::size_t at = name.find(unnamed); at != std::string::npos; at = name.find(unnamed, at))
        name.erase(at, unnamed.size());
    return name;
}

template <class T>
void Module<T>::check_new_name(const std::string& name) const {
    if (name.empty() || name.find_first_of("./") != std::string::npos)
        throw ValueError(fmt::format("{}: invalid name '{}' (empty, or contains '.' or '/')", type_name(), name));
    auto taken = [&](const auto& entries) {
        for (const auto& e : entries)
            if (e.first == name) return true;
        return false;
    };
    bool used = taken(children_);
    for (const Entry& e : params_) used = used || e.name == name;
    for (const Entry& e : buffers_) used = used || e.name == name;
    if (used) throw ValueError(fmt::format("{}: the name '{}' is already registered", type_name(), name));
}

template <class T>
Variable<T> Module<T>::register_parameter(std::string name, Variable<T> p, Decay decay) {
    check_new_name(name);
    if (!p.defined()) throw ValueError(fmt::format("{}: parameter '{}' is undefined", type_name(), name));
    p.requires_grad_(true);
    if (p.name().empty()) p.set_name(name);
    params_.push_back({std::move(name), p, decay});
    return p;
}

template <class T>
Variable<T> Module<T>::register_buffer(std::string name, Variable<T> b) {
    check_new_name(name);
    if (!b.defined()) throw ValueError(fmt::format("{}: buffer '{}' is undefined", type_name(), name));
    buffers_.push_back({std::move(name), b, Decay::no});
    return b;
}

template <class T>
void Module<T>::add_child(std::string name, std::shared_ptr<Module> m) {
    check_new_name(name);
    if (!m) throw ValueError(fmt::format("{}: sub-module '{}' is null", type_name(), name));
    m->train(training_);
    children_.emplace_back(std::move(name), std::move(m));
}

template <class T>
void Module<T>::collect(const std::string& prefix, bool buffers, std::vector<Named<T>>& out) const {
    for (const Entry& e : buffers ? buffers_ : params_) out.emplace_back(prefix + e.name, e.var);
    for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

namespace {
// Drops later entries that share a node with an earlier one (a parameter shared by two layers).
template <class T>
std::vector<Named<T>> unique_nodes(std::vector<Named<T>> all) {
    std::unordered_set<const void*> seen;
    std::vector<Named<T>> out;
    for (auto& e : all)
        if (seen.insert(e.second.node()).second) out.push_back(std::move(e));
    return out;
}
}  // namespace

template <class T>
std::vector<Named<T>> Module<T>::named_parameters() const {
    std::vector<Named<T>> all;
    collect("", false, all);
    return unique_nodes(std::move(all));
}

template <class T>
std::vector<Named<T>> Module<T>::named_buffers() const {
    std::vector<Named<T>> all;
    collect("", true, all);
    return unique_nodes(std::move(all));
}

template <class T>
std::vector<Variable<T>> Module<T>::parameters() const {
    std::vector<Variable<T>> out;
    for (auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
}

template <class T>
std::vector<Variable<T>> Module<T>::decayed_parameters() const {
    std::vector<Variable<T>> out;
    std::unordered_set<const void*> seen;
    for (const Entry& e : params_)
        if (e.decay == Decay::yes && seen.insert(e.var.node()).second) out.push_back(e.var);
    for (const auto& [name, child] : children_)
        for (Variable<T>& p : child->decayed_parameters())
            if (seen.insert(p.node()).second) out.push_back(p);
    return out;
}

template <class T>
void Module<T>::train(bool on) {
    training_ = on;
    for (auto& [name, child] : children_) child->train(on);
}

template <class T>
void Module<T>::zero_grad() {
    for (const Variable<T>& p : parameters()) p.zero_grad();
}

template <class T>
StateDict<T> Module<T>::state_dict() const {
    StateDict<T> out;
    for (const auto& [name, p] : named_parameters()) out.emplace_back(name, p.data());
    for (const auto& [name, b] : named_buffers()) out.emplace_back(name, b.data());
    return out;
}

template <class T>
void Module<T>::load_state_dict(const StateDict<T>& state) {
    std::unordered_map<std::string, const Array<T>*> given;
    for (const auto& [name, array] : state)
        if (!given.emplace(name, &array).second)
            throw ValueError(fmt::format("load_state_dict: the entry '{}' appears twice", name));
    std::vector<Named<T>> targets = named_parameters();
    for (auto& b : named_buffers()) targets.push_back(std::move(b));
    // Check everything before changing anything, so a failed load leaves the module as it was.
    for (const auto& [name, var] : targets) {
        auto it = given.find(name);
        if (it == given.end())
            throw ValueError(fmt::format("load_state_dict: '{}' of shape {} is missing", name, shape_str(var.shape())));
        if (it->second->shape() != var.shape())
            throw ShapeError(fmt::format("load_state_dict: '{}' has shape {} in the module but {} in the state",
                                         name, shape_str(var.shape()), shape_str(it->second->shape())));
    }
    if (given.size() != targets.size()) {
        std::unordered_set<std::string> known;
        for (const auto& t : targets) known.insert(t.first);
        for (const auto& [name, array] : state)
            if (!known.count(name))
                throw ValueError(fmt::format("load_state_dict: unexpected entry '{}' of shape {}", name,
                                             shape_str(array.shape())));
    }
    for (auto& [name, var] : targets) var.mutable_data() = *given.at(name);
}

template <class T>
void Module<T>::print(std::ostream& os, const std::string& name, int depth) const {
    os << std::string(2 * depth, ' ') << (name.empty() ? "" : "(" + name + "): ") << repr() << "\n";
    for (const auto& [child_name, child] : children_) child->print(os, child_name, depth + 1);
}

template <class T>
std::string Module<T>::str() const {
    std::ostringstream os;
    print(os, "", 0);
    return os.str();
}

template class Module<float>;
template class Module<double>;

}  // namespace xg::nn
