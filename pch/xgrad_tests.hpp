// Precompiled header of the unit tests (tests/meson.build: cpp_pch), force-included into each
// test file: Boost.Test, xgrad.hpp (with xtensor) and the standard headers the tests share.
// tests/main.cpp defines BOOST_TEST_MODULE before including Boost.Test, so it is compiled
// without this header (its own small target).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>
#include <fmt/format.h>
#include <xtensor/xmath.hpp>
#include <xtensor/xrandom.hpp>
#include <xtensor/xview.hpp>

#include "xgrad.hpp"
