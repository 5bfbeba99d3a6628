#pragma once
// expect_error<E>(f, {"fragment", ...}): f must throw E (or a subclass) whose message holds every
// fragment; a test of an error path that names what it must name.
#include <boost/test/unit_test.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "graph/error.hpp"

namespace xgt {

// Each fragment in `what` (tests/expect_error.cpp): one BOOST_TEST per fragment.
void expect_fragments(const std::string& what, const std::vector<std::string>& fragments);

// call(f) must throw E. Compiled once per error type, not once per test's lambda: the suite has
// hundreds of expect_error calls, and a try block with its checks in each cost build time.
template <class E>
void expect_thrown(void (*call)(void*), void* f, const std::vector<std::string>& fragments) {
    try {
        call(f);
        BOOST_ERROR("no exception thrown");
    } catch (const E& e) {
        expect_fragments(e.what(), fragments);
    }
}

template <class E, class F>
void expect_error(F&& f, const std::vector<std::string>& fragments) {
    using Callable = std::remove_reference_t<F>;
    expect_thrown<E>([](void* p) { (*static_cast<Callable*>(p))(); }, const_cast<void*>(static_cast<const void*>(&f)),
                     fragments);
}

}  // namespace xgt
