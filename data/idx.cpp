// IDX reading and writing. Every failure is an IoError (or ShapeError for a bad write request)
// naming the file and the numbers involved; nothing here trusts a size read from the input.
#include "data/idx.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include <fmt/core.h>
#include <sys/stat.h>
#include <zlib.h>

#include "graph/atomic_file.hpp"
#include "graph/shape_text.hpp"

namespace xg::data {

namespace {

constexpr std::uint8_t idx_ubyte = 0x08;
constexpr std::size_t max_idx_dims = 4;
// Limits are clamped to this so that `limit + 1` and the read slack cannot wrap around.
constexpr std::size_t max_limit = SIZE_MAX / 4;

[[noreturn]] void fail(std::string_view name, const std::string& what) {
    throw IoError(fmt::format("{}: {}", name, what));
}

std::string_view idx_type_name(std::uint8_t code) {
    switch (code) {
        case 0x08: return "unsigned byte";
        case 0x09: return "signed byte";
        case 0x0B: return "int16";
        case 0x0C: return "int32";
        case 0x0D: return "float32";
        case 0x0E: return "float64";
        default: return "not an IDX type";
    }
}

std::uint32_t read_be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

std::uint32_t read_le32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[3]} << 24);
}

void append_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// Product of the dimensions, or nullopt-like `limit + 1` when it exceeds `limit` (overflow
// included), so that no multiplication can wrap around.
std::size_t checked_product(const std::vector<std::size_t>& dims, std::size_t limit) {
    for (std::size_t d : dims)
        if (d == 0) return 0;
    std::size_t product = 1;
    for (std::size_t d : dims) {
        if (product > limit / d) return limit + 1;
        product *= d;
    }
    return product;
}

// The dimensions of a header whose magic and size have been checked.
std::vector<std::size_t> read_shape(std::span<const std::uint8_t> header) {
    std::vector<std::size_t> shape;
    for (std::size_t i = 0; i < header[3]; ++i) shape.push_back(read_be32(header.data() + 4 + 4 * i));
    return shape;
}

// Up to `n` bytes from the start of the first gzip member, fewer if it is shorter or damaged
// (then the full inflation reports the problem). Costs a few microseconds whatever follows.
std::vector<std::uint8_t> gunzip_prefix(std::span<const std::uint8_t> bytes, std::size_t n) {
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return {};
    std::vector<std::uint8_t> out(n);
    z.next_in = const_cast<Bytef*>(bytes.data());
    z.avail_in = static_cast<uInt>(std::min<std::size_t>(bytes.size(), UINT_MAX));
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(n);
    while (z.avail_out > 0) {
        const uInt in_before = z.avail_in, out_before = z.avail_out;
        if (inflate(&z, Z_NO_FLUSH) != Z_OK || (z.avail_in == in_before && z.avail_out == out_before)) break;
    }
    out.resize(n - z.avail_out);
    inflateEnd(&z);
    return out;
}

// A gzip IDX file whose header declares more data than `max_bytes` is refused from the header
// alone, before the data is inflated (an honest header on a bomb costs nothing). Any other
// problem is left to the full parse, which names it.
void refuse_declared_over_limit(std::span<const std::uint8_t> gz, std::string_view name, std::size_t max_bytes) {
    const std::vector<std::uint8_t> head = gunzip_prefix(gz, 4 + 4 * max_idx_dims);
    if (head.size() < 4 || head[0] != 0 || head[1] != 0 || head[2] != idx_ubyte || head[3] < 1 ||
        head[3] > max_idx_dims || head.size() < 4 + 4 * std::size_t{head[3]})
        return;
    const std::vector<std::size_t> shape = read_shape(head);
    if (checked_product(shape, max_bytes) > max_bytes)
        fail(name, fmt::format("gzip data inflates to more than the {}-byte limit (corrupt file or decompression "
                               "bomb): its IDX header declares shape {}", max_bytes, shape_text(shape)));
}

struct IdxHeader {
    std::vector<std::size_t> shape;
    std::size_t bytes = 0;  // of the header itself; the data follows
};

// Checks raw (uncompressed) IDX bytes: header, type, shape and the exact data size.
IdxHeader check_raw_idx(std::span<const std::uint8_t> bytes, std::string_view name, std::size_t max_bytes) {
    if (bytes.size() < 4)
        fail(name, fmt::format("too short for an IDX header: {} bytes, need at least 4", bytes.size()));
    const std::uint32_t magic = read_be32(bytes.data());
    if (bytes[0] != 0 || bytes[1] != 0)
        fail(name, fmt::format("not an IDX file: magic number 0x{:08x} found, expected 0x0000080N "
                               "(00 00 08 then 1 to 4 dimensions)", magic));
    const std::uint8_t type = bytes[2];
    if (type != idx_ubyte)
        fail(name, fmt::format("IDX type code 0x{:02x} ({}) is not supported, only 0x08 (unsigned byte); "
                               "magic number 0x{:08x}", type, idx_type_name(type), magic));
    const std::size_t ndim = bytes[3];
    if (ndim < 1 || ndim > max_idx_dims)
        fail(name, fmt::format("IDX magic number 0x{:08x} declares {} dimensions, 1 to {} are supported", magic,
                               ndim, max_idx_dims));
    const std::size_t header = 4 + 4 * ndim;
    if (bytes.size() < header)
        fail(name, fmt::format("truncated IDX header: {} bytes, a {}-dimensional header needs {}", bytes.size(), ndim,
                               header));

    IdxHeader out{read_shape(bytes), header};
    const std::size_t count = checked_product(out.shape, max_bytes);
    if (count > max_bytes)
        fail(name, fmt::format("IDX shape {} declares more than the {}-byte limit of data", shape_text(out.shape),
                               max_bytes));
    const std::size_t present = bytes.size() - header;
    if (present < count)
        fail(name, fmt::format("truncated: IDX shape {} needs {} bytes of data after the {}-byte header, "
                               "only {} are present", shape_text(out.shape), count, header, present));
    if (present > count)
        fail(name, fmt::format("{} trailing bytes after the {} bytes of data that IDX shape {} declares",
                               present - count, count, shape_text(out.shape)));
    return out;
}

// Parses raw IDX bytes it owns: the data is moved out rather than copied (47 MB for MNIST).
IdxArray parse_owned_raw_idx(std::vector<std::uint8_t> bytes, std::string_view name, std::size_t max_bytes) {
    IdxHeader header = check_raw_idx(bytes, name, max_bytes);
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header.bytes));
    return {std::move(header.shape), std::move(bytes)};
}

// Reads a whole file; anything larger than `limit` bytes is refused before it is all in memory.
// The buffer is sized from the file's size on disk (real content, not a claim), so it is not
// reallocated while it grows.
std::vector<std::uint8_t> read_file(const std::string& path, std::size_t limit) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail(path, fmt::format("cannot open: {}", std::strerror(errno)));
    std::vector<std::uint8_t> bytes;
    struct stat info {};
    if (::fstat(::fileno(f), &info) == 0 && S_ISREG(info.st_mode) && info.st_size > 0) {
        const auto size = static_cast<std::uint64_t>(info.st_size);
        if (size > limit) {
            std::fclose(f);
            fail(path, fmt::format("file of {} bytes is larger than the {}-byte limit", size, limit));
        }
        bytes.reserve(static_cast<std::size_t>(size) + 1);  // + 1: fread's end-of-file probe
    }
    constexpr std::size_t chunk = std::size_t{1} << 20;
    for (;;) {
        const std::size_t old = bytes.size();
        const std::size_t want = bytes.capacity() > old ? bytes.capacity() - old : chunk;
        bytes.resize(old + want);
        const std::size_t got = std::fread(bytes.data() + old, 1, want, f);
        bytes.resize(old + got);
        if (got < want) break;
        if (bytes.size() > limit) {
            std::fclose(f);
            fail(path, fmt::format("file is larger than the {}-byte limit", limit));
        }
    }
    const bool read_error = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    if (read_error) fail(path, fmt::format("cannot read: {}", std::strerror(err)));
    return bytes;
}

}  // namespace

bool is_gzip(std::span<const std::uint8_t> bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> bytes, std::string_view name, std::size_t max_bytes) {
    max_bytes = std::min(max_bytes, max_limit);
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) fail(name, "zlib: cannot initialise inflate");
    struct End {
        z_stream& z;
        ~End() { inflateEnd(&z); }
    } end{z};

    // The gzip trailer holds the size mod 2^32: a good first guess, but the input is untrusted,
    // so the guess is bounded by deflate's best ratio (about 1032:1) and by the limit.
    std::size_t guess = std::size_t{64} << 10;
    if (bytes.size() >= 18) guess = std::max<std::size_t>(guess, read_le32(bytes.data() + bytes.size() - 4));
    guess = std::min({guess, bytes.size() * 1040 + 1024, max_bytes + 1});

    std::vector<std::uint8_t> out(guess);
    std::size_t produced = 0;
    std::size_t consumed = 0;  // input bytes zlib has consumed
    z.next_in = const_cast<Bytef*>(bytes.data());
    z.avail_in = 0;
    auto input_left = [&] { return bytes.size() - consumed; };
    for (;;) {
        if (z.avail_in == 0 && input_left() > 0) {
            z.next_in = const_cast<Bytef*>(bytes.data() + consumed);
            z.avail_in = static_cast<uInt>(std::min<std::size_t>(input_left(), UINT_MAX));
        }
        if (produced == out.size()) {
            if (out.size() > max_bytes)
                fail(name, fmt::format("gzip data inflates to more than the {}-byte limit "
                                       "(corrupt file or decompression bomb)", max_bytes));
            out.resize(std::min(out.size() * 2, max_bytes + 1));
        }
        const std::size_t in_before = z.avail_in;
        z.next_out = out.data() + produced;
        z.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - produced, UINT_MAX));
        const std::size_t out_before = z.avail_out;
        const int ret = inflate(&z, Z_NO_FLUSH);
        produced += out_before - z.avail_out;
        consumed += in_before - z.avail_in;
        if (ret == Z_STREAM_END) {
            if (input_left() == 0) break;
            // Another gzip member may follow, as `cat a.gz b.gz` makes; anything else is garbage.
            if (!is_gzip(bytes.subspan(consumed)))
                fail(name, fmt::format("{} trailing bytes after the gzip stream (which ends at byte {})",
                                       input_left(), consumed));
            inflateReset(&z);
            z.avail_in = 0;
            continue;
        }
        if (ret == Z_BUF_ERROR && input_left() == 0 && z.avail_in == 0)
            fail(name, fmt::format("truncated gzip stream: it ends after {} compressed bytes ({} inflated) "
                                   "before its end marker", bytes.size(), produced));
        if (ret == Z_MEM_ERROR) fail(name, "zlib: out of memory while inflating");
        if (ret != Z_OK && ret != Z_BUF_ERROR)
            fail(name, fmt::format("corrupt gzip stream near compressed byte {}: {}", consumed,
                                   z.msg ? z.msg : "zlib error"));
        // Output space and input were both offered: no progress would mean looping forever.
        if (ret == Z_BUF_ERROR && z.avail_in == in_before && z.avail_out == out_before)
            fail(name, fmt::format("corrupt gzip stream near compressed byte {}: zlib made no progress", consumed));
    }
    if (produced > max_bytes)
        fail(name, fmt::format("gzip data inflates to more than the {}-byte limit "
                               "(corrupt file or decompression bomb)", max_bytes));
    out.resize(produced);
    return out;
}

IdxArray parse_idx(std::span<const std::uint8_t> bytes, std::string_view name, std::size_t max_bytes) {
    max_bytes = std::min(max_bytes, max_limit);
    if (bytes.empty()) fail(name, "file is empty (0 bytes), expected an IDX header");
    if (is_gzip(bytes)) {
        refuse_declared_over_limit(bytes, name, max_bytes);
        std::vector<std::uint8_t> raw = gunzip(bytes, name, max_bytes);
        if (raw.empty()) fail(name, "gzip data inflates to 0 bytes, expected an IDX header");
        return parse_owned_raw_idx(std::move(raw), name, max_bytes);
    }
    IdxHeader header = check_raw_idx(bytes, name, max_bytes);
    return {std::move(header.shape), std::vector<std::uint8_t>(bytes.begin() + static_cast<std::ptrdiff_t>(header.bytes),
                                                               bytes.end())};
}

IdxArray read_idx(const std::string& path, std::size_t max_bytes) {
    max_bytes = std::min(max_bytes, max_limit);
    // A raw file larger than the limit is refused by the header check anyway; the slack admits a
    // compressed file that did not shrink (gzip adds a few bytes per 16 kB block).
    std::vector<std::uint8_t> bytes = read_file(path, max_bytes + max_bytes / 64 + 4096);
    if (bytes.empty() || is_gzip(bytes)) return parse_idx(bytes, path, max_bytes);
    return parse_owned_raw_idx(std::move(bytes), path, max_bytes);
}

std::vector<std::uint8_t> encode_idx(const std::vector<std::size_t>& shape, std::span<const std::uint8_t> data,
                                     bool gzip) {
    if (shape.empty() || shape.size() > max_idx_dims)
        throw ShapeError(fmt::format("encode_idx: shape {} has {} dimensions, IDX supports 1 to {}", shape_text(shape),
                                     shape.size(), max_idx_dims));
    for (std::size_t d : shape)
        if (d > UINT32_MAX)
            throw ShapeError(fmt::format("encode_idx: dimension {} of shape {} does not fit in 32 bits", d,
                                         shape_text(shape)));
    const std::size_t count = checked_product(shape, data.size());
    if (count != data.size())
        throw ShapeError(fmt::format("encode_idx: shape {} does not hold the {} bytes given", shape_text(shape),
                                     data.size()));

    std::vector<std::uint8_t> raw = {0, 0, idx_ubyte, static_cast<std::uint8_t>(shape.size())};
    raw.reserve(4 + 4 * shape.size() + data.size());
    for (std::size_t d : shape) append_be32(raw, static_cast<std::uint32_t>(d));
    raw.insert(raw.end(), data.begin(), data.end());
    if (!gzip) return raw;

    z_stream z{};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw IoError("encode_idx: zlib: cannot initialise deflate");
    std::vector<std::uint8_t> out(deflateBound(&z, static_cast<uLong>(raw.size())));
    z.next_in = raw.data();
    z.avail_in = static_cast<uInt>(raw.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    const int ret = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (ret != Z_STREAM_END) throw IoError(fmt::format("encode_idx: zlib deflate failed ({})", ret));
    return out;
}

void write_idx(const std::string& path, const std::vector<std::size_t>& shape, std::span<const std::uint8_t> data,
               bool gzip) {
    const std::vector<std::uint8_t> bytes = encode_idx(shape, data, gzip);
    write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace xg::data
