#pragma once
// expect_error<E>(f, {"fragment", ...}): f must throw E (or a subclass) whose message holds every
// fragment; a test of an error path that names what it must name. mentions({...}) is the same
// check as a predicate for BOOST_CHECK_EXCEPTION.
#include <boost/test/unit_test.hpp>

#include <initializer_list>
#include <string>
#include <vector>

#include "graph/error.hpp"

namespace xgt {

template <class E, class F>
void expect_error(F&& f, std::initializer_list<std::string> fragments) {
    try {
        f();
        BOOST_ERROR("no exception thrown");
    } catch (const E& e) {
        const std::string msg = e.what();
        for (const auto& frag : fragments)
            BOOST_TEST(msg.find(frag) != std::string::npos, "'" << frag << "' not in: " << msg);
    }
}

inline auto mentions(std::vector<std::string> parts) {
    return [parts = std::move(parts)](const xg::Error& e) {
        const std::string what = e.what();
        bool ok = true;
        for (const auto& p : parts)
            if (what.find(p) == std::string::npos) {
                BOOST_ERROR("'" << p << "' not in: " << what);
                ok = false;
            }
        return ok;
    };
}

}  // namespace xgt
