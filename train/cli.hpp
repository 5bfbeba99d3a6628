#pragma once
// What every example's command line shares (Boost.Program_options), and the verdict line that
// compares a run's numbers with what the book says.
//
//     xg::train::Cli cli("optimizer_compare_naive", "Six update rules on f(x, y) = x^2/20 + y^2.");
//     cli.options().add_options()("steps", po::value<long>()->default_value(30), "update steps");
//     auto common = cli.parse(argc, argv);   // nullopt after --help
//     if (!common) return 0;
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <boost/program_options.hpp>

namespace xg::train {

struct CommonOptions {
    bool quick = false;              // --quick: small sizes, for the test suite
    std::filesystem::path out;       // --out: created; default out/<program name>
    std::uint32_t seed = 0;          // --seed, in [0, 2^32): any std::mt19937 seed
};

class Cli {
public:
    Cli(std::string program, std::string description, std::uint32_t default_seed = 42);

    // Add the program's own flags here before parse().
    boost::program_options::options_description& options() { return own_; }

    // Parses argv. Prints usage and returns nullopt for --help; creates the --out directory.
    // Throws ValueError naming the flag for an unknown flag or a bad value, IoError naming the
    // directory if it cannot be created (guarded_main prefixes the program's name).
    std::optional<CommonOptions> parse(int argc, const char* const argv[]);

    // The parsed value of one of the program's own flags.
    template <class V>
    V get(const std::string& flag) const {
        return values_.at(flag).as<V>();
    }
    bool given(const std::string& flag) const { return values_.count(flag) > 0 && !values_[flag].defaulted(); }

    const std::string& program() const { return program_; }

private:
    std::string program_;
    std::string description_;
    boost::program_options::options_description common_;
    boost::program_options::options_description own_;
    boost::program_options::variables_map values_;
};

// "expected: <claim> | this run: <observed>: agrees" (or "disagrees"). The caller computes
// `agrees` from the run's numbers; the line only reports it.
std::string verdict_line(std::string_view claim, std::string_view observed, bool agrees);
// Prints verdict_line to `out` and returns `agrees`.
bool verdict(std::string_view claim, std::string_view observed, bool agrees, std::ostream& out);
bool verdict(std::string_view claim, std::string_view observed, bool agrees);  // to stdout

// Runs an example's body, turning an exception into "<program>: error: <message>" on stderr and
// exit status 1, so a bad flag or a missing file ends with one clear line instead of an abort.
int guarded_main(std::string_view program, const std::function<int()>& body);

}  // namespace xg::train
