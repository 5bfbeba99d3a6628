#include "support/cli.hpp"

#include <algorithm>
#include <iostream>
#include <new>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/std.h>
#include <unistd.h>

namespace xg::support {

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
    // Checked now: the results are written at the end, after all the work.
    if (::access(common.out.c_str(), W_OK) != 0)
        throw IoError(fmt::format("--out directory {} is not writable", common.out));
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

int guarded_main(std::string_view program, const std::function<int()>& body, const dist::Context* world) {
    const auto fail = [&](std::string message) {
        std::replace(message.begin(), message.end(), '\n', ' ');  // one line, whatever the message
        std::cout.flush();
        if (world && world->world_size() > 1) world->abort(fmt::format("{}: error: {}", program, message));
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

}  // namespace xg::support
