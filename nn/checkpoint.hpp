#pragma once
// Checkpoints as .npz files (nn/npz.hpp: what numpy's np.savez writes and np.load reads): a
// model's parameters and buffers, and sections of other state. Saving is atomic (an interrupted
// save leaves the previous file, or none, never a damaged one); loading checks every entry
// against the model before it takes memory for it.
#include <cstddef>
#include <string>
#include <string_view>

#include "graph/state_dict.hpp"
#include "nn/module.hpp"
#include "nn/npz.hpp"

namespace xg::nn {

// Sections: a checkpoint may hold, besides the model's entries, other named groups of arrays
// ("optimizer/...", "trainer/..."). Module names never contain '/', so the two cannot clash.
// `state` with every name prefixed by "<section>/":
template <class T>
StateDict<T> to_section(std::string_view section, const StateDict<T>& state);
// The entries of `all` in `section`, with the prefix removed.
template <class T>
StateDict<T> from_section(std::string_view section, const StateDict<T>& all);

// A model's parameters and buffers under their dotted names, and optionally an optimizer's
// state (Optimizer::state_dict()) in the section "optimizer".
template <class T>
void save(const std::string& path, const Module<T>& model, const StateDict<T>& optimizer_state = {});

// Restores a model saved by save(): names and shapes must match exactly (the error names the
// first mismatch, and the model is left unchanged); other sections are not the model's. Returns
// the optimizer section (empty if none), for Optimizer::load_state_dict().
// Memory: the entries' names and shapes are read from their headers and compared with the model
// before any data is read, so the model's entries take what the model takes; the other sections
// ("optimizer/...", "trainer/...") count against `max_section_bytes`. Every error is an IoError
// naming the file (and the entry).
template <class T>
StateDict<T> load(const std::string& path, Module<T>& model, std::size_t max_section_bytes = default_max_npz_bytes);
// The same, returning every entry outside the model with its section prefix ("optimizer/0.steps",
// "trainer/history"): one read of the file for whoever keeps several sections (the Trainer).
template <class T>
StateDict<T> load_with_sections(const std::string& path, Module<T>& model,
                                std::size_t max_section_bytes = default_max_npz_bytes);

#define XG_NN_CHECKPOINT_EXTERN(T)                                                           \
    extern template StateDict<T> to_section(std::string_view, const StateDict<T>&);          \
    extern template StateDict<T> from_section(std::string_view, const StateDict<T>&);        \
    extern template void save(const std::string&, const Module<T>&, const StateDict<T>&);    \
    extern template StateDict<T> load(const std::string&, Module<T>&, std::size_t);          \
    extern template StateDict<T> load_with_sections(const std::string&, Module<T>&, std::size_t);
XG_NN_CHECKPOINT_EXTERN(float)
XG_NN_CHECKPOINT_EXTERN(double)
#undef XG_NN_CHECKPOINT_EXTERN

}  // namespace xg::nn
