// Every op case, gradchecked in float64 (and gradgradchecked where twice differentiable).
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "op_cases.hpp"

namespace bdata = boost::unit_test::data;
using namespace xgt;

BOOST_AUTO_TEST_SUITE(gradcheck_every_op)

BOOST_DATA_TEST_CASE(first_derivative, bdata::make(op_cases()), c) {
    for (unsigned seed : {1u, 2u}) {
        const auto report = xg::gradcheck(c.f, random_inputs(c, seed));
        BOOST_TEST(report.ok, c.name << " seed " << seed << "\n" << report.str());
        for (const auto& r : report.inputs) BOOST_TEST(r.max_abs_error < 1e-6);
    }
}

BOOST_DATA_TEST_CASE(second_derivative, bdata::make(op_cases()), c) {
    if (!c.twice_differentiable) return;
    const auto report = xg::gradgradcheck(c.f, random_inputs(c, 3));
    BOOST_TEST(report.ok, c.name << "\n" << report.str());
}

BOOST_AUTO_TEST_SUITE_END()
