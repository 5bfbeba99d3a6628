#pragma once
// Checkpoints as .npz files (a zip of .npy arrays, what numpy's np.savez writes and np.load
// reads), written through xtensor's npy support and libzip. Saving is atomic: the archive is
// written to a temporary file beside the target, synced, then renamed over it, so an
// interrupted save leaves the previous file (or none), never a damaged one.
#include <string>
#include <string_view>

#include "graph/state_dict.hpp"
#include "nn/module.hpp"

namespace xg::nn {

// Writes `state` to `path`, each entry as "<name>.npy". Throws IoError naming the path.
template <class T>
void save_npz(const std::string& path, const StateDict<T>& state);

// Reads every array of an .npz in archive order. Throws IoError naming the file and the entry
// for a missing, truncated or foreign file, or an array of another dtype than T.
template <class T>
StateDict<T> load_npz(const std::string& path);

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
template <class T>
StateDict<T> load(const std::string& path, Module<T>& model);

#define XG_NN_CHECKPOINT_EXTERN(T)                                                           \
    extern template StateDict<T> to_section(std::string_view, const StateDict<T>&);          \
    extern template StateDict<T> from_section(std::string_view, const StateDict<T>&);        \
    extern template void save_npz(const std::string&, const StateDict<T>&);                  \
    extern template StateDict<T> load_npz(const std::string&);                               \
    extern template void save(const std::string&, const Module<T>&, const StateDict<T>&);    \
    extern template StateDict<T> load(const std::string&, Module<T>&);
XG_NN_CHECKPOINT_EXTERN(float)
XG_NN_CHECKPOINT_EXTERN(double)
#undef XG_NN_CHECKPOINT_EXTERN

}  // namespace xg::nn
