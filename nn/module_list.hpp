#pragma once
// ModuleList: modules of any type held in a list (torch.nn.ModuleList). Each is registered as a
// child named "0", "1", ..., so parameters(), state_dict(), train()/eval(), zero_grad() and
// printing cover them; the list itself has no forward(): the module that holds it decides how its
// members are called.
#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>  // fmt::format; format.h costs every includer of xgrad.hpp a quarter second

#include "graph/error.hpp"
#include "nn/module.hpp"

namespace xg::nn {

template <class T>
class ModuleList : public Module<T> {
public:
    ModuleList() = default;
    template <class... M>
    explicit ModuleList(std::shared_ptr<M>... modules) {
        (push_back(std::move(modules)), ...);
    }

    // Appends `m` (shared: the caller may keep it) and returns it. ValueError if it is null.
    template <class M>
        requires std::derived_from<M, Module<T>>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        if (!m) throw ValueError(fmt::format("ModuleList::push_back: module {} is null", modules_.size()));
        this->register_module(std::to_string(modules_.size()), m);
        modules_.push_back(m);
        return m;
    }
    // The same, by PyTorch's name.
    template <class M>
        requires std::derived_from<M, Module<T>>
    std::shared_ptr<M> append(std::shared_ptr<M> m) {
        return push_back(std::move(m));
    }
    // Appends every module of `other` (the same modules, shared).
    void extend(const ModuleList& other) {
        const std::vector<std::shared_ptr<Module<T>>> added = other.modules_;  // other may be *this
        for (const auto& m : added) push_back(m);
    }

    std::size_t size() const { return modules_.size(); }
    bool empty() const { return modules_.empty(); }
    // Module i; IndexError naming i and the size when out of range.
    const std::shared_ptr<Module<T>>& operator[](std::size_t i) const {
        if (i >= modules_.size())
            throw IndexError(fmt::format("ModuleList: index {} is out of range for {} modules", i, modules_.size()));
        return modules_[i];
    }
    // Module i as an M; null when it is not one (IndexError when i is out of range).
    template <class M>
    std::shared_ptr<M> get(std::size_t i) const {
        return std::dynamic_pointer_cast<M>((*this)[i]);
    }
    auto begin() const { return modules_.begin(); }
    auto end() const { return modules_.end(); }

    std::string repr() const override { return "ModuleList"; }

private:
    std::vector<std::shared_ptr<Module<T>>> modules_;
};

}  // namespace xg::nn
