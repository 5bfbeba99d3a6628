#!/usr/bin/env bash
# ops/vector_math_avx2.cpp is compiled with -mavx2 into a library that runs on any x86-64 CPU. An
# inline function it defines that other files define too (compiled without AVX2) would be one
# symbol, and the linker could keep the AVX2 copy for every caller: an illegal instruction on a
# CPU without AVX2. So each weak symbol of its object must be its own, in xg::vmath::avx2 or
# taking an AVX2 batch type; and, as the same source's baseline build gives the same bits, no
# fused multiply-add may appear in it.
#   tests/check_avx2_symbols.sh LIBRARY   (the static library built from that file)
set -euo pipefail
lib=$1
symbols=$(nm -C --defined-only "$lib" | awk '$2 ~ /^[WVu]$/ { $1 = ""; $2 = ""; print substr($0, 3) }')
foreign=$(grep -v -e 'xg::vmath::avx2::' -e 'xsimd::avx2>' -e '^DW\.ref\.__gxx_personality_v0$' <<<"$symbols" || true)
if [ -n "$foreign" ]; then
  echo "FAIL: weak symbols of $(basename "$lib") that other files may define without AVX2:"
  echo "$foreign" | head -n 10
  exit 1
fi
if fused=$(objdump -d --no-show-raw-insn "$lib" | grep -E '\bvf(n?m(add|sub)|maddsub|msubadd)[0-9]*[ps][sd]\b'); then
  echo "FAIL: fused multiply-add in $(basename "$lib") (its bits would differ from the baseline build's):"
  echo "$fused" | head -n 5
  exit 1
fi
n=$(grep -c . <<<"$symbols" || true)
echo "ok: $n weak symbols in $(basename "$lib"), all its own; no fused multiply-add"
