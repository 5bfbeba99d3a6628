#!/usr/bin/env bash
# The main job on 2 MPI ranks trains to the accuracy of one process:
#   check_dist_train.sh MPIRUN TRAIN
# Runs `train --quick` alone and under `mpirun -np 2` (the same global batches, split over the
# ranks; batch norm's statistics are each rank's half's, so the two differ by a little) and wants
# the final test accuracies within 0.02 of each other, and rank 0 alone printing.
set -uo pipefail
mpirun=$1 train=$2
root=(); [ "$(id -u)" -ne 0 ] || root=(--allow-run-as-root)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OPENBLAS_NUM_THREADS=1
one=$("$train" --quick --out "$out/one" 2>&1) || { echo "FAIL: train alone failed:"; echo "$one" | tail -5; exit 1; }
two=$(timeout 600 "$mpirun" --oversubscribe "${root[@]}" -np 2 -x OPENBLAS_NUM_THREADS=1 "$train" --quick --out "$out/two" 2>&1) ||
  { echo "FAIL: train on 2 ranks failed:"; echo "$two" | tail -5; exit 1; }
a=$(grep -oE 'final test accuracy: [0-9.]+' <<<"$one" | awk '{print $4}')
b=$(grep -oE 'final test accuracy: [0-9.]+' <<<"$two" | awk '{print $4}')
lines=$(grep -c 'final test accuracy' <<<"$two")
[ -n "$a" ] && [ -n "$b" ] || { echo "FAIL: no final accuracy (alone: '$a', 2 ranks: '$b')"; exit 1; }
[ "$lines" -eq 1 ] || { echo "FAIL: $lines ranks printed the final line (rank 0 alone should)"; exit 1; }
grep -q 'ranks: 2' <<<"$two" || { echo "FAIL: the 2-rank run did not train on 2 ranks"; exit 1; }
[ -f "$out/two/metrics.csv" ] || { echo "FAIL: the 2-rank run wrote no metrics.csv"; exit 1; }
if awk -v a="$a" -v b="$b" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= 0.02)}'; then
  echo "ok: final test accuracy $a alone, $b on 2 ranks"
else
  echo "FAIL: final test accuracy $a alone, $b on 2 ranks (more than 0.02 apart)"; exit 1
fi
