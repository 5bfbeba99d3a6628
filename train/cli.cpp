#include "train/cli.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <iostream>
#include <new>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>
#include <fmt/std.h>
#include <unistd.h>

namespace xg::train {

namespace po = boost::program_options;
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
    const std::vector<std::string> parts = split_list(text);
    const auto refuse = [&] { return Invalid("expected 'lo,hi' with lo < hi, each " + bound.describe()); };
    if (parts.size() != 2) throw refuse();
    try {
        const double lo = bound(parts[0]), hi = bound(parts[1]);
        if (!(lo < hi)) throw refuse();
        return {lo, hi};
    } catch (const Invalid&) {
        throw refuse();
    }
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

Cli::Cli(std::string program, std::string description, std::uint32_t default_seed)
    : program_(std::move(program)),
      description_(std::move(description)),
      common_("Common options"),
      own_("Options of " + program_) {
    common_.add_options()
        ("help,h", "print this help and exit")
        ("quick", "small sizes that run in a few seconds (the test suite uses this)")
        ("out", po::value<std::string>()->default_value("out/" + program_),
         "directory for the CSV files and plots (created)")
        ("seed", flag::value(flag::Integer<std::uint32_t>{})->default_value(default_seed),
         "random seed in [0, 2^32) (runs reproduce)");
}

void Cli::add_data_flag() {
    own_.add_options()
        ("data", flag::value(flag::Directory{})->default_value(data::default_data_dir()),
         "directory of the four MNIST IDX files (raw or .gz)");
}

data::TrainTest Cli::load_data() const { return data::load_mnist_dir(data_dir()); }

std::optional<CommonOptions> Cli::parse(int argc, const char* const argv[]) {
    po::options_description all;
    all.add(common_);
    if (!own_.options().empty()) all.add(own_);
    try {
        const po::parsed_options parsed = po::command_line_parser(argc, argv).options(all).run();
        po::store(parsed, values_);
        po::notify(values_);
        // po::store ignores words that belong to no flag; here one is a mistake ("--epochs 3 5").
        const std::vector<std::string> stray = po::collect_unrecognized(parsed.options, po::include_positional);
        if (!stray.empty())
            throw ValueError(fmt::format("unexpected argument '{}': {} takes only --flags (see --help)", stray.front(),
                                         program_));
    } catch (const po::error& e) {
        throw ValueError(fmt::format("{} (see --help)", e.what()));
    }
    if (values_.count("help")) {
        std::cout << program_ << ": " << description_ << "\n\nUsage: " << program_ << " [options]\n\n" << all << "\n";
        return std::nullopt;
    }
    CommonOptions common;
    common.quick = values_.count("quick") > 0;
    common.out = values_["out"].as<std::string>();
    common.seed = values_["seed"].as<std::uint32_t>();
    std::error_code error;
    std::filesystem::create_directories(common.out, error);
    if (error) throw IoError(fmt::format("cannot create --out directory {}: {}", common.out, error.message()));
    return common;
}

data::Dataset first_samples(const data::Dataset& set, std::size_t n, std::string_view flag) {
    if (n > set.size())
        throw ValueError(fmt::format("--{} {}: the data has only {} samples", flag, n, set.size()));
    return data::take(set, n);
}

std::string verdict_line(std::string_view claim, std::string_view observed, bool agrees) {
    return fmt::format("expected: {} | this run: {}: {}", claim, observed, agrees ? "agrees" : "disagrees");
}

bool verdict(std::string_view claim, std::string_view observed, bool agrees, std::ostream& out) {
    out << verdict_line(claim, observed, agrees) << '\n';
    return agrees;
}

bool verdict(std::string_view claim, std::string_view observed, bool agrees) {
    return verdict(claim, observed, agrees, std::cout);
}

int guarded_main(std::string_view program, const std::function<int()>& body) {
    const auto fail = [&](std::string message) {
        std::replace(message.begin(), message.end(), '\n', ' ');  // one line, whatever the message
        std::cout.flush();
        fmt::print(stderr, "{}: error: {}\n", program, message);
        return 1;
    };
    try {
        return body();
    } catch (const std::bad_alloc&) {
        // The library refuses the sizes it can check (MultiLayerNet, Linear); this is the rest.
        return fail("out of memory: the sizes asked for need more memory than this machine can give (std::bad_alloc)");
    } catch (const std::exception& e) {
        return fail(e.what());
    } catch (...) {
        return fail("unknown exception");
    }
}

}  // namespace xg::train
