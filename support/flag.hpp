#pragma once
// Typed command-line flags for Boost.Program_options, each checked where it is parsed:
//
//     cli.options().add_options()
//         ("epochs", flag::value(flag::Integer<std::size_t>{1, 100'000})->default_value(12), "epochs")
//         ("dropout", flag::value(flag::Real{.min = 0, .max = 1, .max_open = true}), "ratio in [0, 1)")
//         ("hidden", flag::value(flag::ListOf{flag::Integer<std::size_t>{1, 100'000}}), "sizes, e.g. 256,128");
//
// A parser (Integer, Real, Choice, ...) turns a flag's text into its value or throws Invalid with
// the reason; Program_options adds the flag's name while storing it, so the message reads
//     the argument ('-1') for option '--batch-size' is invalid: expected an integer in [1, 100000]
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::support {

namespace flag {

namespace po = boost::program_options;

// A flag's value rejected by one of the parsers below. Program_options adds the flag's name as it
// stores the value, and Cli::parse turns it into a ValueError.
class Invalid : public po::error_with_option_name {
public:
    explicit Invalid(std::string reason);
    const std::string& reason() const { return reason_; }

private:
    std::string reason_;
};

// An integer in [min, max]. Read as a signed 64-bit number whatever Int is, so "-1" is -1 and out
// of range, never 2^64 - 1 as Program_options' own unsigned parsing makes it.
template <class Int>
struct Integer {
    Int min = std::numeric_limits<Int>::min();
    Int max = std::numeric_limits<Int>::max();
    Int operator()(const std::string& text) const;
};

// A finite number in a range; min_open / max_open exclude the bound: {.min = 0, .max = 1,
// .max_open = true} is [0, 1). NaN and infinities are always refused.
struct Real {
    double min = -std::numeric_limits<double>::infinity();
    double max = std::numeric_limits<double>::infinity();
    bool min_open = false;
    bool max_open = false;
    double operator()(const std::string& text) const;
    std::string describe() const;  // "a finite number in [0, 1)"
};

// "lo,hi": two Reals with lo < hi.
struct Interval {
    Real bound;
    std::pair<double, double> operator()(const std::string& text) const;
};

// One of `names`, in any case; the value is the name as listed.
struct Choice {
    std::vector<std::string> names;
    std::string operator()(const std::string& text) const;
};

// A value the library parses itself (nn::Init::parse, nn::parse_activation): its xg::Error becomes
// the reason, so the library's list of accepted values is the only one.
template <class T>
struct ParsedBy {
    std::function<T(std::string_view)> parse;
    T operator()(const std::string& text) const;
};
template <class T>
ParsedBy(T (*)(std::string_view)) -> ParsedBy<T>;

// One or more comma-separated values, each read by `item`: ListOf{Integer<std::size_t>{1, 100}}
// reads "256,128". An empty list or item ("", "256,,128") is refused.
template <class Item>
struct ListOf {
    Item item;
    auto operator()(const std::string& text) const -> std::vector<decltype(item(text))>;
};

// An existing directory.
struct Directory {
    std::string operator()(const std::string& text) const;
};

// A file the program will write later (a checkpoint): its folder must exist and be writable now,
// so a typo fails at once rather than after the first epoch. "" means no file.
struct FileToWrite {
    std::string operator()(const std::string& text) const;
};

// A flag's value semantic for Program_options, whose parsing step runs `parse` on the flag's
// text: a value that `parse` refuses fails inside po::store, which names the flag. (Not a
// po::typed_value: that one needs operator>> for T even when it never uses it.)
template <class T>
class Checked : public po::value_semantic_codecvt_helper<char>, public po::typed_value_base {
public:
    explicit Checked(std::function<T(const std::string&)> parse) : parse_(std::move(parse)) {}

    // The value when the flag is not given, and how --help shows it.
    Checked* default_value(T value, std::string text) {
        default_ = std::move(value);
        default_text_ = std::move(text);
        return this;
    }
    Checked* default_value(T value)
        requires fmt::is_formattable<T>::value
    {
        std::string text = fmt::format("{}", value);
        return default_value(std::move(value), std::move(text));
    }

    std::string name() const override { return default_ ? "arg (=" + default_text_ + ")" : "arg"; }
    unsigned min_tokens() const override { return 1; }
    unsigned max_tokens() const override { return 1; }
    bool is_composing() const override { return false; }
    bool is_required() const override { return false; }
    bool apply_default(boost::any& store) const override {
        if (default_) store = *default_;
        return default_.has_value();
    }
    void notify(const boost::any&) const override {}
    const std::type_info& value_type() const override { return typeid(T); }

protected:
    void xparse(boost::any& store, const std::vector<std::string>& tokens) const override {
        po::validators::check_first_occurrence(store);  // "--epochs 3 --epochs 4" is a mistake
        const std::string& text = po::validators::get_single_string(tokens);
        try {
            store = parse_(text);
        } catch (Invalid& e) {
            e.set_substitute("value", text);
            throw;
        }
    }

private:
    std::function<T(const std::string&)> parse_;
    std::optional<T> default_;
    std::string default_text_;
};

// The one way the programs declare a flag with a value: flag::value(parser) where po::value<T>()
// would stand, e.g. flag::value(flag::Real{.min = 0, .min_open = true})->default_value(0.01).
template <class Parser>
auto value(Parser parser) {
    using T = std::invoke_result_t<const Parser&, const std::string&>;
    return new Checked<T>(std::move(parser));
}

// Reads a whole signed integer ("12", "-3"); nullopt for anything else ("1e3", "12 ", "", too large).
std::optional<long long> parse_integer(const std::string& text);

template <class Int>
Int Integer<Int>::operator()(const std::string& text) const {
    static_assert(std::is_integral_v<Int> && sizeof(Int) <= sizeof(long long));
    const std::optional<long long> v = parse_integer(text);
    if (!v || std::cmp_less(*v, min) || std::cmp_greater(*v, max))
        throw Invalid("expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return static_cast<Int>(*v);
}

template <class T>
T ParsedBy<T>::operator()(const std::string& text) const {
    try {
        return parse(text);
    } catch (const xg::Error& e) {
        throw Invalid(e.what());
    }
}

// The comma-separated parts of `text`, none of them empty; Invalid otherwise.
std::vector<std::string> split_list(const std::string& text);

template <class Item>
auto ListOf<Item>::operator()(const std::string& text) const -> std::vector<decltype(item(text))> {
    std::vector<decltype(item(text))> values;
    for (const std::string& part : split_list(text)) {
        try {
            values.push_back(item(part));
        } catch (const Invalid& e) {
            throw Invalid("item '" + part + "': " + e.reason());
        }
    }
    return values;
}

}  // namespace flag

}  // namespace xg::support
