#include "nn/npy_header.hpp"

#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "graph/error.hpp"
#include "graph/shape_text.hpp"

namespace xg::nn {
namespace {

static_assert(sizeof(std::size_t) == sizeof(std::uint64_t), "dimensions are read as 64-bit sizes");

// A recursive-descent reader of the one dictionary form numpy writes. Each method consumes its
// token or throws, naming the byte offset in the header.
class DictReader {
public:
    DictReader(std::string_view text, std::string_view where) : text_(text), where_(where) {}

    NpyHeader read() {
        skip_space();
        expect('{');
        std::optional<std::string> descr;
        std::optional<bool> fortran_order;
        std::optional<std::vector<std::size_t>> shape;
        for (;;) {
            skip_space();
            if (peek() == '}') break;
            const std::size_t key_at = pos_;
            const std::string key = string_literal();
            skip_space();
            expect(':');
            skip_space();
            if (key == "descr") {
                once(descr.has_value(), key, key_at);
                if (peek() != '\'' && peek() != '"')
                    fail(fmt::format("'descr' at byte {} is not a string (structured dtypes are not supported)",
                                     pos_));
                descr = string_literal();
            } else if (key == "fortran_order") {
                once(fortran_order.has_value(), key, key_at);
                fortran_order = boolean();
            } else if (key == "shape") {
                once(shape.has_value(), key, key_at);
                shape = tuple_of_sizes();
            } else {
                fail(fmt::format("unexpected key '{}' at byte {} (only 'descr', 'fortran_order' and 'shape' are "
                                 "allowed)", key, key_at));
            }
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() != '}') fail(fmt::format("expected ',' or '}}' at byte {}, found {}", pos_, found()));
        }
        ++pos_;  // the closing brace
        skip_space();
        if (pos_ != text_.size())
            fail(fmt::format("{} unexpected bytes after the dictionary, from byte {} (only whitespace padding may "
                             "follow it)", text_.size() - pos_, pos_));
        if (!descr) fail("no 'descr' key");
        if (!fortran_order) fail("no 'fortran_order' key");
        if (!shape) fail("no 'shape' key");
        return {std::move(*descr), *fortran_order, std::move(*shape)};
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw IoError(fmt::format("{}: invalid npy header: {}", where_, what));
    }

    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

    std::string found() const {
        if (pos_ >= text_.size()) return "the end of the header";
        const auto c = static_cast<unsigned char>(text_[pos_]);
        return c >= 0x20 && c < 0x7f ? fmt::format("'{}'", text_[pos_]) : fmt::format("byte 0x{:02x}", c);
    }

    void expect(char c) {
        if (peek() != c) fail(fmt::format("expected '{}' at byte {}, found {}", c, pos_, found()));
        ++pos_;
    }

    void once(bool seen, const std::string& key, std::size_t at) const {
        if (seen) fail(fmt::format("key '{}' appears twice (again at byte {})", key, at));
    }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                       text_[pos_] == '\r'))
            ++pos_;
    }

    // 'text' or "text" of printable ASCII without escapes: every string numpy writes here.
    std::string string_literal() {
        const char quote = peek();
        if (quote != '\'' && quote != '"') fail(fmt::format("expected a quoted key at byte {}, found {}", pos_, found()));
        const std::size_t start = ++pos_;
        while (pos_ < text_.size() && text_[pos_] != quote) {
            const auto c = static_cast<unsigned char>(text_[pos_]);
            if (c < 0x20 || c >= 0x7f || c == '\\')
                fail(fmt::format("string starting at byte {} holds {} (escapes and non-ASCII are not supported)",
                                 start - 1, found()));
            ++pos_;
        }
        if (pos_ >= text_.size()) fail(fmt::format("string starting at byte {} is not closed", start - 1));
        return std::string(text_.substr(start, pos_++ - start));
    }

    bool boolean() {
        for (const auto& [word, value] : {std::pair<std::string_view, bool>{"True", true}, {"False", false}})
            if (text_.substr(pos_, word.size()) == word) {
                pos_ += word.size();
                return value;
            }
        fail(fmt::format("'fortran_order' at byte {} is not True or False", pos_));
    }

    // A decimal integer as Python writes one: no sign, no leading zero, no '_'.
    std::size_t size_literal() {
        const std::size_t start = pos_;
        std::uint64_t value = 0;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
            const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
            if (value > (UINT64_MAX - digit) / 10)
                fail(fmt::format("dimension at byte {} does not fit in 64 bits", start));
            value = value * 10 + digit;
            ++pos_;
        }
        if (pos_ == start) fail(fmt::format("expected a dimension (a non-negative integer) at byte {}, found {}", pos_, found()));
        if (text_[start] == '0' && pos_ - start > 1)
            fail(fmt::format("dimension at byte {} has a leading zero", start));
        return static_cast<std::size_t>(value);
    }

    // "()", "(n,)", "(n, m)", "(n, m,)": a tuple, so one dimension needs its comma, as in Python.
    std::vector<std::size_t> tuple_of_sizes() {
        const std::size_t start = pos_;
        if (peek() != '(') fail(fmt::format("'shape' at byte {} is not a tuple", pos_));
        ++pos_;
        std::vector<std::size_t> dims;
        bool comma_after_last = false;
        for (;;) {
            skip_space();
            if (peek() == ')') break;
            if (dims.size() == npy_max_dims)
                fail(fmt::format("'shape' at byte {} has more than {} dimensions", start, npy_max_dims));
            dims.push_back(size_literal());
            skip_space();
            comma_after_last = peek() == ',';
            if (comma_after_last) {
                ++pos_;
                continue;
            }
            if (peek() != ')') fail(fmt::format("expected ',' or ')' in 'shape' at byte {}, found {}", pos_, found()));
        }
        ++pos_;
        if (dims.size() == 1 && !comma_after_last)
            fail(fmt::format("'shape' at byte {} is a parenthesised integer, not a tuple (write ({},))", start, dims[0]));
        return dims;
    }

    std::string_view text_;
    std::string_view where_;
    std::size_t pos_ = 0;
};

}  // namespace

NpyPreamble parse_npy_preamble(std::span<const std::uint8_t> bytes, std::string_view where) {
    auto fail = [&](const std::string& what) { return IoError(fmt::format("{}: not a valid .npy entry: {}", where, what)); };
    constexpr std::string_view magic = "\x93NUMPY";
    if (bytes.size() < 10 || std::memcmp(bytes.data(), magic.data(), magic.size()) != 0)
        throw fail(fmt::format("no npy magic (\\x93NUMPY and a version) in its first {} bytes", bytes.size()));
    NpyPreamble p;
    p.major = bytes[6];
    const int minor = bytes[7];
    auto byte = [&](std::size_t i) { return static_cast<std::size_t>(bytes[i]); };
    if (p.major == 1 && minor == 0) {
        p.size = 10;
        p.header_size = byte(8) | byte(9) << 8;
    } else if ((p.major == 2 || p.major == 3) && minor == 0) {
        if (bytes.size() < 12) throw fail(fmt::format("a version {}.0 preamble needs 12 bytes, the entry has {}", p.major, bytes.size()));
        p.size = 12;
        p.header_size = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
    } else {
        throw fail(fmt::format("npy version {}.{} is not supported (1.0, 2.0 and 3.0 are)", p.major, minor));
    }
    if (p.header_size > npy_header_max)
        throw fail(fmt::format("its header claims {} bytes, more than the {}-byte limit", p.header_size, npy_header_max));
    return p;
}

NpyHeader parse_npy_header(std::string_view text, std::string_view where) { return DictReader(text, where).read(); }

std::uint64_t npy_data_bytes(const NpyHeader& header, std::size_t item_size, std::string_view where) {
    std::uint64_t bytes = item_size;
    for (const std::size_t d : header.shape) {
        if (d == 0) return 0;
    }
    for (const std::size_t d : header.shape) {
        if (bytes > UINT64_MAX / d)
            throw IoError(fmt::format("{}: shape {} of {}-byte items holds more than 2^64 bytes", where,
                                      shape_text(header.shape), item_size));
        bytes *= d;
    }
    return bytes;
}

}  // namespace xg::nn
