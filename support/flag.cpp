#include "support/flag.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <system_error>

#include <fmt/ranges.h>
#include <fmt/std.h>
#include <unistd.h>

namespace xg::support {

namespace fs = std::filesystem;

namespace flag {

Invalid::Invalid(std::string reason)
    : po::error_with_option_name("the argument ('%value%') for option '%canonical_option%' is invalid: " + reason),
      reason_(std::move(reason)) {}

std::optional<long long> parse_integer(const std::string& text) {
    long long v = 0;
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, v);
    if (error != std::errc() || stop != end) return std::nullopt;
    return v;
}

double Real::operator()(const std::string& text) const {
    double v = 0;
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, v);
    const bool above = min_open ? v > min : v >= min;
    const bool below = max_open ? v < max : v <= max;
    if (error != std::errc() || stop != end || !std::isfinite(v) || !above || !below)
        throw Invalid("expected " + describe());
    return v;
}

std::string Real::describe() const {
    const bool has_min = std::isfinite(min), has_max = std::isfinite(max);
    if (has_min && has_max)
        return fmt::format("a finite number in {}{}, {}{}", min_open ? '(' : '[', min, max, max_open ? ')' : ']');
    if (has_min) return fmt::format("a finite number {} {}", min_open ? ">" : ">=", min);
    if (has_max) return fmt::format("a finite number {} {}", max_open ? "<" : "<=", max);
    return "a finite number";
}

std::pair<double, double> Interval::operator()(const std::string& text) const {
    try {
        const std::vector<std::string> parts = split_list(text);
        if (parts.size() == 2) {
            const double lo = bound(parts[0]), hi = bound(parts[1]);
            if (lo < hi) return {lo, hi};
        }
    } catch (const Invalid&) {
        // refused below, with what the whole interval must be
    }
    throw Invalid("expected 'lo,hi' with lo < hi, each " + bound.describe());
}

std::string Choice::operator()(const std::string& text) const {
    const auto same = [&](const std::string& name) {
        return std::equal(name.begin(), name.end(), text.begin(), text.end(),
                          [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); });
    };
    const auto it = std::find_if(names.begin(), names.end(), same);
    if (it == names.end()) throw Invalid(fmt::format("expected one of {}", fmt::join(names, ", ")));
    return *it;
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
    if (!text.empty() && text.back() == ',') parts.emplace_back();  // getline drops a trailing empty part
    if (parts.empty()) throw Invalid("expected one or more comma-separated values, got none");
    if (std::find(parts.begin(), parts.end(), "") != parts.end())
        throw Invalid("expected comma-separated values, got an empty one");
    return parts;
}

std::string Directory::operator()(const std::string& text) const {
    std::error_code error;
    if (!fs::is_directory(text, error)) throw Invalid("expected an existing directory");
    return text;
}

std::string FileToWrite::operator()(const std::string& text) const {
    if (text.empty()) return text;
    std::error_code error;
    if (fs::is_directory(text, error)) throw Invalid("expected a file name, not a directory");
    const fs::path folder = fs::path(text).has_parent_path() ? fs::path(text).parent_path() : fs::path(".");
    if (!fs::is_directory(folder, error)) throw Invalid(fmt::format("the folder {} does not exist", folder));
    if (::access(folder.c_str(), W_OK) != 0) throw Invalid(fmt::format("the folder {} is not writable", folder));
    return text;
}

}  // namespace flag

}  // namespace xg::support
