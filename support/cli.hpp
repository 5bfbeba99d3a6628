#pragma once
// What every example's command line shares (Boost.Program_options), and the verdict line that
// compares a run's numbers with what the book says.
//
//     xg::support::Cli cli("optimizer_compare_naive", "Six update rules on f(x, y) = x^2/20 + y^2.");
//     cli.options().add_options()
//         ("steps", flag::value(flag::Integer<long>{1, 100'000})->default_value(30), "update steps");
//     auto common = cli.parse(argc, argv);   // nullopt after --help
//     if (!common) return 0;
//
// Every flag is checked where Program_options parses it (flag::value, support/flag.hpp), so a bad
// value never reaches the program: `--batch-size -1` fails as
//     the argument ('-1') for option '--batch-size' is invalid: expected an integer in [1, 100000]
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <ostream>
#include <string>
#include <string_view>
#include <typeinfo>

#include <boost/program_options.hpp>

#include "data/dataset.hpp"
#include "dist/context.hpp"
#include "support/flag.hpp"

namespace xg::support {

struct CommonOptions {
    bool quick = false;              // --quick: small sizes, for the test suite
    std::filesystem::path out;       // --out: created; default out/<program name>
    std::uint32_t seed = 0;          // --seed, in [0, 2^32): any std::mt19937 seed
};

class Cli {
public:
    Cli(std::string program, std::string description, std::uint32_t default_seed = 42);

    // Add the program's own flags here before parse(), with flag::value(...).
    boost::program_options::options_description& options() { return own_; }

    // --data DIR, for the programs that read MNIST-style data: an existing directory, by default
    // Debian's Fashion-MNIST. load_data() reads it after parse().
    void add_data_flag();
    data::TrainTest load_data() const;
    std::string data_dir() const { return get<std::string>("data"); }

    // Parses argv. Prints usage and returns nullopt for --help; creates the --out directory.
    // Throws ValueError naming the flag for an unknown flag, a bad value or a stray argument (the
    // programs take none), IoError naming the directory if --out cannot be created (guarded_main
    // prefixes the program's name).
    std::optional<CommonOptions> parse(int argc, const char* const argv[]);

    // The parsed value of one of the program's own flags, of the type its parser gives (a
    // programming error otherwise: std::logic_error naming the flag).
    template <class V>
    V get(const std::string& flag) const {
        const auto it = values_.find(flag);
        if (it == values_.end() || it->second.empty() || it->second.value().type() != typeid(V))
            throw std::logic_error("Cli::get(\"" + flag + "\"): no such flag with a value of the type asked for");
        return it->second.as<V>();
    }
    bool given(const std::string& flag) const { return values_.count(flag) > 0 && !values_[flag].defaulted(); }
    // The flag's value when given on the command line, else `otherwise` (e.g. a --quick size).
    template <class V>
    V get_or(const std::string& flag, V otherwise) const {
        return given(flag) ? get<V>(flag) : otherwise;
    }

    const std::string& program() const { return program_; }

private:
    std::string program_;
    std::string description_;
    boost::program_options::options_description common_;
    boost::program_options::options_description own_;
    boost::program_options::variables_map values_;
};

// The first n samples of `set`, for the flag that asked for them: ValueError naming the flag when
// the set has fewer (a larger --train-samples is a mistake, not a request for all of them).
data::Dataset first_samples(const data::Dataset& set, std::size_t n, std::string_view flag);

// "expected: <claim> | this run: <observed>: agrees" (or "disagrees"). The caller computes
// `agrees` from the run's numbers; the line only reports it.
std::string verdict_line(std::string_view claim, std::string_view observed, bool agrees);
// Prints verdict_line to `out` and returns `agrees`.
bool verdict(std::string_view claim, std::string_view observed, bool agrees, std::ostream& out);
bool verdict(std::string_view claim, std::string_view observed, bool agrees);  // to stdout

// Runs an example's body, turning an exception into "<program>: error: <message>" on stderr and
// exit status 1, so a bad flag, a missing file or an allocation the machine refuses ends with one
// clear line instead of an abort.
// With `world` (a program started by mpirun), a rank that fails ends the whole job
// (dist::Context::abort) instead of leaving the other ranks waiting in a collective.
int guarded_main(std::string_view program, const std::function<int()>& body, const dist::Context* world = nullptr);

}  // namespace xg::support
