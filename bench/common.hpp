#pragma once
// What every benchmark binary shares, framework-free (the libtorch peer includes it too): the
// model's sizes, the fixed random data and initial weights (so xgrad and libtorch train the very
// same network on the very same batch), timing by medians, /proc/self/status, and the output
// format: one "key value" line per figure, which scripts/bench collects.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <malloc.h>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <ctime>
#include <vector>

namespace bench {

// 784-100-100-100-100-10, ReLU between the affine layers.
inline const std::vector<std::size_t> layer_sizes = {784, 100, 100, 100, 100, 10};
inline constexpr std::size_t n_layers = 5;
inline constexpr double sgd_lr = 0.01;
inline constexpr double adam_lr = 1e-3;
inline constexpr std::uint64_t data_seed = 20261123;
inline constexpr std::uint64_t weight_seed = 42;

// Inputs uniform in [0, 1) (like pixel intensities), row-major (batch, 784).
template <class T>
std::vector<T> inputs(std::size_t batch) {
    std::mt19937_64 gen(data_seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<T> x(batch * layer_sizes.front());
    for (T& v : x) v = static_cast<T>(u(gen));
    return x;
}

inline std::vector<std::int64_t> labels(std::size_t batch) {
    std::mt19937_64 gen(data_seed + 1);
    std::uniform_int_distribution<std::int64_t> u(0, static_cast<std::int64_t>(layer_sizes.back()) - 1);
    std::vector<std::int64_t> y(batch);
    for (auto& v : y) v = u(gen);
    return y;
}

// He initialisation, N(0, 2 / fan_in), of layer l's weight stored (in, out) row-major, as xgrad
// holds it (libtorch's Linear holds the transpose). Biases start at zero.
template <class T>
std::vector<T> he_weight(std::size_t l) {
    const std::size_t in = layer_sizes[l], out = layer_sizes[l + 1];
    std::mt19937_64 gen(weight_seed + l);
    std::normal_distribution<double> n(0.0, std::sqrt(2.0 / static_cast<double>(in)));
    std::vector<T> w(in * out);
    for (T& v : w) v = static_cast<T>(n(gen));
    return w;
}

using Clock = std::chrono::steady_clock;

// This thread's CPU time in microseconds. Steps are timed with it: everything runs in the calling
// thread (single-threaded BLAS, torch::set_num_threads(1)), so it equals wall time on an idle
// machine, and it does not count the time other processes hold the core on a shared one. Page
// faults and system calls made for the step are included (they are CPU time of this thread).
inline double cpu_us() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Timing {
    double cpu_us;   // median CPU time of one call
    double wall_us;  // median wall time of one call
};

// Runs `fn` `warmup` times, then times single calls until both `min_reps` calls and `budget_s`
// seconds are reached (or `max_reps` calls): the medians per call, in microseconds.
template <class F>
Timing median_us(F&& fn, int warmup, int min_reps, double budget_s, int max_reps = 100000) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> cpu, wall;
    const auto start = Clock::now();
    while (static_cast<int>(cpu.size()) < max_reps) {
        const double c0 = cpu_us();
        const auto t0 = Clock::now();
        fn();
        const auto t1 = Clock::now();
        cpu.push_back(cpu_us() - c0);
        wall.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        if (static_cast<int>(cpu.size()) >= min_reps && std::chrono::duration<double>(t1 - start).count() >= budget_s)
            break;
    }
    return {median(std::move(cpu)), median(std::move(wall))};
}

// Several bodies timed in turns so that they see the same machine: on a shared one, a burst of
// load then slows all of them rather than one. Each turn runs one body `block` times after one
// untimed call, so that every timed call finds the caches as a training loop leaves them (its own
// weights and buffers, not the previous body's). Medians per body.
template <class F>
std::vector<Timing> interleaved_median_us(const std::vector<F>& fns, int block, int warmup, int min_reps,
                                          double budget_s) {
    for (int i = 0; i < warmup; ++i)
        for (const F& f : fns) f();
    std::vector<std::vector<double>> cpu(fns.size()), wall(fns.size());
    const auto start = Clock::now();
    for (int rep = 0;; rep += block) {
        for (std::size_t j = 0; j < fns.size(); ++j) {
            fns[j]();
            for (int b = 0; b < block; ++b) {
                const double c0 = cpu_us();
                const auto t0 = Clock::now();
                fns[j]();
                const auto t1 = Clock::now();
                cpu[j].push_back(cpu_us() - c0);
                wall[j].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
            }
        }
        if (rep + block >= min_reps && std::chrono::duration<double>(Clock::now() - start).count() >= budget_s) break;
    }
    std::vector<Timing> out;
    for (std::size_t j = 0; j < fns.size(); ++j) out.push_back({median(cpu[j]), median(wall[j])});
    return out;
}

// For very cheap bodies (a tiny op): medians over blocks of `block` calls, per call.
template <class F>
Timing median_us_blocked(F&& fn, int block, int warmup_blocks, int min_blocks, double budget_s) {
    const Timing t = median_us(
        [&] {
            for (int i = 0; i < block; ++i) fn();
        },
        warmup_blocks, min_blocks, budget_s);
    return {t.cpu_us / block, t.wall_us / block};
}

// glibc returns freed memory to the kernel when the free space at the top of the heap exceeds a
// threshold that it adapts to the largest mmapped block freed so far, and it mmaps blocks above
// another such threshold. A training step frees most of what it allocated, so whether every step
// then pays page faults for its large arrays (measured: +25% on a batch-128 xgrad step, and the
// same hazard exists for libtorch) depends on what the program happened to allocate and free
// before. The timing modes of both peers fix both thresholds so that the figures do not depend
// on that accident; the memory modes keep glibc's defaults.
inline void stable_heap() {
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

// A field of /proc/self/status in kB ("VmHWM", "VmRSS"); -1 if absent.
inline long status_kb(std::string_view field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() && line[field.size()] == ':')
            return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
    return -1;
}

inline void emit(std::string_view key, double value) {
    std::printf("%.*s %.6g\n", static_cast<int>(key.size()), key.data(), value);
    std::fflush(stdout);
}

// "<key>.us" (CPU time, the figure compared) and "<key>.wall_us".
inline void emit(const std::string& key, Timing t) {
    emit(key + ".us", t.cpu_us);
    emit(key + ".wall_us", t.wall_us);
}

inline std::string key(std::string_view framework, std::string_view dtype, std::string_view opt,
                       std::size_t batch) {
    return std::string(framework) + "." + std::string(dtype) + "." + std::string(opt) + ".b" + std::to_string(batch);
}

// Time budget per measured figure; XGRAD_BENCH_QUICK=1 shortens everything (smoke runs).
inline double budget_s() { return std::getenv("XGRAD_BENCH_QUICK") ? 0.05 : 0.6; }
inline bool quick() { return std::getenv("XGRAD_BENCH_QUICK") != nullptr; }

// ---- command-line words ----
// The benchmarks take positional words (mode, dtype, BATCH, STEPS), checked here: a bad one ends
// the program with one line naming it and status 1, as a bad flag does in the examples. Not
// Boost.Program_options like the examples' support::Cli: the libtorch peer shares this header and
// links nothing of xgrad's.

struct ArgError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// `text` as a whole integer in [min, max] ("-5", "1e3", "12x" and "99999999999999999999" are refused).
inline long integer_arg(std::string_view name, std::string_view text, long min, long max) {
    long v = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (error != std::errc() || end != text.data() + text.size() || v < min || v > max)
        throw ArgError(std::string(name) + ": expected an integer in [" + std::to_string(min) + ", " +
                       std::to_string(max) + "], got '" + std::string(text) + "'");
    return v;
}

// `text` if it is one of `choices`.
inline std::string_view choice_arg(std::string_view name, std::string_view text,
                                   std::initializer_list<std::string_view> choices) {
    std::string listed;
    for (const std::string_view c : choices) {
        if (c == text) return text;
        listed += (listed.empty() ? "" : ", ") + std::string(c);
    }
    throw ArgError(std::string(name) + ": expected one of " + listed + ", got '" + std::string(text) + "'");
}

// Runs main's body; a bad command line or any other exception becomes "<program>: error: ..." on
// stderr and status 1 (never std::terminate's abort).
inline int guarded_main(const char* program, const std::function<int()>& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return 1;
    }
}

}  // namespace bench
