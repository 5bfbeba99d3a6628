#pragma once
// .npz files: a zip of .npy arrays, what numpy's np.savez writes and np.load reads.
//
// Writing: each array through xtensor's npy writer into a zip built in memory by libzip, then
// published with an AtomicFile (graph/atomic_file.hpp): an interrupted save leaves the previous
// file intact.
//
// Reading trusts nothing the file claims. Every entry's npy header is read first (streamed from
// libzip) and parsed once, strictly (nn/npy_header.hpp); its data size follows from the shape and
// must equal the size the zip declares, which must be possible for the bytes actually in the file
// (stored entries: no more than the file holds; deflated ones: at most deflate's 1032:1 ratio).
// Only then, and only within the caller's memory cap, is the array allocated and its data copied
// in. Each entry's CRC is checked. Every failure is an IoError naming the file and the entry.
#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "graph/state_dict.hpp"

namespace xg::nn {

// The default cap on the memory of the arrays that load_npz returns (their data bytes, all
// entries together): a corrupt or hostile file cannot make it take more.
inline constexpr std::size_t default_max_npz_bytes = std::size_t{1} << 30;  // 1 GiB

// Writes `state` to `path`, each entry as "<name>.npy", uncompressed. Throws ValueError for an
// empty state or a name that appears twice, IoError naming the path if writing fails.
template <class T>
void save_npz(const std::string& path, const StateDict<T>& state);

// Reads every array of an .npz in archive order; the arrays' data may take at most `max_bytes`
// in all. Throws IoError naming the file and the entry for a missing, truncated, damaged or
// foreign file, a duplicate entry, an array of another dtype than T (little-endian '<f4' for
// float, '<f8' for double) or over the cap.
template <class T>
StateDict<T> load_npz(const std::string& path, std::size_t max_bytes = default_max_npz_bytes);

// Called for each entry once its header is read and checked, before memory is taken for its
// data: `name` without ".npy", the shape, and the bytes the array will take. Throws (any
// xg::Error) to refuse the entry; the loader turns it into an IoError naming file and entry.
using NpzAdmit = std::function<void(const std::string& name, const Shape& shape, std::size_t bytes)>;

// load_npz with the caller's admission rule in place of the total cap.
template <class T>
StateDict<T> load_npz_admitting(const std::string& path, const NpzAdmit& admit);

// The name and shape of every entry from its header alone, with load_npz's checks up to the data
// (no array memory is taken): for a loader that compares a file with what it expects first.
template <class T>
std::vector<std::pair<std::string, Shape>> npz_shapes(const std::string& path);

#define XG_NN_NPZ_EXTERN(T)                                                           \
    extern template void save_npz(const std::string&, const StateDict<T>&);           \
    extern template StateDict<T> load_npz(const std::string&, std::size_t);           \
    extern template StateDict<T> load_npz_admitting(const std::string&, const NpzAdmit&); \
    extern template std::vector<std::pair<std::string, Shape>> npz_shapes<T>(const std::string&);
XG_NN_NPZ_EXTERN(float)
XG_NN_NPZ_EXTERN(double)
#undef XG_NN_NPZ_EXTERN

}  // namespace xg::nn
