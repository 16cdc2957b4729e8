#!/usr/bin/env bash
# Compute benchmark: hcs (libhcs via a C driver, and the `hcs` CLI) side by
# side with crun on the same busybox rootfs, in one run.  Prints medians and
# the ratio hcs/crun.  Needs root, crun, hyperfine (scripts/bootstrap --bench).
#   tests/bench/compute.sh [BUILD_DIR] [RUNS]
# crun refuses hybrid cgroup hosts, so it runs in a mount namespace where the
# cgroup2 mount at /sys/fs/cgroup/unified is unmounted.
# `run` is measured twice: in blocks (hyperfine for crun, then the library),
# and alternating one `crun run` and one library run per iteration in the
# same (crun-compatible) mount namespace.  On a shared machine the load
# drifts, so blocks favour whichever ran in the quieter moment; alternating
# exposes both to the same load (and to each other's asynchronous network
# namespace clean-up).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
runs=${2:-40}
hcs=$build/hcs
for t in crun hyperfine gcc python3; do command -v $t >/dev/null || { echo "compute.sh: $t missing" >&2; exit 1; }; done
[ -x "$hcs" ] || { echo "compute.sh: build hcs first ($hcs)" >&2; exit 1; }

work=$(mktemp -d /tmp/hcs-bench.XXXXXX)
# The run root on tmpfs as in production (/run/hcs), where crun keeps its
# state too (/run/crun); layers and images stay in the state root on disk.
export HCS_RUN_ROOT
HCS_RUN_ROOT=$(mktemp -d /dev/shm/hcs-bench-run.XXXXXX)
cleanup() {
  for id in $(HCS_ROOT=$work/root "$hcs" list --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(s["Id"] for s in json.load(sys.stdin)))' 2>/dev/null); do
    HCS_ROOT=$work/root "$hcs" rm -f "$id" >/dev/null 2>&1 || true
  done
  crun delete -f bench-c >/dev/null 2>&1 || true
  rm -rf "$work" "$HCS_RUN_ROOT"
  find /sys/fs/cgroup -maxdepth 2 -type d -name hcs-bench -exec rmdir {} + 2>/dev/null || true
}
trap cleanup EXIT

tests/fixtures/make-busybox-rootfs.sh "$work/bundle/rootfs"
gcc -O2 -o "$work/compute_bench" tests/bench/compute_bench.c -Isrc/include -L"$build" -lhcs -Wl,-rpath,"$build"

# crun bundles: one for `run /bin/true`, one sleeping for exec/pause.
(cd "$work/bundle" && crun spec >/dev/null)
python3 - "$work/bundle" <<'PY'
import json, sys, copy
d = sys.argv[1]
c = json.load(open(d + "/config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(d + "/config.json", "w"))
s = copy.deepcopy(c)
s["process"]["args"] = ["/bin/sleep", "100000"]
s["root"]["path"] = d + "/rootfs"
import os
os.makedirs(d + "/../sleeper", exist_ok=True)
json.dump(s, open(d + "/../sleeper/config.json", "w"))
PY

median() { python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"; }

echo "== crun (in a mount namespace without the cgroup2 mount)"
unshare -m bash -s "$work" "$runs" <<'SH'
set -euo pipefail
work=$1 runs=$2
umount /sys/fs/cgroup/unified
cd "$work/bundle"
hyperfine -N -w 3 -r "$runs" --export-json "$work/crun-run.json" "crun run bench-r" >/dev/null
cd "$work/sleeper"
crun run -d bench-c >/dev/null
hyperfine -N -w 3 -r "$runs" --export-json "$work/crun-exec.json" "crun exec bench-c /bin/true" >/dev/null
crun pause bench-c # each --prepare resumes it
hyperfine -N -w 3 -r "$runs" --prepare "crun resume bench-c" --export-json "$work/crun-pause.json" "crun pause bench-c" >/dev/null
crun resume bench-c 2>/dev/null || true
crun delete -f bench-c
SH

echo "== hcs"
export HCS_ROOT=$work/root
lib_run=$("$work/compute_bench" "$work/root" "$work/bundle/rootfs" run "$runs" | awk '{print $3}')
lib_exec=$("$work/compute_bench" "$work/root" "$work/bundle/rootfs" exec "$runs" | awk '{print $3}')
lib_pause=$("$work/compute_bench" "$work/root" "$work/bundle/rootfs" pause "$runs" | awk '{print $3}')
mem=$("$work/compute_bench" "$work/root" "$work/bundle/rootfs" idle 10)
hyperfine -N -w 3 -r "$runs" --export-json "$work/hcs-run.json" \
  "$hcs run --rm --cgroup-parent hcs-bench --rootfs $work/bundle/rootfs -- /bin/true" >/dev/null
"$hcs" run -d --name bench-h --cgroup-parent hcs-bench "$work/bundle/rootfs" >/dev/null
hyperfine -N -w 3 -r "$runs" --export-json "$work/hcs-exec.json" "$hcs exec bench-h -- /bin/true" >/dev/null
"$hcs" pause bench-h >/dev/null # each --prepare resumes it
hyperfine -N -w 3 -r "$runs" --prepare "$hcs resume bench-h" --export-json "$work/hcs-pause.json" "$hcs pause bench-h" >/dev/null
"$hcs" rm -f bench-h >/dev/null
lua_start=$(hyperfine -N -w 3 -r "$runs" --export-json "$work/hcs-lua.json" "$hcs -e ''" >/dev/null; median "$work/hcs-lua.json")

echo "== run: crun and hcs lib alternating, one of each per iteration (same mount namespace)"
unshare -m bash -c 'umount /sys/fs/cgroup/unified && exec "$1/compute_bench" "$1/root" "$1/bundle/rootfs" run "$2" "$1/bundle"' \
  _ "$work" "$runs" >"$work/run.txt"
alt_lib=$(awk '$1 == "run" {print $3}' "$work/run.txt")
alt_crun=$(awk '$1 == "crun" {print $3}' "$work/run.txt")

c_run=$(median "$work/crun-run.json") c_exec=$(median "$work/crun-exec.json") c_pause=$(median "$work/crun-pause.json")
h_run=$(median "$work/hcs-run.json") h_exec=$(median "$work/hcs-exec.json") h_pause=$(median "$work/hcs-pause.json")
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

printf '\n%-34s %10s %10s %10s %8s %8s\n' "operation (median ms)" "crun" "hcs lib" "hcs CLI" "lib/crun" "CLI/crun"
printf '%-34s %10s %10s %10s %8s %8s\n' "run /bin/true (create..delete)" "$c_run" "$lib_run" "$h_run" "$(ratio "$lib_run" "$c_run")" "$(ratio "$h_run" "$c_run")"
printf '%-34s %10s %10s %10s %8s %8s\n' "run, alternating per iteration" "$alt_crun" "$alt_lib" "-" "$(ratio "$alt_lib" "$alt_crun")" "-"
printf '%-34s %10s %10s %10s %8s %8s\n' "exec /bin/true" "$c_exec" "$lib_exec" "$h_exec" "$(ratio "$lib_exec" "$c_exec")" "$(ratio "$h_exec" "$c_exec")"
printf '%-34s %10s %10s %10s %8s %8s\n' "pause (lib: pause+resume)" "$c_pause" "$lib_pause" "$h_pause" "$(ratio "$lib_pause" "$c_pause")" "$(ratio "$h_pause" "$c_pause")"
echo "hcs host start-up (hcs -e ''): $lua_start ms"
echo "$mem" | sed 's/^/idle system: /'
