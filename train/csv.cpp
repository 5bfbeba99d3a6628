#include "train/csv.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>
#include <fmt/std.h>

#include "graph/error.hpp"

namespace xg::train {

namespace {

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
std::string quote_if_needed(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string quoted = "\"";
    for (char c : s) {
        if (c == '"') quoted += '"';
        quoted += c;
    }
    return quoted + '"';
}

}  // namespace

std::string Cell::str() const {
    struct Printer {
        std::string operator()(std::int64_t n) const { return fmt::format("{}", n); }
        std::string operator()(double x) const { return fmt::format("{}", x); }  // shortest round-trip
        std::string operator()(const std::string& s) const { return quote_if_needed(s); }
    };
    return std::visit(Printer{}, value_);
}

std::filesystem::path temp_path_beside(const std::filesystem::path& path) {
    return path.parent_path() / fmt::format(".{}.{}.tmp", path.filename().string(), ::getpid());
}

CsvWriter::CsvWriter(std::filesystem::path path, std::vector<std::string> header)
    : path_(std::move(path)), temp_path_(temp_path_beside(path_)), columns_(header.size()) {
    if (header.empty()) throw ValueError(fmt::format("CsvWriter {}: the header has no columns", path_));
    out_.open(temp_path_, std::ios::out | std::ios::trunc);
    if (!out_)
        throw IoError(fmt::format("cannot write {} (temporary {}): {}", path_, temp_path_, std::strerror(errno)));
    std::vector<Cell> names(header.begin(), header.end());
    row(names);
}

CsvWriter::~CsvWriter() {
    if (closed_) return;
    out_.close();
    std::error_code ignored;  // a destructor must not throw; the file is garbage either way
    std::filesystem::remove(temp_path_, ignored);
}

CsvWriter& CsvWriter::row(const std::vector<Cell>& cells) {
    if (closed_) throw ValueError(fmt::format("CsvWriter {}: row() after close()", path_));
    if (cells.size() != columns_)
        throw ValueError(fmt::format("CsvWriter {}: row has {} cells, the header {} columns", path_, cells.size(),
                                     columns_));
    for (std::size_t i = 0; i < cells.size(); ++i) {
        if (i > 0) out_ << ',';
        out_ << cells[i].str();
    }
    out_ << '\n';
    check_stream("write");
    return *this;
}

CsvWriter& CsvWriter::end_block() {
    out_ << '\n';
    check_stream("write");
    return *this;
}

void CsvWriter::close() {
    if (closed_) return;
    out_.close();
    check_stream("close");
    std::error_code error;
    std::filesystem::rename(temp_path_, path_, error);
    if (error) throw IoError(fmt::format("cannot write {}: rename from {} failed: {}", path_, temp_path_, error.message()));
    closed_ = true;
}

void CsvWriter::check_stream(const char* what) const {
    if (!out_) throw IoError(fmt::format("cannot write {}: {} of {} failed (disk full?)", path_, what, temp_path_));
}

}  // namespace xg::train
