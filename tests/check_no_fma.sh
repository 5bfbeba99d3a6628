#!/usr/bin/env bash
# The adaptive rules' AVX2 and AVX-512 loops (optim/simd_rules.cpp: Adam, AdaGrad, RMSProp)
# promise the bits of the scalar rules. A CPU without AVX-512 cannot run those loops to check
# them, so this reads the compiled code instead: no fused multiply-add may appear in any of them
# (a fused a * b + c rounds once, the rules twice).
#   tests/check_no_fma.sh LIBRARY   (libxgrad.a or .so; exit 77 = skipped off x86-64)
set -euo pipefail
lib=$1
[ "$(uname -m)" = x86_64 ] || { echo "not x86-64: no AVX loops to check"; exit 77; }
# Each function of the library whose (mangled) name places it in the avx2 or avx512 namespace.
listing=$(objdump -d --no-show-raw-insn "$lib" |
  awk '/^[0-9a-f]+ <.*(4avx2|6avx512)(4adam|7adagrad|7rmsprop).*>:$/ { keep = 1; print; next } /^$/ { keep = 0 } keep')
functions=$(grep -c '>:$' <<<"$listing" || true)
if [ "$functions" -lt 12 ]; then  # three rules, float and double, two instruction sets
  echo "FAIL: expected 12 SIMD rule loops (avx2:: and avx512:: adam, adagrad, rmsprop) in $lib, found $functions functions"
  exit 1
fi
if fused=$(grep -E '\bvf(n?m(add|sub)|maddsub|msubadd)[0-9]*[ps][sd]\b' <<<"$listing"); then
  echo "FAIL: fused multiply-add in the rules' SIMD loops (build without -ffp-contract=off?):"
  echo "$fused" | head -n 5
  exit 1
fi
echo "ok: $functions SIMD rule loops in $(basename "$lib"), none with a fused multiply-add"
