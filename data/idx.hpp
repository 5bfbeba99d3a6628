#pragma once
// The IDX format of the MNIST files: a 4-byte magic 00 00 <type> <ndim>, ndim big-endian uint32
// dimensions, then the data in row-major order. Only unsigned bytes (type 0x08) are supported:
// every MNIST-like data set uses them. Files may be gzip-compressed (detected by 1f 8b).
//
// Deliberately free of xtensor: this file and idx.cpp build in seconds under the fuzzer.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "graph/error.hpp"

namespace xg::data {

struct IdxArray {
    std::vector<std::size_t> shape;  // 1 to 4 dimensions
    std::vector<std::uint8_t> data;  // row-major, shape's product bytes

    std::size_t size() const { return data.size(); }
};

// Decompressed data larger than this is refused: a small corrupt or hostile .gz file must not
// be able to exhaust memory. Fashion-MNIST's largest file is 47 MB decompressed.
inline constexpr std::size_t default_max_idx_bytes = std::size_t{1} << 30;  // 1 GiB

// Reads an IDX file, raw or gzip-compressed. Throws IoError naming the file and what is wrong:
// missing or unreadable, empty, truncated header or data, foreign magic number, unsupported type
// code, corrupt gzip stream, trailing bytes, or larger than `max_bytes` once decompressed.
IdxArray read_idx(const std::string& path, std::size_t max_bytes = default_max_idx_bytes);

// Parses IDX bytes held in memory, raw or gzip-compressed; `name` (a file name) goes in messages.
IdxArray parse_idx(std::span<const std::uint8_t> bytes, std::string_view name,
                   std::size_t max_bytes = default_max_idx_bytes);

// Decompresses a complete gzip stream (several concatenated members are allowed, as gunzip
// does). Throws IoError naming `name` if the stream is corrupt or truncated, is followed by
// bytes that are not gzip, or inflates to more than `max_bytes`.
std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> bytes, std::string_view name,
                                 std::size_t max_bytes = default_max_idx_bytes);

bool is_gzip(std::span<const std::uint8_t> bytes);

// The IDX encoding of `data` with `shape` (type 0x08), gzip-compressed when asked.
// Throws ShapeError if shape has not 1 to 4 dimensions, a dimension does not fit in 32 bits, or
// the product of the shape is not data.size().
std::vector<std::uint8_t> encode_idx(const std::vector<std::size_t>& shape, std::span<const std::uint8_t> data,
                                     bool gzip);

// Writes encode_idx(...) to `path` atomically (graph/atomic_file.hpp): a reader never sees half
// a file. Throws IoError naming the file if writing fails.
void write_idx(const std::string& path, const std::vector<std::size_t>& shape, std::span<const std::uint8_t> data,
               bool gzip);

}  // namespace xg::data
