#!/usr/bin/env bash
# Every program refuses a bad command line before doing anything: exit status 1 (not a crash, not
# a run that ignores the mistake), nothing on stdout, and exactly one line on stderr,
# "<program>: error: ...", naming the flag or word that is wrong. Parse-time failures, so the
# whole check takes seconds.
#   tests/check_flags.sh EXE...   (the examples and the benchmarks; each is checked by its name)
# CHECK_FLAGS_TIMEOUT=SECONDS bounds each run (default 120): a mistake not caught starts the work.
set -uo pipefail

declare -A exe
for path in "$@"; do exe[$(basename "$path")]=$path; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
checked=0 failed=0

# refused PROGRAM NAMED ARGS...: running PROGRAM with ARGS must fail as above, the line naming NAMED.
refused() {
  local name=$1 named=$2
  shift 2
  local path=${exe[$name]:-}
  if [ -z "$path" ]; then echo "FAIL: $name was not given to $0"; failed=$((failed + 1)); return; fi
  local status=0
  timeout "${CHECK_FLAGS_TIMEOUT:-120}" "$path" "$@" >"$tmp/stdout" 2>"$tmp/stderr" || status=$?
  local why=""
  if [ "$status" -ne 1 ]; then why="exit status $status, expected 1"
  elif [ -s "$tmp/stdout" ]; then why="it printed to stdout: $(head -c 200 "$tmp/stdout")"
  elif [ "$(wc -l <"$tmp/stderr")" -ne 1 ]; then why="$(wc -l <"$tmp/stderr") lines on stderr, expected 1"
  elif ! grep -q "^$name: error: " "$tmp/stderr"; then why="the line does not start with '$name: error: '"
  elif ! grep -qF -- "$named" "$tmp/stderr"; then why="the line does not name $named"
  fi
  checked=$((checked + 1))
  if [ -n "$why" ]; then
    failed=$((failed + 1))
    echo "FAIL: $name $*: $why"
    sed 's/^/  stderr: /' "$tmp/stderr" | head -n 3
  else
    echo "ok: $name $*: $(cat "$tmp/stderr")"
  fi
}

# The examples. --out goes to a scratch directory in case a mistake were not caught.
examples=(train optimizer_compare_naive weight_init_activation_histogram xor vanishing_gradient
  optimizer_compare_mnist weight_init_compare batch_norm_test overfit_weight_decay overfit_dropout
  hyperparameter_optimization gradient_check convnet char_lm)
for name in "${examples[@]}"; do
  refused "$name" "--seed" --out "$tmp/out" --seed -1
  refused "$name" "--seed" --out "$tmp/out" --seed 4294967296
  refused "$name" "'stray'" --out "$tmp/out" stray
  refused "$name" "--no-such-flag" --out "$tmp/out" --no-such-flag 1
done
refused train --epochs --out "$tmp/out" --epochs 0
refused train --batch-size --out "$tmp/out" --batch-size -1
refused train --batch-size --out "$tmp/out" --batch-size=18446744073709551615
refused train --batch-size --out "$tmp/out" --batch-size 1  # batch norm is on by default
refused train --dropout --out "$tmp/out" --dropout -0.5
refused train --dropout --out "$tmp/out" --dropout nan
refused train --hidden --out "$tmp/out" --hidden ""
refused train --hidden --out "$tmp/out" --hidden 99999999999
refused train --hidden --out "$tmp/out" --hidden 256,,128
refused train --lr --out "$tmp/out" --lr nan
refused train --lr --out "$tmp/out" --lr -1
refused train --lr --out "$tmp/out" --lr inf
refused train --weight-decay --out "$tmp/out" --weight-decay -1
refused train --checkpoint --out "$tmp/out" --checkpoint "$tmp/no-such-folder/c.npz"
refused train --resume --out "$tmp/out" --resume
refused train --optimizer --out "$tmp/out" --optimizer adamax
refused train --schedule --out "$tmp/out" --schedule linear
refused train --activation --out "$tmp/out" --activation swish
refused train --init --out "$tmp/out" --init huge
refused train --train-samples --out "$tmp/out" --train-samples -5
refused train --data --out "$tmp/out" --data "$tmp/no-such-folder"
refused train --batchnorm --out "$tmp/out" --batchnorm maybe
refused train --epochs --out "$tmp/out" --epochs --quick
refused char_lm --model --out "$tmp/out" --model gru
refused char_lm --temperature --out "$tmp/out" --temperature 0
refused char_lm --resume --out "$tmp/out" --resume
refused char_lm "$tmp/no-such-file.txt" --out "$tmp/out" --text "$tmp/no-such-file.txt"
refused optimizer_compare_naive --steps --out "$tmp/out" --steps 0
refused weight_init_activation_histogram --inputs --out "$tmp/out" --inputs 1
refused xor --lr --out "$tmp/out" --lr 0
refused xor --iterations --out "$tmp/out" --iterations -1
refused xor --init-std --out "$tmp/out" --init-std nan
refused xor --restarts --out "$tmp/out" --restarts -1
refused vanishing_gradient --layers --out "$tmp/out" --layers 0
refused vanishing_gradient --units --out "$tmp/out" --units 99999999999
refused vanishing_gradient --activations --out "$tmp/out" --activations relu,swish
refused vanishing_gradient --init --out "$tmp/out" --init autox
refused vanishing_gradient --iterations --out "$tmp/out" --iterations 5
refused optimizer_compare_mnist --optimizers --out "$tmp/out" --optimizers sgd,adamax
refused optimizer_compare_mnist --optimizers --out "$tmp/out" --optimizers ""
refused optimizer_compare_mnist --iterations --out "$tmp/out" --iterations 99
refused optimizer_compare_mnist --window --out "$tmp/out" --window 0
refused optimizer_compare_mnist --hidden-layers --out "$tmp/out" --hidden-layers 0
refused weight_init_compare --level --out "$tmp/out" --level -1
refused weight_init_compare --activation --out "$tmp/out" --activation swish
refused weight_init_compare --lr --out "$tmp/out" --lr -0.01
refused batch_norm_test --scales --out "$tmp/out" --scales 1
refused batch_norm_test --batch-size --out "$tmp/out" --batch-size 1
refused batch_norm_test --train-samples --out "$tmp/out" --train-samples 0
refused overfit_weight_decay --weight-decay --out "$tmp/out" --weight-decay 0
refused overfit_weight_decay --epochs --out "$tmp/out" --epochs 9
refused overfit_weight_decay --test-samples --out "$tmp/out" --test-samples 0
refused overfit_dropout --dropout --out "$tmp/out" --dropout 1
refused overfit_dropout --dropout --out "$tmp/out" --dropout nan
refused hyperparameter_optimization --validation --out "$tmp/out" --validation 1
refused hyperparameter_optimization --lr-range --out "$tmp/out" --lr-range=-2,-6
refused hyperparameter_optimization --wd-range --out "$tmp/out" --wd-range x
refused hyperparameter_optimization --trials --out "$tmp/out" --trials 1
refused gradient_check --h --out "$tmp/out" --h 0
refused gradient_check --samples --out "$tmp/out" --samples 0
refused gradient_check --hidden --out "$tmp/out" --hidden -3
refused convnet --model --out "$tmp/out" --model lenet
refused convnet --epochs --out "$tmp/out" --epochs 0
refused convnet --batch-size --out "$tmp/out" --batch-size 0
refused convnet --lr --out "$tmp/out" --lr nan
refused convnet --init --out "$tmp/out" --init huge
refused convnet --train-eval-samples --out "$tmp/out" --train-eval-samples -1
refused convnet --show --out "$tmp/out" --show 0
refused convnet --weight-decay --out "$tmp/out" --weight-decay -1e-4
refused convnet --shift --out "$tmp/out" --shift 0
refused convnet --shift --out "$tmp/out" --shift 9
refused convnet --shift --out "$tmp/out" --model deep --augment flip --shift 1
refused convnet --schedule --out "$tmp/out" --schedule step
refused convnet --augment --out "$tmp/out" --augment rotate

# Sizes the parser allows but no machine holds (50 layers of 100000 units: 2 TB of weights): the
# library refuses them by name before allocating (after the data is loaded, hence the condition).
if [ -d /usr/share/datasets/fashion-mnist ]; then
  refused train hidden_sizes --out "$tmp/out" --quick --hidden "$(printf '100000,%.0s' {1..49})100000"
  refused convnet --train-samples --out "$tmp/out" --quick --train-samples 60001
fi

# The benchmarks take positional words.
refused mlp_step BATCH run f32 sgd -5 10
refused mlp_step STEPS run f32 sgd 32 1e3
refused mlp_step rule run f32 sgdd 32 10
refused mlp_step dtype time f16
refused mlp_step BATCH time f32 64
refused mlp_step "N: expected an integer in [1001" memory 1000 500
refused mlp_step usage bogus
refused op_overhead "'x'" x
refused batched_matmul usage bogus
refused batched_matmul STEPS run xgrad -5
refused batched_matmul what run nope 5
refused norm usage bogus
refused norm STEPS run ln fused -5
refused norm what run bn nope 5
refused norm op run nope fused 5
refused convnet_step mode bogus simple 32
refused convnet_step model time wide 32
refused convnet_step BATCH time simple 0
refused convnet_step STEPS memory deep 100 -1
refused convnet_step usage time simple
refused seq_step mode bogus lstm
refused seq_step model time gru
refused seq_step STEPS memory lstm 0
refused seq_step STEPS run transformer 1e3
refused seq_step usage time lstm 5
refused seq_step usage memory transformer
refused dist_scaling --model --model lenet
refused dist_scaling --batch --batch 0
refused dist_scaling --batch --batch 1
refused dist_scaling --steps --steps 1e3
refused dist_scaling --bucket-kb --bucket-kb
refused dist_scaling --in-place-kb --in-place-kb -1
refused dist_scaling "'bogus'" bogus

echo "$checked checked, $failed failed"
[ "$failed" -eq 0 ]
