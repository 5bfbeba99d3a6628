#include "dist/context.hpp"
#include "dist/mpi_check.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <mpi.h>

namespace xg::dist {
void detail::check_mpi(int status, std::string_view call) {
    if (status == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(status, text, &length);
    throw DistError(fmt::format("{} failed: {}", call, std::string_view(text, static_cast<std::size_t>(length))));
}

namespace {

int as_count(std::size_t n, std::string_view call) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw DistError(fmt::format("{}: {} elements is more than MPI's int count can carry", call, n));
    return static_cast<int>(n);
}

// Between ranks on one machine, Open MPI 4's shared-memory transport (vader) moves a large message
// by default with one copy through the kernel (CMA: process_vm_readv), in fragments of 32 KB.
// Its other path, two copies through a shared buffer, measured twice as fast for the messages
// DataParallel sends (2 ranks, MPI_Allreduce of floats: 944 KB 199 -> 97 us, 4 MB 995 -> 487 us,
// 16 MB 5.75 -> 2.68 ms; MPI_Iallreduce alike), and fragments of 256 KB (a quarter of the
// transport's default 4 MB segment) another quarter faster (944 KB 95-120 -> 74-78 us, 1.7 MB
// 189-197 -> 140-146 us, 4 MB 485 -> 360 us; 64 KB and MPI_Iallreduce unchanged; the MLP's
// 2-rank step 1.21-1.24 -> 1.17-1.20 ms; docs/distributed.md). So both are the defaults here.
// Only defaults: a choice made in the environment or with mpirun's --mca (which reaches the
// ranks as these variables) stands; one in an mca-params.conf file is overridden. Open MPI 5
// moved single copy into a framework of its own (smsc), which this leaves alone.
void tune_shared_memory_transport() {
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
    setenv("OMPI_MCA_btl_vader_max_send_size", "262144", 0);
}

}  // namespace

Context::Context(int& argc, char**& argv) { start(&argc, &argv); }
Context::Context() { start(nullptr, nullptr); }

void Context::start(int* argc, char*** argv) {
    int initialised = 0, finalised = 0;
    MPI_Initialized(&initialised);
    MPI_Finalized(&finalised);
    if (initialised || finalised)
        throw DistError("dist::Context: MPI is already initialised or finalised: one Context per process");
    tune_shared_memory_transport();
    int provided = 0;
    detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    // Errors come back as codes (turned into DistError) instead of MPI's default abort, so they
    // reach the caller with the call named.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
    uncaught_at_start_ = std::uncaught_exceptions();
}

Context::~Context() {
    // Unwinding past the Context: this rank will not take part in the collectives the others
    // wait in, so finalising (itself a collective in Open MPI) would hang the job.
    if (std::uncaught_exceptions() > uncaught_at_start_ && world_size_ > 1) {
        std::fprintf(stderr, "xgrad: %s: an exception is leaving the program; ending the job\n", where().c_str());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
}

std::string Context::where() const {
    return world_size_ > 1 ? fmt::format("rank {} of {}", rank_, world_size_) : std::string();
}

void Context::barrier() const { detail::check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

void Context::check_count(std::size_t n, const char* what) const {
    if (world_size_ == 1) return;
    // Ranks that reduce different counts would corrupt memory or hang: compare first.
    long long counts[2] = {static_cast<long long>(n), -static_cast<long long>(n)};
    detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD), what);
    if (counts[0] != -counts[1])
        throw DistError(fmt::format("{}: the ranks pass different counts (from {} to {}; {} here)", what, -counts[1],
                                    counts[0], where()));
}

void Context::all_reduce(std::span<double> values, bool max, const char* what) const {
    check_count(values.size(), what);
    if (world_size_ == 1) return;
    detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), as_count(values.size(), what), MPI_DOUBLE,
                                    max ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD),
                      fmt::format("MPI_Allreduce ({})", what));
}

void Context::all_reduce_sum(std::span<double> values) const { all_reduce(values, false, "all_reduce_sum"); }
void Context::all_reduce_max(std::span<double> values) const { all_reduce(values, true, "all_reduce_max"); }

double Context::all_reduce_sum(double value) const {
    all_reduce_sum(std::span<double>(&value, 1));
    return value;
}

void Context::broadcast(std::span<std::byte> bytes, int root) const {
    if (root < 0 || root >= world_size_)
        throw DistError(fmt::format("broadcast: root {} is not a rank of a world of {}", root, world_size_));
    check_count(bytes.size(), "broadcast");
    if (world_size_ == 1) return;
    // Large payloads go in pieces: MPI counts are ints.
    constexpr std::size_t piece = std::size_t{1} << 30;
    for (std::size_t at = 0; at < bytes.size(); at += piece) {
        const std::size_t n = std::min(piece, bytes.size() - at);
        detail::check_mpi(MPI_Bcast(bytes.data() + at, static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
}

void Context::abort(std::string_view message, int code) const {
    if (world_size_ > 1) {
        std::fprintf(stderr, "xgrad: %s: %.*s\n", where().c_str(), static_cast<int>(message.size()), message.data());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    } else {
        std::fprintf(stderr, "xgrad: %.*s\n", static_cast<int>(message.size()), message.data());
    }
    std::exit(code);
}

int run(int& argc, char**& argv, const std::function<int(Context&)>& body) {
    const std::string program = argc > 0 && argv && argv[0] ? argv[0] : "xgrad";
    const std::string name = program.substr(program.find_last_of('/') + 1);
    Context ctx(argc, argv);
    try {
        return body(ctx);
    } catch (const std::exception& e) {
        if (ctx.world_size() == 1) {
            std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
            return 1;
        }
        std::fprintf(stderr, "%s: %s: error: %s\n", name.c_str(), ctx.where().c_str(), e.what());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 1;
}

}  // namespace xg::dist
