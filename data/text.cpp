#include "data/text.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <fmt/format.h>

#include "data/dataset.hpp"
#include "graph/error.hpp"

namespace xg::data {

namespace fs = std::filesystem;

namespace {

std::string byte_text(unsigned char c) {
    if (c >= 0x20 && c < 0x7f) return fmt::format("'{}'", static_cast<char>(c));
    return fmt::format("\\x{:02x}", static_cast<unsigned>(c));
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string read_text_file(const std::string& path, std::size_t max_bytes) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) throw IoError(fmt::format("text file {}: no such file", path));
    if (!fs::is_regular_file(st)) throw IoError(fmt::format("text file {}: not a regular file", path));
    const auto size = fs::file_size(path, ec);
    if (ec) throw IoError(fmt::format("text file {}: cannot read its size ({})", path, ec.message()));
    if (size > max_bytes)
        throw IoError(fmt::format("text file {}: {} bytes, more than the limit of {}", path, size, max_bytes));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(fmt::format("text file {}: cannot be opened for reading", path));
    std::string text(static_cast<std::size_t>(size), '\0');
    in.read(text.data(), static_cast<std::streamsize>(size));
    if (static_cast<std::uintmax_t>(in.gcount()) != size)
        throw IoError(fmt::format("text file {}: read {} of its {} bytes", path, in.gcount(), size));
    if (text.empty()) throw IoError(fmt::format("text file {}: empty", path));
    return text;
}

std::string default_fortunes_dir() { return "/usr/share/games/fortunes"; }

std::vector<std::string> fortune_files(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw IoError(fmt::format("fortunes: {} is not a directory (install Debian's fortunes package: "
                                  "scripts/setup does)",
                                  dir));
    std::vector<std::string> files;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (ends_with(name, ".dat") || ends_with(name, ".u8")) continue;
        std::error_code ec2;
        if (fs::is_regular_file(e.path(), ec2)) files.push_back(e.path().string());
    }
    if (ec) throw IoError(fmt::format("fortunes: cannot list {} ({})", dir, ec.message()));
    if (files.empty())
        throw IoError(fmt::format("fortunes: no fortune text file in {} (install Debian's fortunes package: "
                                  "scripts/setup does)",
                                  dir));
    std::sort(files.begin(), files.end());
    return files;
}

std::string load_fortunes(const std::string& dir, std::size_t max_bytes) {
    std::string text;
    for (const std::string& file : fortune_files(dir)) {
        std::error_code ec;
        const auto size = fs::file_size(file, ec);
        if (!ec && size > max_bytes - text.size())
            throw IoError(fmt::format("fortunes: the files of {} pass the limit of {} bytes at {}", dir, max_bytes, file));
        text += read_text_file(file, max_bytes - text.size());
    }
    return text;
}

Vocabulary::Vocabulary(std::string_view text) {
    if (text.empty()) throw ValueError("Vocabulary: empty text");
    std::array<bool, 256> seen{};
    for (char ch : text) seen[static_cast<unsigned char>(ch)] = true;
    for (std::size_t c = 0; c < 256; ++c)
        if (seen[c]) {
            ids_[c] = static_cast<std::int16_t>(symbols_.size());
            symbols_.push_back(static_cast<char>(c));
        }
}

Vocabulary Vocabulary::from_symbols(std::string_view symbols) {
    if (symbols.empty()) throw ValueError("Vocabulary::from_symbols: no symbol");
    Vocabulary v;
    for (char ch : symbols) {
        const auto c = static_cast<unsigned char>(ch);
        if (v.ids_[c] >= 0) throw ValueError(fmt::format("Vocabulary::from_symbols: byte {} twice", byte_text(c)));
        v.ids_[c] = static_cast<std::int16_t>(v.symbols_.size());
        v.symbols_.push_back(ch);
    }
    return v;
}

std::int64_t Vocabulary::id(unsigned char c) const {
    if (ids_[c] < 0)
        throw ValueError(fmt::format("Vocabulary: byte {} is not among its {} symbols", byte_text(c), size()));
    return ids_[c];
}

unsigned char Vocabulary::symbol(std::int64_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= size())
        throw IndexError(fmt::format("Vocabulary: id {} outside [0, {})", id, size()));
    return static_cast<unsigned char>(symbols_[static_cast<std::size_t>(id)]);
}

std::vector<std::int64_t> Vocabulary::encode(std::string_view text) const {
    std::vector<std::int64_t> out;
    out.reserve(text.size());
    for (char ch : text) out.push_back(id(static_cast<unsigned char>(ch)));
    return out;
}

std::string Vocabulary::decode(const std::vector<std::int64_t>& ids) const {
    std::string out;
    out.reserve(ids.size());
    for (std::int64_t i : ids) out.push_back(static_cast<char>(symbol(i)));
    return out;
}

TextSplit split_text(const std::vector<std::int64_t>& ids, TextSplitOptions o) {
    if (o.validation_every < 2 || o.blocks < o.validation_every)
        throw ValueError(fmt::format("split_text: needs blocks >= validation_every >= 2, got blocks {} and "
                                     "validation_every {}",
                                     o.blocks, o.validation_every));
    if (ids.size() < o.blocks)
        throw ValueError(fmt::format("split_text: {} ids cannot be cut into {} blocks", ids.size(), o.blocks));
    const std::size_t piece = ids.size() / o.blocks;
    TextSplit out;
    for (std::size_t b = 0; b < o.blocks; ++b) {
        const std::size_t start = b * piece, stop = b + 1 == o.blocks ? ids.size() : start + piece;
        auto& side = (b + 1) % o.validation_every == 0 ? out.validation : out.train;
        side.insert(side.end(), ids.begin() + static_cast<long>(start), ids.begin() + static_cast<long>(stop));
    }
    return out;
}

Labels SequenceBatch::targets() const {
    Labels out = Labels::from_shape({y.size()});
    std::copy(y.begin(), y.end(), out.begin());
    return out;
}

SequenceBatch random_windows(const std::vector<std::int64_t>& ids, std::size_t n, std::size_t length,
                             std::mt19937_64& rng) {
    if (n == 0 || length == 0 || ids.size() < length + 1)
        throw ValueError(fmt::format("random_windows: {} windows of {} ids with their targets need N, L > 0 and at "
                                     "least L + 1 ids; the text has {}",
                                     n, length, ids.size()));
    SequenceBatch b{IndexArray::from_shape({n, length}), IndexArray::from_shape({n, length})};
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t start = uniform_index(rng, ids.size() - length);
        std::copy_n(ids.data() + start, length, b.x.data() + i * length);
        std::copy_n(ids.data() + start + 1, length, b.y.data() + i * length);
    }
    return b;
}

StreamBatches::StreamBatches(const std::vector<std::int64_t>& ids, std::size_t n, std::size_t length)
    : ids_(ids), n_(n), length_(length), stream_(ids.size() > 0 && n > 0 ? (ids.size() - 1) / n : 0) {
    if (n == 0 || length == 0 || stream_ == 0)
        throw ValueError(fmt::format("StreamBatches: {} streams read in chunks of {} need N, L > 0 and at least "
                                     "N + 1 ids; the text has {}",
                                     n, length, ids.size()));
}

SequenceBatch StreamBatches::operator[](std::size_t k) const {
    if (k >= size()) throw IndexError(fmt::format("StreamBatches: chunk {} of {}", k, size()));
    const std::size_t start = k * length_, len = std::min(length_, stream_ - start);
    SequenceBatch b{IndexArray::from_shape({n_, len}), IndexArray::from_shape({n_, len})};
    for (std::size_t i = 0; i < n_; ++i) {
        const std::int64_t* src = ids_.data() + i * stream_ + start;
        std::copy_n(src, len, b.x.data() + i * len);
        std::copy_n(src + 1, len, b.y.data() + i * len);
    }
    return b;
}

NgramBaselines::NgramBaselines(const std::vector<std::int64_t>& train, std::size_t vocab)
    : vocab_(vocab), unigram_(vocab, 0.0), bigram_(vocab * vocab, 0.0), row_(vocab, 0.0) {
    if (vocab == 0) throw ValueError("NgramBaselines: an empty vocabulary");
    if (train.size() < 2)
        throw ValueError(fmt::format("NgramBaselines: {} training ids; a bigram needs at least 2", train.size()));
    check(train, "training text");
    for (std::size_t i = 0; i < train.size(); ++i) {
        unigram_[static_cast<std::size_t>(train[i])] += 1;
        if (i > 0) {
            const auto a = static_cast<std::size_t>(train[i - 1]), c = static_cast<std::size_t>(train[i]);
            bigram_[a * vocab_ + c] += 1;
            row_[a] += 1;
        }
    }
    total_ = train.size();
}

void NgramBaselines::check(const std::vector<std::int64_t>& text, const char* what) const {
    for (std::size_t i = 0; i < text.size(); ++i)
        if (text[i] < 0 || static_cast<std::size_t>(text[i]) >= vocab_)
            throw ValueError(
                fmt::format("NgramBaselines: {} id {} at position {} outside the vocabulary [0, {})", what, text[i], i,
                            vocab_));
}

double NgramBaselines::unigram_probability(std::int64_t c) const {
    return (unigram_.at(static_cast<std::size_t>(c)) + 1.0) / (static_cast<double>(total_) + static_cast<double>(vocab_));
}

double NgramBaselines::bigram_probability(std::int64_t previous, std::int64_t c) const {
    const auto a = static_cast<std::size_t>(previous);
    return (bigram_.at(a * vocab_ + static_cast<std::size_t>(c)) + 1.0) / (row_.at(a) + static_cast<double>(vocab_));
}

double NgramBaselines::unigram_bpc(const std::vector<std::int64_t>& text) const {
    if (text.size() < 2) throw ValueError(fmt::format("NgramBaselines: {} ids hold no next-character target", text.size()));
    check(text, "evaluated text");
    double bits = 0;
    for (std::size_t i = 1; i < text.size(); ++i) bits -= std::log2(unigram_probability(text[i]));
    return bits / static_cast<double>(text.size() - 1);
}

double NgramBaselines::bigram_bpc(const std::vector<std::int64_t>& text) const {
    if (text.size() < 2) throw ValueError(fmt::format("NgramBaselines: {} ids hold no next-character target", text.size()));
    check(text, "evaluated text");
    double bits = 0;
    for (std::size_t i = 1; i < text.size(); ++i) bits -= std::log2(bigram_probability(text[i - 1], text[i]));
    return bits / static_cast<double>(text.size() - 1);
}

}  // namespace xg::data
