// The entry point of the MPI tests (tests/test_dist.cpp), run by meson as
// `mpirun -np 2 xgrad_dist_tests` and `-np 3`: every rank runs every case (the cases are
// collectives), rank 0 alone prints Boost.Test's report, so the suite counts each case once per run.
#define BOOST_TEST_MODULE xgrad_dist
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "dist_fixture.hpp"

namespace xgt {
const xg::dist::Context* dist_context = nullptr;
}

int main(int argc, char** argv) {
    xg::dist::Context ctx(argc, argv);
    xgt::dist_context = &ctx;
    std::vector<char*> args;
    std::string quiet = "--report_level=no";
    for (int i = 0; i < argc; ++i)
        if (ctx.is_main() || std::string(argv[i]).rfind("--report_level", 0) != 0) args.push_back(argv[i]);
    if (!ctx.is_main()) args.push_back(quiet.data());
    const int status = boost::unit_test::unit_test_main(&init_unit_test, static_cast<int>(args.size()), args.data());
    // A rank that failed may have left the others waiting in a collective: end them all.
    if (status != 0 && ctx.world_size() > 1) ctx.abort("the tests failed on this rank", status);
    return status;
}
