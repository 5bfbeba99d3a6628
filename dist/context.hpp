#pragma once
// The MPI world a program runs in (Open MPI): started once per process, as RAII.
//
//     int main(int argc, char** argv) {
//         return xg::dist::run(argc, argv, [&](xg::dist::Context& ctx) {
//             if (ctx.is_main()) fmt::print("{} ranks\n", ctx.world_size());
//             ...
//             return 0;
//         });
//     }
//
// Started by `mpirun -np N program`, the program is one of N ranks; started alone, it is a world
// of one (MPI's singleton start), so the same binary serves both. MPI is initialised for one
// thread to call it (MPI_THREAD_FUNNELED): dist:: calls come from the thread that made the Context.
// Make it before the program starts other threads: it sets an environment variable for Open MPI
// (the shared-memory transport's two-copy path, docs/distributed.md), and setenv is not safe
// beside other threads' getenv.
//
// A rank that fails must not leave the others waiting forever in a collective: run() prints the
// exception with the rank's number and calls MPI_Abort, which ends every rank of the job; a
// Context destroyed while an exception unwinds through it does the same.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "graph/error.hpp"

namespace xg::dist {

// An MPI call that failed, or a misuse of the dist API (a second Context, a rank out of range,
// ranks that disagree on what they reduce); the message names the call and the values.
struct DistError : Error {
    using Error::Error;
};

class Context {
public:
    // Initialises MPI (DistError if MPI is already initialised or was finalised: one Context per
    // process).
    Context(int& argc, char**& argv);
    Context();  // without the program's arguments
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    int rank() const { return rank_; }
    int world_size() const { return world_size_; }
    bool is_main() const { return rank_ == 0; }
    // "rank 1 of 3" (for messages), "" in a world of one.
    std::string where() const;

    // Blocking collectives on the world's communicator, called by every rank in the same order.
    void barrier() const;
    // Element-wise sums (max) of `values` over the ranks, in place. Every rank passes as many
    // values; DistError names both counts otherwise (they are compared first).
    void all_reduce_sum(std::span<double> values) const;
    void all_reduce_max(std::span<double> values) const;
    double all_reduce_sum(double value) const;
    // `bytes` from rank `root` to every rank.
    void broadcast(std::span<std::byte> bytes, int root) const;

    // Prints "xgrad: <where>: <message>" on stderr and ends the whole job (MPI_Abort) with
    // status `code`; in a world of one, exits with it.
    [[noreturn]] void abort(std::string_view message, int code = 1) const;

private:
    void start(int* argc, char*** argv);
    void check_count(std::size_t n, const char* what) const;
    void all_reduce(std::span<double> values, bool max, const char* what) const;

    int rank_ = 0;
    int world_size_ = 1;
    int uncaught_at_start_ = 0;
};

// Runs `body` on a new Context. An exception from it is printed as
// "<program>: rank R of N: error: <what>" and ends every rank (Context::abort); in a world of
// one it is printed as "<program>: error: <what>" and run returns 1.
int run(int& argc, char**& argv, const std::function<int(Context&)>& body);

}  // namespace xg::dist
