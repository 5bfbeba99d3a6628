#include "train/cli.hpp"

#include <iostream>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/std.h>

#include "graph/error.hpp"

namespace xg::train {

namespace po = boost::program_options;

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
        ("seed", po::value<long long>()->default_value(default_seed), "random seed in [0, 2^32) (runs reproduce)");
}

std::optional<CommonOptions> Cli::parse(int argc, const char* const argv[]) {
    po::options_description all;
    all.add(common_);
    if (!own_.options().empty()) all.add(own_);
    try {
        po::store(po::parse_command_line(argc, argv, all), values_);
        po::notify(values_);
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
    // Parsed wide and checked here: Boost would wrap "-1" silently into a huge unsigned value.
    const long long seed = values_["seed"].as<long long>();
    if (seed < 0 || seed > 0xffffffffLL)
        throw ValueError(fmt::format("--seed must be in [0, 4294967295], got {}", seed));
    common.seed = static_cast<std::uint32_t>(seed);
    std::error_code error;
    std::filesystem::create_directories(common.out, error);
    if (error) throw IoError(fmt::format("cannot create --out directory {}: {}", common.out, error.message()));
    return common;
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
    try {
        return body();
    } catch (const std::exception& e) {
        std::cout.flush();
        fmt::print(stderr, "{}: error: {}\n", program, e.what());
        return 1;
    }
}

}  // namespace xg::train
