#!/usr/bin/env bash
# Adam's AVX2 and AVX-512 loops (optim/adam.cpp) promise the bits of the scalar rule. A CPU
# without AVX-512 cannot run that loop to check it, so this reads the compiled code instead: no
# fused multiply-add may appear in either loop (a fused a * b + c rounds once, the rule twice).
#   tests/check_no_fma.sh LIBRARY   (libxgrad.a or .so; exit 77 = skipped off x86-64)
set -euo pipefail
lib=$1
[ "$(uname -m)" = x86_64 ] || { echo "not x86-64: no AVX loops to check"; exit 77; }
# Each function of the library whose (mangled) name places it in the avx2 or avx512 namespace.
listing=$(objdump -d --no-show-raw-insn "$lib" |
  awk '/^[0-9a-f]+ <.*(4avx2|6avx512)4rule.*>:$/ { keep = 1; print; next } /^$/ { keep = 0 } keep')
functions=$(grep -c '>:$' <<<"$listing" || true)
if [ "$functions" -lt 4 ]; then  # float and double, two instruction sets
  echo "FAIL: expected Adam's SIMD loops (avx2::rule, avx512::rule) in $lib, found $functions functions"
  exit 1
fi
if fused=$(grep -E '\bvf(n?m(add|sub)|maddsub|msubadd)[0-9]*[ps][sd]\b' <<<"$listing"); then
  echo "FAIL: fused multiply-add in Adam's SIMD loops (build without -ffp-contract=off?):"
  echo "$fused" | head -n 5
  exit 1
fi
echo "ok: $functions SIMD Adam loops in $(basename "$lib"), none with a fused multiply-add"
