#pragma once
// The header of a .npy array (numpy's format, versions 1.0, 2.0 and 3.0), parsed strictly and
// once: the bytes that follow it are read by the caller, who copies exactly the data size this
// header implies (no second parser that could read the header differently).
//
//   "\x93NUMPY" <major> <minor> <header length: 2 bytes (1.0) or 4 bytes (2.0, 3.0), little-endian>
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }   <spaces> '\n'
//
// The dictionary is a Python literal: the three keys in any order, each exactly once and nothing
// else, strings in single or double quotes, a trailing comma allowed, any whitespace between
// tokens and after the closing brace (numpy pads with spaces and ends with '\n').
//
// Free of xtensor, so the .npz fuzzer builds quickly.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xg::nn {

struct NpyHeader {
    std::string descr;  // dtype string, e.g. "<f4"
    bool fortran_order = false;
    std::vector<std::size_t> shape;
};

// The fixed part before the dictionary: magic, version and the dictionary's length.
struct NpyPreamble {
    int major = 0;
    std::size_t size = 0;         // 10 (version 1.0) or 12 (2.0, 3.0)
    std::size_t header_size = 0;  // bytes of the dictionary and its padding that follow
};

// Enough bytes to hold any preamble: read this many (or the whole entry if shorter) first.
inline constexpr std::size_t npy_preamble_max = 12;
// A dictionary longer than this is refused before it is read (numpy writes about 120 bytes; a
// 64-dimensional shape needs under 1.5 kB).
inline constexpr std::size_t npy_header_max = std::size_t{64} << 10;
// numpy's NPY_MAXDIMS (numpy 2).
inline constexpr std::size_t npy_max_dims = 64;

// Parses the preamble from the first bytes of an entry (at least 10, npy_preamble_max when the
// version is 2.0 or 3.0). Throws IoError prefixed by `where` (file and entry).
NpyPreamble parse_npy_preamble(std::span<const std::uint8_t> bytes, std::string_view where);

// Parses the dictionary (the header_size bytes after the preamble). Throws IoError prefixed by
// `where` naming what is wrong and where in the header.
NpyHeader parse_npy_header(std::string_view text, std::string_view where);

// The bytes of the data: product of the shape times `item_size`, or IoError naming `where`, the
// shape and the item size if that does not fit in 64 bits.
std::uint64_t npy_data_bytes(const NpyHeader& header, std::size_t item_size, std::string_view where);

}  // namespace xg::nn
