// Precompiled header of libxgrad (meson.build: cpp_pch). Never included by a source file: meson
// compiles it once per target and force-includes it into every translation unit of the target.
// Only third-party and standard headers: each TU still includes what it uses, and a change to
// xgrad's own headers does not rebuild the precompiled header. What costs is xtensor: every
// TU would otherwise parse its ~150k lines (about 2.5 s of CPU each).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xsimd/xsimd.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>
#include <xtensor/xtensor.hpp>
