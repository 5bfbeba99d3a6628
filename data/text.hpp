#pragma once
// Text corpora for character-level language models: a text read from a file (or Debian's fortunes
// concatenated), a byte-level vocabulary, a fixed train/validation split, mini-batches of
// (N, L) windows of ids with their next-character targets, and the unigram and bigram baselines
// (add-one smoothing) in bits per character.
//
// "Character" means byte: a UTF-8 text is modelled byte by byte (an accented letter is two
// symbols), which needs no decoding and never fails on invalid UTF-8. The vocabulary holds the
// bytes that occur in the text, in increasing byte order, so the same text always gives the same
// ids (about 100 symbols for English prose).
#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ops/ops.hpp"

namespace xg::data {

// The default bound on a text read by read_text_file or load_fortunes (the fortunes take 2.6 MB).
inline constexpr std::size_t default_max_text_bytes = std::size_t{1} << 30;  // 1 GiB

// The whole file as bytes. IoError naming the file when it is missing, not a regular file,
// unreadable, empty, or larger than max_bytes.
std::string read_text_file(const std::string& path, std::size_t max_bytes = default_max_text_bytes);

// Where Debian's fortunes package installs its text files.
std::string default_fortunes_dir();
// The fortune text files of `dir`: the regular files (symbolic links followed) whose names end in
// neither ".dat" (fortune's index files) nor ".u8" (links to the same texts), sorted by name.
// IoError naming the directory when it does not exist or holds no such file (the message says to
// install the fortunes package).
std::vector<std::string> fortune_files(const std::string& dir = default_fortunes_dir());
// The fortune files' texts concatenated in that order. IoError naming a file that cannot be read
// or is empty, or the total passing max_bytes.
std::string load_fortunes(const std::string& dir = default_fortunes_dir(),
                          std::size_t max_bytes = default_max_text_bytes);

// Byte-level vocabulary: the distinct bytes of a text, in increasing order, as ids 0..size()-1.
class Vocabulary {
public:
    Vocabulary() = default;
    // ValueError for an empty text.
    explicit Vocabulary(std::string_view text);
    // The vocabulary of exactly these bytes (checkpoints store the bytes); ValueError if empty or
    // with a repeated byte.
    static Vocabulary from_symbols(std::string_view symbols);

    std::size_t size() const { return symbols_.size(); }
    bool contains(unsigned char c) const { return ids_[c] >= 0; }
    // The id of a byte; ValueError naming the byte (printable, or as \xHH) if not in the vocabulary.
    std::int64_t id(unsigned char c) const;
    unsigned char symbol(std::int64_t id) const;  // IndexError outside [0, size())
    const std::string& symbols() const { return symbols_; }

    std::vector<std::int64_t> encode(std::string_view text) const;
    std::string decode(const std::vector<std::int64_t>& ids) const;

private:
    std::string symbols_;
    std::array<std::int16_t, 256> ids_ = filled();
    static std::array<std::int16_t, 256> filled() {
        std::array<std::int16_t, 256> a{};
        a.fill(-1);
        return a;
    }
};

// The fixed train/validation split: the ids cut into `blocks` pieces of equal length (the last
// takes the remainder), every `validation_every`-th piece (pieces validation_every - 1,
// 2 * validation_every - 1, ...) to validation, the rest to training, each side concatenated in
// the text's order. Spreading validation over the whole text keeps it from being one topic (the
// fortunes files are by subject). The defaults hold out 10 pieces of 100: 10%.
struct TextSplitOptions {
    std::size_t blocks = 100;
    std::size_t validation_every = 10;
};
struct TextSplit {
    std::vector<std::int64_t> train, validation;
};
// ValueError unless blocks >= validation_every >= 2 and there are at least `blocks` ids.
TextSplit split_text(const std::vector<std::int64_t>& ids, TextSplitOptions options = {});

// (N, L) inputs and their next-character targets: y[i][t] is the id following x[i][t].
struct SequenceBatch {
    IndexArray x;  // (N, L)
    IndexArray y;  // (N, L)
    // y flattened row by row (N * L,): what softmax_cross_entropy takes with logits (N * L, V).
    Labels targets() const;
};

// N windows of L ids starting at uniformly random positions (uniform_index, so a seed gives the
// same windows everywhere), the targets one position further. ValueError naming the sizes when
// the ids hold fewer than L + 1 or N or L is 0.
SequenceBatch random_windows(const std::vector<std::int64_t>& ids, std::size_t n, std::size_t length,
                             std::mt19937_64& rng);

// Truncated back-propagation through time: the ids cut into N contiguous streams of
// S = (size - 1) / N inputs each (stream i starts at i * S; its targets run one further, so every
// position 1..N*S is a target exactly once; the last (size - 1) - N * S ids are never targets), read
// in consecutive chunks of L (the last chunk shorter when L does not divide S). Row i of chunk k
// continues row i of chunk k - 1: a recurrent model carries its state from one to the next.
//
//     data::StreamBatches chunks(split.train, 32, 64);
//     for (std::size_t k = 0; k < chunks.size(); ++k) { auto b = chunks[k]; ... }
//
// ValueError naming the sizes when N or L is 0 or a stream would be empty (size - 1 < N).
class StreamBatches {
public:
    StreamBatches(const std::vector<std::int64_t>& ids, std::size_t n, std::size_t length);
    StreamBatches(std::vector<std::int64_t>&&, std::size_t, std::size_t) = delete;  // would dangle

    std::size_t size() const { return (stream_ + length_ - 1) / length_; }  // chunks per pass
    std::size_t streams() const { return n_; }
    std::size_t stream_length() const { return stream_; }  // S
    std::size_t targets() const { return n_ * stream_; }   // over one pass
    SequenceBatch operator[](std::size_t k) const;         // IndexError for k >= size()

private:
    const std::vector<std::int64_t>& ids_;
    std::size_t n_, length_, stream_;
};

// Add-one (Laplace) smoothed counts of the training ids over a vocabulary of `vocab` symbols:
// unigram p(c) = (count(c) + 1) / (n + V), bigram p(c | a) = (count(a c) + 1) / (count(a .) + V),
// where count(a .) counts the bigrams starting with a.
class NgramBaselines {
public:
    // ValueError for vocab == 0, fewer than 2 training ids or an id outside [0, vocab).
    NgramBaselines(const std::vector<std::int64_t>& train, std::size_t vocab);
    double unigram_probability(std::int64_t c) const;
    double bigram_probability(std::int64_t previous, std::int64_t c) const;
    // Bits per character on `text`'s next-character targets (positions 1..size-1, the targets a
    // language model predicts): -mean log2 p. ValueError for fewer than 2 ids or an id outside the
    // vocabulary.
    double unigram_bpc(const std::vector<std::int64_t>& text) const;
    double bigram_bpc(const std::vector<std::int64_t>& text) const;
    std::size_t vocab() const { return vocab_; }

private:
    void check(const std::vector<std::int64_t>& text, const char* what) const;
    std::size_t vocab_, total_ = 0;
    std::vector<double> unigram_;  // counts
    std::vector<double> bigram_;   // counts, V x V
    std::vector<double> row_;      // count(a .)
};

}  // namespace xg::data
