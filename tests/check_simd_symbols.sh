#!/usr/bin/env bash
# ops/vector_math_avx2.cpp and ops/vector_math_avx512.cpp are compiled with -mavx2 (-mavx512f ...)
# into libraries that run on any x86-64 CPU. An inline function such a file defines that other
# files define too (compiled without those instructions) would be one symbol, and the linker could
# keep the AVX copy for every caller: an illegal instruction on a CPU without them. So each weak
# symbol of its object must be its own, in xg::vmath::SET or taking that instruction set's batch
# type; and, as the same source's baseline build gives the same bits, no fused multiply-add may
# appear in it. ops/conv_direct_avx512.cpp (namespace xg::direct_conv::avx512) is held to the
# first rule only: its loop fuses multiply-adds on purpose, as BLAS does for the path it replaces.
#   tests/check_simd_symbols.sh LIBRARY SET [NAMESPACE [fma]]
#     LIBRARY: the static library built from that file; SET: avx2 or avx512; NAMESPACE: where its
#     functions live (default xg::vmath, then SET); fma: fused multiply-adds allowed
set -euo pipefail
lib=$1 set=$2 ns=${3:-xg::vmath} fma=${4:-}
case "$set" in
  avx2) arch='xsimd::avx2>' ;;
  avx512) arch='xsimd::avx512bw>' ;;
  *) echo "usage: check_simd_symbols.sh LIBRARY avx2|avx512" >&2; exit 2 ;;
esac
symbols=$(nm -C --defined-only "$lib" | awk '$2 ~ /^[WVu]$/ { $1 = ""; $2 = ""; print substr($0, 3) }')
foreign=$(grep -v -e "$ns::$set::" -e "$arch" -e '^DW\.ref\.__gxx_personality_v0$' <<<"$symbols" || true)
if [ -n "$foreign" ]; then
  echo "FAIL: weak symbols of $(basename "$lib") that other files may define without $set:"
  echo "$foreign" | head -n 10
  exit 1
fi
if [ "$fma" != fma ] &&
  fused=$(objdump -d --no-show-raw-insn "$lib" | grep -E '\bvf(n?m(add|sub)|maddsub|msubadd)[0-9]*[ps][sd]\b'); then
  echo "FAIL: fused multiply-add in $(basename "$lib") (its bits would differ from the baseline build's):"
  echo "$fused" | head -n 5
  exit 1
fi
n=$(grep -c . <<<"$symbols" || true)
echo "ok: $n weak symbols in $(basename "$lib"), all its own$([ "$fma" = fma ] || echo "; no fused multiply-add")"
