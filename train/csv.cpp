#include "train/csv.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include "graph/error.hpp"

namespace xg::train {

std::string Cell::number_text(std::int64_t n) { return fmt::format("{}", n); }
std::string Cell::number_text(double x) { return fmt::format("{}", x); }  // shortest round-trip

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
std::string Cell::field_text(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string quoted = "\"";
    for (char c : s) {
        if (c == '"') quoted += '"';
        quoted += c;
    }
    return quoted + '"';
}

CsvWriter::CsvWriter(std::filesystem::path path, std::vector<std::string> header)
    : path_(std::move(path)), columns_(header.size()), file_(path_.string()) {
    if (header.empty()) throw ValueError(fmt::format("CsvWriter {}: the header has no columns", path_));
    std::vector<Cell> names(header.begin(), header.end());
    row(names);
}

// Without close() the AtomicFile member removes its temporary: an unfinished table is never
// published.
CsvWriter::~CsvWriter() = default;

CsvWriter& CsvWriter::row(const std::vector<Cell>& cells) {
    if (closed_) throw ValueError(fmt::format("CsvWriter {}: row() after close()", path_));
    if (cells.size() != columns_)
        throw ValueError(fmt::format("CsvWriter {}: row has {} cells, the header {} columns", path_, cells.size(),
                                     columns_));
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
        if (i > 0) line += ',';
        line += cells[i].str();
    }
    line += '\n';
    file_.write(line);
    return *this;
}

CsvWriter& CsvWriter::end_block() {
    file_.write("\n");
    return *this;
}

void CsvWriter::close() {
    if (closed_) return;
    file_.commit();
    closed_ = true;
}

}  // namespace xg::train
