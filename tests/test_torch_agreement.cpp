// Every op case against PyTorch: tests/data/torch_ops.npz holds torch's inputs, output and input
// gradients (of sum(out * gout)) for each op case, by name (written by scripts/torch-fixtures,
// which needs python3-torch; this test does not). Values and gradients must agree to a relative
// 1e-10 in float64, and the fixture and the op case list must name the same cases.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include <fmt/format.h>

#include "fixtures.hpp"
#include "op_cases.hpp"

#ifndef XGT_DATA_DIR
#error "tests/meson.build defines XGT_DATA_DIR, the folder of the committed fixtures"
#endif

namespace {

using A = xg::Array<double>;
using xgt::agrees;

// One case's arrays: "in0", "in1", ..., "out", "gout", "grad0", ...
using Entry = std::map<std::string, A>;

std::map<std::string, Entry> load_fixture() {
    std::map<std::string, Entry> cases;
    for (auto& [key, array] : xg::nn::load_npz<double>(std::string(XGT_DATA_DIR) + "/torch_ops.npz")) {
        const auto slash = key.rfind('/');
        BOOST_REQUIRE_MESSAGE(slash != std::string::npos, "fixture entry without a case name: " << key);
        cases[key.substr(0, slash)][key.substr(slash + 1)] = std::move(array);
    }
    return cases;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_agreement)

BOOST_AUTO_TEST_CASE(every_op_case_agrees_with_pytorch) {
    const auto fixture = load_fixture();
    std::set<std::string> listed;
    for (const auto& c : xgt::op_cases()) {
        listed.insert(c.name);
        const auto it = fixture.find(c.name);
        if (it == fixture.end()) {
            BOOST_ERROR(c.name << ": no PyTorch reference (add it to scripts/torch_fixtures/ and run scripts/torch-fixtures)");
            continue;
        }
        const Entry& e = it->second;
        std::vector<xgt::V> xs;
        for (std::size_t i = 0; e.count("in" + std::to_string(i)); ++i) xs.emplace_back(e.at("in" + std::to_string(i)), true);
        BOOST_TEST_CONTEXT(c.name) {
            BOOST_REQUIRE_EQUAL(xs.size(), c.shapes.size());
            const xgt::V y = c.f(xs);
            std::string why;
            BOOST_TEST(agrees(y.data(), e.at("out"), why), c.name << " output: " << why);
            y.backward(xgt::V(e.at("gout")));
            for (std::size_t i = 0; i < xs.size(); ++i) {
                const A g = xs[i].has_grad() ? A(xs[i].grad().data()) : A(xt::zeros_like(xs[i].data()));
                BOOST_TEST(agrees(g, e.at("grad" + std::to_string(i)), why), c.name << " gradient of input " << i << ": " << why);
            }
        }
    }
    for (const auto& [name, entry] : fixture)
        BOOST_TEST(listed.count(name) == 1, name << ": in the fixture but not in tests/op_cases.cpp");
}

BOOST_AUTO_TEST_SUITE_END()
