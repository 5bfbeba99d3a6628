#pragma once
// expect_error<E>(f, {"fragment", ...}): f must throw E (or a subclass) whose message holds every
// fragment; a test of an error path that names what it must name.
#include <boost/test/unit_test.hpp>

#include <initializer_list>
#include <string>

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

}  // namespace xgt
