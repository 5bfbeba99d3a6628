#!/usr/bin/env bash
# The main job across two hosts: check_dist_hosts.sh NETNS_HOSTS MPIRUN TRAIN
# Runs `train --quick` on 2 ranks on this machine (shared memory) and on 2 "hosts"
# (scripts/netns-hosts: network namespaces, the ranks started through Open MPI's rsh launcher
# and talking TCP over a bridge, as between machines). With 2 ranks every sum is a + b, the same
# bits whichever rank adds, so the two runs must print the same final line; rank 0 alone prints
# and writes, and the gradients must have crossed the link. Skipped (77) where namespaces cannot
# be made (not root).
set -uo pipefail
netns_hosts=$1 mpirun=$2 train=$3
if ! "$netns_hosts" --probe; then
  echo "skipped: cannot make network namespaces here (root or CAP_NET_ADMIN needed)"
  exit 77
fi
# Flags out of range are refused before anything is made (exit 2, the flag named).
for bad in "--hosts 1" "--hosts 17" "--hosts x" "--slots 0" "--slots 65"; do
  # shellcheck disable=SC2086
  msg=$("$netns_hosts" $bad -- -np 2 true 2>&1); rc=$?
  [ "$rc" -eq 2 ] && grep -q -- "${bad% *}" <<<"$msg" || { echo "FAIL: netns-hosts $bad: exit $rc, '$msg'"; exit 1; }
done
rc=0; "$netns_hosts" --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: netns-hosts --bogus: exit $rc (want 2, the usage)"; exit 1; }
root=(); [ "$(id -u)" -ne 0 ] || root=(--allow-run-as-root)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OPENBLAS_NUM_THREADS=1
local_run=$(timeout 600 "$mpirun" --oversubscribe "${root[@]}" -np 2 -x OPENBLAS_NUM_THREADS=1 "$train" --quick \
  --out "$out/local" 2>&1) || { echo "FAIL: train on 2 local ranks failed:"; echo "$local_run" | tail -5; exit 1; }
hosts_run=$(timeout 600 "$netns_hosts" --hosts 2 -- -np 2 -x OPENBLAS_NUM_THREADS=1 "$train" --quick \
  --out "$out/hosts" 2>&1) || { echo "FAIL: train on 2 hosts failed:"; echo "$hosts_run" | tail -8; exit 1; }
a=$(grep -E '^final test accuracy' <<<"$local_run")
b=$(grep -E '^final test accuracy' <<<"$hosts_run")
[ -n "$a" ] && [ -n "$b" ] || { echo "FAIL: no final line (local: '$a', hosts: '$b')"; exit 1; }
[ "$(grep -c 'final test accuracy' <<<"$hosts_run")" -eq 1 ] || { echo "FAIL: more than rank 0 printed the final line"; exit 1; }
grep -q 'ranks: 2' <<<"$hosts_run" || { echo "FAIL: the run on 2 hosts did not train on 2 ranks"; exit 1; }
[ -f "$out/hosts/metrics.csv" ] || { echo "FAIL: the run on 2 hosts wrote no metrics.csv"; exit 1; }
# "final test accuracy: A (train B) after N epochs, Ts of training": all but the time must agree.
strip() { sed -E 's/, [0-9.]+s of training//' <<<"$1"; }
[ "$(strip "$a")" = "$(strip "$b")" ] || { echo "FAIL: local '$a' but on 2 hosts '$b'"; exit 1; }
received=$(grep -oE 'host 1 \(10\.213\.0\.2\) sent [0-9]+ bytes, received [0-9]+' <<<"$hosts_run" | awk '{print $NF}')
[ -n "$received" ] && [ "$received" -gt 1000000 ] ||
  { echo "FAIL: host 1 received '${received:-nothing}' bytes (the gradients did not cross the link)"; exit 1; }
echo "ok: on 2 hosts over TCP as on 2 local ranks ($(strip "$b")); host 1 received $received bytes"
