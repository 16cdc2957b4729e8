#!/usr/bin/env bash
# `hcs run --rm` benchmark (issue #14 item 16): the image path and the bare
# rootfs path of the hcs CLI, side by side with `podman run --rm` of the same
# image and `crun run` of the same rootfs, in one loop that runs one of each
# per iteration in rotating order (so all four see the same load on a
# shared machine, and none always runs right after podman).
# Then the same in blocks (each tool N times in a row).  Prints medians,
# the ratios and the load average.  Needs root, podman, crun.
#   tests/bench/run.sh [BUILD_DIR] [RUNS]
# crun (and podman's crun) refuse hybrid cgroup hosts, so everything runs in
# a mount namespace where the cgroup2 mount at /sys/fs/cgroup/unified is
# unmounted (hcs runs there too, as in compute.sh).  podman keeps its storage
# in a temporary root, runs with --network none, and with explicit rlimits
# (this machine's podman defaults exceed the hard limits).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
runs=${2:-30}
hcs=$build/hcs
for t in crun podman python3 unshare; do command -v $t >/dev/null || { echo "run.sh: $t missing" >&2; exit 1; }; done
[ -x "$hcs" ] || { echo "run.sh: build hcs first ($hcs)" >&2; exit 1; }

work=$(mktemp -d /tmp/hcs-bench-run.XXXXXX)
# State root on disk (as /var/lib/hcs), run root on tmpfs (as /run/hcs).
export HCS_ROOT=$work/root HCS_RUN_ROOT
HCS_RUN_ROOT=$(mktemp -d /dev/shm/hcs-bench-run.XXXXXX)
podman=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver overlay)
cleanup() {
  "${podman[@]}" rm -af >/dev/null 2>&1 || true
  "${podman[@]}" system reset -f >/dev/null 2>&1 || true
  for id in $("$hcs" list --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(s["Id"] for s in json.load(sys.stdin)))' 2>/dev/null); do
    "$hcs" rm -f "$id" >/dev/null 2>&1 || true
  done
  "$hcs" image rm -f busybox >/dev/null 2>&1 || true
  crun delete -f bench-run >/dev/null 2>&1 || true
  rm -rf "$work" "$HCS_RUN_ROOT"
  find /sys/fs/cgroup -maxdepth 2 -type d -name hcs-bench -exec rmdir {} + 2>/dev/null || true
}
trap cleanup EXIT

# One busybox image for all: the base image's tarball, imported into
# podman and installed into hcs, unpacked as crun's (and hcs's bare) rootfs.
tar=$(scripts/make-base-image --tar-only "$work/busybox.tar")
"${podman[@]}" import "$tar" localhost/busybox:latest >/dev/null
"$hcs" image install-os "$tar" --name busybox >/dev/null
mkdir -p "$work/bundle/rootfs"
tar -xf "$tar" -C "$work/bundle/rootfs"
(cd "$work/bundle" && crun spec >/dev/null)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(sys.argv[1], "w"))
PY

unshare -m bash -s "$work" "$runs" "$hcs" "${podman[@]}" <<'SH'
set -euo pipefail
work=$1 runs=$2 hcs=$3
shift 3
umount /sys/fs/cgroup/unified 2>/dev/null || true
exec python3 - "$work" "$runs" "$hcs" "$@" <<'PY'
import os, statistics, subprocess, sys, time
work, runs, hcs, podman = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
cmds = {
    "podman": podman + ["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                        "--ulimit", "nproc=1024:1024", "localhost/busybox", "/bin/true"],
    "crun": ["crun", "run", "--bundle", work + "/bundle", "bench-run"],
    "hcs image": [hcs, "run", "--rm", "--cgroup-parent", "hcs-bench", "busybox", "/bin/true"],
    "hcs rootfs": [hcs, "run", "--rm", "--cgroup-parent", "hcs-bench", work + "/bundle/rootfs", "/bin/true"],
}
times = {k: [] for k in cmds}
failed = {k: 0 for k in cmds}
def once(name):
    # podman 4.3 here now and then loses a fast container's exit code
    # ("no such exit code"): such a run is retried, and counted.
    for attempt in range(3):
        t = time.perf_counter()
        r = subprocess.run(cmds[name], stdin=subprocess.DEVNULL)
        dt = time.perf_counter() - t
        if r.returncode == 0:
            return dt
        failed[name] += 1
        if name != "podman":
            break
    sys.exit(f"run.sh: {name} failed with {r.returncode}")
for name in cmds:  # warm-up
    once(name)
load0 = os.getloadavg()[0]
# The order rotates every iteration: each tool follows each other one
# equally often (podman's exit command and conmon finish in the background
# after it returns and would otherwise always slow the tool run next).
names = list(cmds)
for i in range(runs):
    for name in names[i % len(names):] + names[:i % len(names)]:
        times[name].append(once(name))
load1 = os.getloadavg()[0]
# Then in blocks, each tool `runs` times in a row: each one then also
# meets its own aftermath (network namespace teardown in a kworker, and
# for hcs on this ext4 without a journal, the inode allocator's scan past
# the inodes the previous runs deleted).
blocks = {k: [] for k in cmds}
for name in cmds:
    for i in range(runs):
        blocks[name].append(once(name))
load2 = os.getloadavg()[0]
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
blk = {k: statistics.median(v) * 1000 for k, v in blocks.items()}
print(f"{'run /bin/true (median ms)':28} {'alternating':>12} {'blocks':>8}")
for k in cmds:
    print(f"{k:28} {med[k]:12.2f} {blk[k]:8.2f}")
for a, b, target in (("hcs image", "podman", "0.15"), ("hcs image", "crun", "2"), ("hcs rootfs", "crun", "0.5")):
    print(f"{a + ' / ' + b:28} {med[a] / med[b]:12.3f} {blk[a] / blk[b]:8.3f}  (target <= {target})")
print(f"{runs} iterations; load average {load0:.2f} -> {load1:.2f} (alternating) -> {load2:.2f} (blocks)"
      + "".join(f"; {k} failed {n}x (retried)" for k, n in failed.items() if n))
PY
SH
