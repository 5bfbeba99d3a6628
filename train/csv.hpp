#pragma once
// CSV files for experiment results, written so that a reader (gnuplot, a script, a person
// tailing the directory) never sees half a file: rows go to an AtomicFile (graph/atomic_file.hpp),
// which close() publishes.
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "graph/atomic_file.hpp"

namespace xg::train {

// One CSV value: a number (printed shortest round-trip, so reading it back gives the same double)
// or a string (quoted only when it contains a comma, quote or line break), kept as its text.
class Cell {
public:
    template <class N>
        requires(std::is_arithmetic_v<N> && !std::is_same_v<N, bool> && !std::is_same_v<N, char>)
    Cell(N n) {  // NOLINT(google-explicit-constructor): rows are written as {"SGD", 3, 0.5}
        if constexpr (std::is_integral_v<N>)
            text_ = number_text(static_cast<std::int64_t>(n));
        else
            text_ = number_text(static_cast<double>(n));
    }
    Cell(const std::string& s) : text_(field_text(s)) {}  // NOLINT(google-explicit-constructor)
    Cell(const char* s) : text_(field_text(s)) {}         // NOLINT(google-explicit-constructor)

    const std::string& str() const { return text_; }

private:
    static std::string number_text(std::int64_t n);
    static std::string number_text(double x);
    static std::string field_text(const std::string& s);
    std::string text_;
};

class CsvWriter {
public:
    // Opens the temporary file of an AtomicFile for `path` and writes the header row. Throws IoError naming the
    // path if it cannot be created.
    CsvWriter(std::filesystem::path path, std::vector<std::string> header);
    // Without close() (e.g. an exception unwound past the writer) the temporary file is removed
    // and `path` is left as it was: an unfinished table is never published.
    ~CsvWriter();
    CsvWriter(const CsvWriter&) = delete;
    CsvWriter& operator=(const CsvWriter&) = delete;

    // One row; throws ValueError naming the file if it has not one cell per header column.
    CsvWriter& row(const std::vector<Cell>& cells);
    // An empty line. gnuplot reads it as the end of one scan line of a grid (needed for contours
    // of gridded data); CSV readers that skip blank lines are unaffected.
    CsvWriter& end_block();
    // Publishes the table under `path` (AtomicFile::commit); throws IoError naming it on failure.
    void close();

    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    std::size_t columns_;
    AtomicFile file_;
    bool closed_ = false;
};

}  // namespace xg::train
