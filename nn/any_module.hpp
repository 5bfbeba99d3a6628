#pragma once
// AnyModule: any module with a forward(const Variable<T>&) behind one type, as torch's AnyModule
// is for Sequential. The module need not derive from UnaryModule nor make forward() virtual: the
// call goes through a function pointer fixed when the AnyModule is made, from the module's own
// type.
#include <concepts>
#include <memory>

#include "graph/error.hpp"
#include "nn/module.hpp"

namespace xg::nn {

// A module of number type T that maps one Variable to one Variable.
template <class M, class T>
concept OneInputModule = std::derived_from<M, Module<T>> && requires(M& m, const Variable<T>& x) {
    { m.forward(x) } -> std::convertible_to<Variable<T>>;
};

template <class T>
class AnyModule {
public:
    AnyModule() = default;
    // Holds `module` (shared: the caller may keep it to reach its parameters). ValueError if null.
    template <OneInputModule<T> M>
    AnyModule(std::shared_ptr<M> module)  // NOLINT(google-explicit-constructor): as torch's
        : module_(module), self_(module.get()), call_([](void* self, const Variable<T>& x) -> Variable<T> {
              return static_cast<M*>(self)->forward(x);
          }) {
        if (!module) throw ValueError("AnyModule: the module is null");
    }

    Variable<T> forward(const Variable<T>& x) const {
        if (!call_) throw ValueError("AnyModule::forward: the AnyModule is empty");
        return call_(self_, x);
    }
    Variable<T> operator()(const Variable<T>& x) const { return forward(x); }

    bool empty() const { return module_ == nullptr; }
    const std::shared_ptr<Module<T>>& ptr() const { return module_; }
    Module<T>& module() const { return *module_; }
    // The module as an M, or null when it is not one.
    template <class M>
    std::shared_ptr<M> get() const {
        return std::dynamic_pointer_cast<M>(module_);
    }

private:
    std::shared_ptr<Module<T>> module_;
    void* self_ = nullptr;  // the module as its own type M, for call_
    Variable<T> (*call_)(void*, const Variable<T>&) = nullptr;
};

}  // namespace xg::nn
