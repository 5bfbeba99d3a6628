#pragma once
// The MPI tests' world (made by dist_main.cpp before any case runs).
#include "dist/context.hpp"

namespace xgt {
extern const xg::dist::Context* dist_context;
inline const xg::dist::Context& world() { return *dist_context; }
}  // namespace xgt
