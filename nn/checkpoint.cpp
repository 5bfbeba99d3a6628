#include "nn/checkpoint.hpp"

#include <unordered_map>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::nn {
namespace {

constexpr std::string_view optimizer_section = "optimizer";

}  // namespace

template <class T>
StateDict<T> to_section(std::string_view section, const StateDict<T>& state) {
    StateDict<T> out;
    for (const auto& [name, array] : state) out.emplace_back(fmt::format("{}/{}", section, name), array);
    return out;
}

template <class T>
StateDict<T> from_section(std::string_view section, const StateDict<T>& all) {
    const std::string prefix = fmt::format("{}/", section);
    StateDict<T> out;
    for (const auto& [name, array] : all)
        if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), array);
    return out;
}

template <class T>
void save(const std::string& path, const Module<T>& model, const StateDict<T>& optimizer_state) {
    StateDict<T> all = model.state_dict();
    for (auto& entry : to_section(optimizer_section, optimizer_state)) all.push_back(std::move(entry));
    save_npz(path, all);
}

namespace {

// Compares the file's entries (from their headers) with the model before any data is read, in
// Module::load_state_dict's order and words (a missing entry, then a shape, then an unexpected
// name), so that a checkpoint that does not fit takes no memory for its arrays.
template <class T>
void check_fits(const std::string& path, const Module<T>& model) {
    std::unordered_map<std::string, Shape> in_file;
    for (auto& [name, shape] : npz_shapes<T>(path))
        if (name.find('/') == std::string::npos) in_file.emplace(std::move(name), std::move(shape));
    std::vector<Named<T>> targets = model.named_parameters();
    for (auto& b : model.named_buffers()) targets.push_back(std::move(b));
    auto refuse = [&](const std::string& what) {
        return IoError(fmt::format("{}: does not fit the model: load_state_dict: {}", path, what));
    };
    for (const auto& [name, var] : targets) {
        const auto it = in_file.find(name);
        if (it == in_file.end()) throw refuse(fmt::format("'{}' of shape {} is missing", name, shape_str(var.shape())));
        if (it->second != var.shape())
            throw refuse(fmt::format("'{}' has shape {} in the module but {} in the state", name,
                                     shape_str(var.shape()), shape_str(it->second)));
        in_file.erase(it);
    }
    if (!in_file.empty()) {
        const auto& [name, shape] = *in_file.begin();
        throw refuse(fmt::format("unexpected entry '{}' of shape {}", name, shape_str(shape)));
    }
}

}  // namespace

template <class T>
StateDict<T> load_with_sections(const std::string& path, Module<T>& model, std::size_t max_section_bytes) {
    check_fits(path, model);
    std::unordered_map<std::string, Shape> model_shapes;
    for (const auto& [name, var] : model.named_parameters()) model_shapes.emplace(name, var.shape());
    for (const auto& [name, var] : model.named_buffers()) model_shapes.emplace(name, var.shape());
    std::size_t other_bytes = 0;
    // check_fits has seen the headers; the file may have changed since, so the model's entries
    // are checked again as they are read, and everything else is bounded by the cap.
    const NpzAdmit admit = [&](const std::string& name, const Shape& shape, std::size_t bytes) {
        const auto it = model_shapes.find(name);
        if (it != model_shapes.end()) {
            if (it->second != shape)
                throw IoError(fmt::format("does not fit the model: '{}' has shape {} in the model but {} in the file",
                                          name, shape_str(it->second), shape_str(shape)));
            return;
        }
        if (bytes > max_section_bytes - other_bytes)
            throw IoError(fmt::format("shape {} needs {} bytes, which would bring the entries outside the model over "
                                      "the limit of {} bytes ({} taken before it)", shape_str(shape), bytes,
                                      max_section_bytes, other_bytes));
        other_bytes += bytes;
    };
    const StateDict<T> all = load_npz_admitting<T>(path, admit);
    StateDict<T> model_state, sections;
    for (const auto& [name, array] : all)
        (name.find('/') == std::string::npos ? model_state : sections).emplace_back(name, array);
    try {
        model.load_state_dict(model_state);
    } catch (const Error& e) {
        throw IoError(fmt::format("{}: does not fit the model: {}", path, e.what()));
    }
    return sections;
}

template <class T>
StateDict<T> load(const std::string& path, Module<T>& model, std::size_t max_section_bytes) {
    return from_section(optimizer_section, load_with_sections(path, model, max_section_bytes));
}

#define XG_INSTANTIATE(T)                                                          \
    template StateDict<T> to_section(std::string_view, const StateDict<T>&);       \
    template StateDict<T> from_section(std::string_view, const StateDict<T>&);     \
    template void save(const std::string&, const Module<T>&, const StateDict<T>&); \
    template StateDict<T> load(const std::string&, Module<T>&, std::size_t);             \
    template StateDict<T> load_with_sections(const std::string&, Module<T>&, std::size_t);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::nn
