// Precompiled header of the examples (examples/meson.build: cpp_pch), force-included into each
// one: xgrad.hpp (with xtensor), the examples' support headers (Boost.Program_options), fmt and
// the standard headers. The examples are one-file programs, so their objects are compiled in one
// target (xgrad_example_objects) to share it.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xtensor/xio.hpp>

#include "xgrad.hpp"
#include "support/cli.hpp"
#include "support/plot.hpp"
#include "support/side_by_side.hpp"
#include "support/smooth.hpp"
#include "train/csv.hpp"
