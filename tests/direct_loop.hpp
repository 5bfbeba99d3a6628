#pragma once
// Turns the AVX-512 ConvNet loops (ops/conv_direct.hpp: the direct convolution and the 2x2 max
// pool) off for one scope, so that the portable code runs where they would (on a CPU without
// AVX-512 it runs everywhere anyway).
#include "ops/conv_direct.hpp"

namespace xgt {

struct DirectLoopOff {
    DirectLoopOff() { xg::direct_conv::set_enabled(false); }
    ~DirectLoopOff() { xg::direct_conv::set_enabled(true); }
    DirectLoopOff(const DirectLoopOff&) = delete;
    DirectLoopOff& operator=(const DirectLoopOff&) = delete;
};

}  // namespace xgt
