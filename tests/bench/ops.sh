#!/usr/bin/env bash
# Operations benchmark (issue 12): event latency (init killed -> the exited
# event's callback in a subscriber, through the run root's journal: median
# and p99) and log throughput (a container writing SIZE MiB of 100-byte lines
# to stdout, until all of it is in the log file), hcs side by side with
# podman + conmon's k8s-file log driver on the same busybox rootfs.
# Needs root, gcc, podman, runc (scripts/bootstrap --bench); podman runs runc
# (crun refuses hybrid cgroup hosts such as this one).
#   tests/bench/ops.sh [BUILD_DIR] [LATENCY_RUNS] [LOG_MIB] [LOG_RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
runs=${2:-200}
mib=${3:-1024}
log_runs=${4:-3}
for t in gcc podman python3; do command -v $t >/dev/null || { echo "ops.sh: $t missing" >&2; exit 1; }; done

work=$(mktemp -d /tmp/hcs-bench.XXXXXX)
# Both run roots on tmpfs (production: /run/hcs; podman's runroot /run/containers),
# and both logs in them.
export HCS_RUN_ROOT
HCS_RUN_ROOT=$(mktemp -d /dev/shm/hcs-bench-run.XXXXXX)
prun=$(mktemp -d /dev/shm/hcs-bench-podman.XXXXXX)
podman=(podman --root "$work/podman-root" --runroot "$prun" --log-level error)
cleanup() {
  "${podman[@]}" rm -f -a >/dev/null 2>&1 || true
  "${podman[@]}" system reset -f >/dev/null 2>&1 || true
  rm -rf "$work" "$HCS_RUN_ROOT" "$prun"
  find /sys/fs/cgroup -maxdepth 2 -type d -name hcs-bench -exec rmdir {} + 2>/dev/null || true
}
trap cleanup EXIT

tests/fixtures/make-busybox-rootfs.sh "$work/rootfs" >/dev/null
gcc -O2 -o "$work/ops_bench" tests/bench/ops_bench.c -Isrc/include -L"$build" -lhcs -ljansson -lpthread \
  -Wl,-rpath,"$build"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

read -r lat_med lat_p99 < <("$work/ops_bench" "$work/root" "$work/rootfs" latency "$runs")
echo "event latency (init killed -> exited callback), $runs runs: median ${lat_med} us, p99 ${lat_p99} us"

# The container cats a file of 100-byte lines (busybox `yes | head` alone
# tops out near 180 MiB/s here, below both loggers); the file is read once
# first, so it comes from the page cache.
python3 - "$work/rootfs/lines.txt" "$mib" <<'PY'
import sys
line = b"a" * 99 + b"\n"
chunk = line * 10486  # ~1 MiB
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(chunk)
PY
cat "$work/rootfs/lines.txt" >/dev/null
cmd="cat /lines.txt"
hcs_t=() podman_t=() podman_raw=()
for i in $(seq "$log_runs"); do
  read -r secs bytes < <("$work/ops_bench" "$work/root" "$work/rootfs" log "$mib")
  hcs_t+=("$secs")
  hcs_bytes=$bytes
  rm -f "$prun/bench.log"
  # Detached and waited for (attached, podman would also copy the output to
  # the terminal); the time includes podman's container set-up, measured
  # alone below and taken off.
  t0=$(date +%s%N)
  "${podman[@]}" run -d --name logbench --runtime runc --network none --ulimit nofile=1024:1024 \
    --ulimit nproc=1024:1024 --log-driver k8s-file --log-opt path="$prun/bench.log" --rootfs "$work/rootfs" \
    /bin/sh -c "$cmd" >/dev/null
  "${podman[@]}" wait logbench >/dev/null
  t1=$(date +%s%N)
  podman_bytes=$(stat -c %s "$prun/bench.log" 2>/dev/null || echo -1)
  "${podman[@]}" rm -f logbench >/dev/null
  t2=$(date +%s%N)
  "${podman[@]}" run -d --name logbase --runtime runc --network none --ulimit nofile=1024:1024 \
    --ulimit nproc=1024:1024 --log-driver k8s-file --log-opt path="$prun/base.log" --rootfs "$work/rootfs" \
    /bin/true >/dev/null
  "${podman[@]}" wait logbase >/dev/null
  t3=$(date +%s%N)
  "${podman[@]}" rm -f logbase >/dev/null
  podman_t+=("$(echo "scale=3; ($t1 - $t0 - ($t3 - $t2)) / 1000000000" | bc)")
  podman_raw+=("$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)")
done
h=$(printf '%s\n' "${hcs_t[@]}" | median)
p=$(printf '%s\n' "${podman_t[@]}" | median)
echo "log throughput, ${mib} MiB to stdout, median of $log_runs:"
echo "  hcs:    ${h} s ($(echo "scale=0; $mib / $h" | bc) MiB/s), log ${hcs_bytes} bytes  [runs: ${hcs_t[*]}]"
echo "  podman: ${p} s ($(echo "scale=0; $mib / $p" | bc) MiB/s), log ${podman_bytes} bytes  [runs: ${podman_t[*]}; with set-up: ${podman_raw[*]}]"
echo "  hcs/podman throughput: $(echo "scale=2; $p / $h" | bc)x"
