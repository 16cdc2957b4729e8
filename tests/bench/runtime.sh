#!/usr/bin/env bash
# OCI runtime benchmark: hcs-runtime side by side with crun, in one run.
#   tests/bench/runtime.sh [BUILD_DIR] [RUNS]
# 1. The command sequence a client (a containerd shim, conmon) issues for
#    /bin/true on one bundle: create, start, wait for init's exit (reaped
#    as a subreaper, as the shim does), delete.  One crun and one
#    hcs-runtime sequence alternate per iteration, so both see the same
#    load on this shared machine.
# 2. `podman run --rm` of /bin/true with --runtime crun and with
#    --runtime hcs-runtime, alternating too (storage in a temporary root).
# crun refuses hybrid cgroup hosts, so everything runs in a mount namespace
# where the cgroup2 mount at /sys/fs/cgroup/unified is unmounted.
# Needs root, crun, python3 (podman for part 2).  Prints medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
runs=${2:-40}
rt=$build/hcs-runtime
for t in crun python3; do command -v $t >/dev/null || { echo "runtime.sh: $t missing" >&2; exit 1; }; done
[ -x "$rt" ] || { echo "runtime.sh: build hcs-runtime first ($rt)" >&2; exit 1; }

work=$(mktemp -d /tmp/hcs-bench.XXXXXX)
# Runtime state on tmpfs, as /run/crun and /run/hcs-runtime are.
state=$(mktemp -d /dev/shm/hcs-bench-rt.XXXXXX)
cleanup() {
  "$rt" --root "$state/hcs" delete -f bench-h >/dev/null 2>&1 || true
  crun --root "$state/crun" delete -f bench-c >/dev/null 2>&1 || true
  if command -v podman >/dev/null; then
    podman --root "$work/storage" --runroot "$work/run" --tmpdir "$work/tmp" --storage-driver vfs system reset -f \
      >/dev/null 2>&1 || true
  fi
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work" "$state"
  find /sys/fs/cgroup -depth -mindepth 1 -maxdepth 4 -type d -path '*/hcs-bench-rt*' -exec rmdir {} + 2>/dev/null || true
}
trap cleanup EXIT

tests/fixtures/make-busybox-rootfs.sh "$work/bundle/rootfs"
(cd "$work/bundle" && "$rt" spec)
python3 - "$work/bundle" <<'PY'
import json, sys
d = sys.argv[1]
c = json.load(open(d + "/config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["readonly"] = False
c["linux"]["cgroupsPath"] = "/hcs-bench-rt/x"
json.dump(c, open(d + "/config.json", "w"))
PY

cat >"$work/seq.py" <<'PY'
# One client's sequence per runtime, alternating: create, start, wait for
# init (we are its subreaper, as a shim is), delete.  Prints medians in ms.
import ctypes, os, statistics, subprocess, sys, time
runs, bundle, crun_root, hcs_root, rt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
null = open(os.devnull, "w")
def seq(cmd, root, cid):
    pidfile = root + "/pid"
    t = time.perf_counter()
    subprocess.run([cmd, "--root", root, "create", "--bundle", bundle, "--pid-file", pidfile, cid], check=True,
                   stdout=null)
    pid = int(open(pidfile).read())
    subprocess.run([cmd, "--root", root, "start", cid], check=True)
    while True:
        r, st = os.waitpid(-1, 0)
        if r == pid:
            break
    subprocess.run([cmd, "--root", root, "delete", cid], check=True)
    return (time.perf_counter() - t) * 1000
res = {"crun": [], "hcs": []}
for i in range(runs + 3):
    c = seq("crun", crun_root, "bench-c")
    h = seq(rt, hcs_root, "bench-h")
    if i >= 3:  # warm-up
        res["crun"].append(c)
        res["hcs"].append(h)
print("%.2f %.2f" % (statistics.median(res["crun"]), statistics.median(res["hcs"])))
PY

cat >"$work/podman.py" <<'PY'
# podman run --rm /bin/true with each runtime, alternating.
import statistics, subprocess, sys, time
runs, base, rt = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3]
opts = ["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
        "--cgroup-parent", "/hcs-bench-rt", "localhost/hcs-bench:latest", "/bin/true"]
def one(runtime):
    t = time.perf_counter()
    subprocess.run(base + ["--runtime", runtime] + opts, check=True)
    return (time.perf_counter() - t) * 1000
res = {"crun": [], "hcs": []}
for i in range(runs + 2):
    c, h = one("crun"), one(rt)
    if i >= 2:
        res["crun"].append(c)
        res["hcs"].append(h)
print("%.2f %.2f" % (statistics.median(res["crun"]), statistics.median(res["hcs"])))
PY

mkdir -p "$state/crun" "$state/hcs"
podman_base=""
if command -v podman >/dev/null; then
  podman_base="podman --root $work/storage --runroot $work/run --tmpdir $work/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend none"
  tar -C "$work/bundle/rootfs" -c . | $podman_base import -q - localhost/hcs-bench:latest >/dev/null
fi
out=$(unshare -m bash -s "$work" "$runs" "$state" "$rt" "$podman_base" <<'SH'
set -euo pipefail
work=$1 runs=$2 state=$3 rt=$4 podman_base=$5
umount /sys/fs/cgroup/unified
echo "seq $(python3 "$work/seq.py" "$runs" "$work/bundle" "$state/crun" "$state/hcs" "$rt")"
if [ -n "$podman_base" ]; then
  echo "podman $(python3 "$work/podman.py" "$((runs / 2))" "$podman_base" "$rt")"
fi
SH
)
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
read -r _ c_seq h_seq <<<"$(grep '^seq' <<<"$out")"
printf '\n%-44s %10s %12s %8s\n' "operation (median ms)" "crun" "hcs-runtime" "hcs/crun"
printf '%-44s %10s %12s %8s\n' "create+start+wait+delete of /bin/true" "$c_seq" "$h_seq" "$(ratio "$h_seq" "$c_seq")"
if grep -q '^podman' <<<"$out"; then
  read -r _ c_pod h_pod <<<"$(grep '^podman' <<<"$out")"
  printf '%-44s %10s %12s %8s\n' "podman run --rm /bin/true" "$c_pod" "$h_pod" "$(ratio "$h_pod" "$c_pod")"
fi
