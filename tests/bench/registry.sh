#!/usr/bin/env bash
# Registry benchmark (issue #10): a ~500 MB image in 5 gzip layers (trees from
# gen_tree.py) in a loopback docker-registry, side by side:
#   pull:  hcs image pull (download, verify, unpack into the layer store)
#          vs skopeo copy docker://... oci:DIR + umoci unpack (the same work)
#          vs podman pull (containers-storage, overlay driver)
#   push:  hcs image push of a pulled image (upload of the blobs the pull
#          kept, to an empty registry)
#          vs skopeo copy oci:DIR docker://... (upload of the existing blobs)
#          and curl uploading the same blobs at once (the registry's floor)
# Every measured command starts from the same state, whatever the tool:
# the previous outputs deleted, a fresh directory (same file system), dirty
# data synced and the caches dropped, then the registry (its blobs read
# back into the page cache, a manifest fetched) and the tool's binaries
# warmed.  The tools take turns in a rotating order per iteration.  Each
# command is timed with wall and CPU (user+sys of the tool and its
# children) and the registry's own CPU over the command; medians are printed
# with the ratios hcs / faster peer (targets: pull 0.4, push 0.5).
#
# usage: tests/bench/registry.sh [SIZE_MB [NFILES [RUNS]]]    (default 500 20000 5)
#   BENCH_PULL=0 / BENCH_PUSH=0 skip a part; BENCH_PERF=DIR records one more
#   pull per tool under `perf record -g` (the tool and its children, kernel
#   stacks included) and prints the share of
#   ext4's inode allocation.  HCS_BASE_BIN=PATH adds another hcs build
#   (`hcsbase`, e.g. main's) to the rotation, for a before/after comparison
#   under the same load.  BENCH_LAYOUT=DIR keeps the generated image there
#   and reuses it on the next run (same SIZE_MB and NFILES).  BENCH_DROP=0
#   does not drop the caches (see settle).
# Run it under the shared lock: flock /work/notes/bench.lock tests/bench/registry.sh
# needs: root, a built tree (build/hcs or $HCS_BIN), docker-registry, skopeo,
# umoci, podman (optional), python3, bc, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-500}
NFILES=${2:-20000}
RUNS=${3:-5}
SRC=$PWD
HCS=${HCS_BIN:-$PWD/build/hcs}
W=$(mktemp -d /tmp/hcs-bench.XXXXXX)
REG_PID=""
HAVE_PODMAN=0
command -v podman >/dev/null && HAVE_PODMAN=1
pod() { podman --root "$W/out/podman" --runroot "$W/out/podrun" --storage-driver overlay "$@"; }
stop_registry() {
  if [ -n "$REG_PID" ]; then
    kill "$REG_PID" 2>/dev/null || true
    while kill -0 "$REG_PID" 2>/dev/null; do sleep 0.1; done
    REG_PID=""
  fi
}
clear_outputs() { # what the previous command made, whoever made it
  if [ -d "$W/out/podman" ]; then pod rmi -a -f >/dev/null 2>&1 || true; fi
  { grep -o " $W/out[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
  rm -rf "$W/out"
  mkdir -p "$W/out"
}
cleanup() {
  stop_registry
  [ -n "${SRCPID:-}" ] && { REG_PID=$SRCPID; stop_registry; }
  clear_outputs
  { grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# start_registry NAME: a fresh registry on a free loopback port; sets ADDR, REG_PID.
start_registry() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ADDR=127.0.0.1:$port
  mkdir -p "$W/$1"
  cat >"$W/$1/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/$1/storage
http:
  addr: $ADDR
EOF
  setsid docker-registry serve "$W/$1/config.yml" >"$W/$1/log" 2>&1 </dev/null &
  REG_PID=$!
  until curl -s -o /dev/null "http://$ADDR/v2/"; do sleep 0.1; done
}

cpu_of() { # cpu_of PID -> user+sys seconds so far
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# settle: the same starting state for every measured command.
settle() {
  clear_outputs
  sync
  # BENCH_DROP=0 keeps the caches: ext4 without a journal then skips every
  # inode deleted in the last two minutes whose inode table block is still
  # cached (recently_deleted), so a command pays for the tree deleted before it
  if [ "${BENCH_DROP:-1}" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
  # the registry serves from the page cache, as a warm registry does
  find "$W/src/storage" -type f -exec cat {} + >/dev/null
  curl -s -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$SRCREG/v2/bench/img/manifests/1"
  # the tools' binaries and libraries
  "$HCS" --version >/dev/null
  if [ -n "${HCS_BASE_BIN:-}" ]; then "$HCS_BASE_BIN" --version >/dev/null; fi
  skopeo --version >/dev/null
  umoci --version >/dev/null
  if [ "$HAVE_PODMAN" = 1 ]; then podman --version >/dev/null; fi
}

# measure KEY REGPID FUNCTION: runs FUNCTION (exported) in bash, appends "wall cpu regcpu" to $W/res/KEY.
measure() {
  local key=$1 rpid=$2
  shift 2
  local r0 r1 t
  r0=$(cpu_of "$rpid")
  if ! /usr/bin/time -f '%e %U %S' -o "$W/time" bash -c "$*" >"$W/cmd.log" 2>&1; then
    echo "failed: $*" >&2
    cat "$W/cmd.log" >&2
    return 1
  fi
  r1=$(cpu_of "$rpid")
  t=$(tail -1 "$W/time")
  read -r wall user sys <<<"$t"
  printf '%s %s %s\n' "$wall" "$(echo "$user + $sys" | bc -l)" "$(echo "$r1 - $r0" | bc -l)" >>"$W/res/$key"
  printf '  %-12s wall %6.2f s  cpu %6.2f s (user %s sys %s)  registry cpu %5.2f s  load %s\n' "$key" "$wall" \
    "$(echo "$user + $sys" | bc -l)" "$user" "$sys" "$(echo "$r1 - $r0" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
}

pull_hcs() { "$HCS" --root "$W/out/hcs" image pull -q "$REF"; }
pull_skopeo() {
  skopeo copy --src-tls-verify=false "docker://$REF" "oci:$W/out/oci:bench" &&
    umoci unpack --image "$W/out/oci:bench" "$W/out/bundle"
}
pull_podman() { pod pull -q --tls-verify=false "docker://$REF"; }
pull_hcsbase() { "$HCS_BASE_BIN" --root "$W/out/hcs" image pull -q "$REF"; }
export -f pod pull_hcs pull_skopeo pull_podman pull_hcsbase

echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo "image: ${SIZE} MB in ${NFILES} files, 5 layers, under $W ..."
mkdir -p "$W/res" "$W/out"
if [ -n "${BENCH_LAYOUT:-}" ] && [ -f "$BENCH_LAYOUT/index.json" ]; then
  echo "reusing the image in $BENCH_LAYOUT"
  cp -a "$BENCH_LAYOUT" "$W/layout"
else
"$SRC/scripts/make-base-image" --tar-only "$W/base.tar.gz" >/dev/null
mkdir -p "$W/layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$W/layout/oci-layout"
python3 - "$W" "$SIZE" "$NFILES" "$SRC" <<'PY'
import hashlib, json, os, subprocess, sys
w, size, nfiles, src = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
layers, diff_ids = [], []
def add(path, gz=True):
    data = open(path, "rb").read()
    d = hashlib.sha256(data).hexdigest()
    os.rename(path, f"{w}/layout/blobs/sha256/{d}")
    raw = subprocess.run(["gzip", "-dc", f"{w}/layout/blobs/sha256/{d}"], capture_output=True, check=True).stdout
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + d, "size": len(data)})
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
add(f"{w}/base.tar.gz")
for i in range(5):
    tree = f"{w}/tree{i}"
    subprocess.run(["python3", f"{src}/tests/bench/gen_tree.py", f"{tree}/data{i}", str(size // 5), str(nfiles // 5)], check=True)
    subprocess.run(["tar", "--numeric-owner", "-C", tree, "-czf", f"{w}/l{i}.tar.gz", "."], check=True)
    subprocess.run(["rm", "-rf", tree], check=True)
    add(f"{w}/l{i}.tar.gz")
def blob(obj):
    b = json.dumps(obj).encode()
    d = hashlib.sha256(b).hexdigest()
    open(f"{w}/layout/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d, len(b)
cd, cn = blob({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers", "diff_ids": diff_ids}})
md, mn = blob({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
               "layers": layers})
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
          open(f"{w}/layout/index.json", "w"))
PY
if [ -n "${BENCH_LAYOUT:-}" ]; then rm -rf "$BENCH_LAYOUT" && cp -a "$W/layout" "$BENCH_LAYOUT"; fi
fi
du -sh "$W/layout" | awk '{print "compressed image: " $1}'
start_registry src
SRCREG=$ADDR
SRCPID=$REG_PID
REG_PID=""
skopeo copy --dest-tls-verify=false "oci:$W/layout:bench" "docker://$SRCREG/bench/img:1" >/dev/null
REF=$SRCREG/bench/img:1
export W HCS REF HCS_BASE_BIN

PULLERS=(hcs skopeo)
[ "$HAVE_PODMAN" = 1 ] && PULLERS+=(podman)
[ -n "${HCS_BASE_BIN:-}" ] && PULLERS+=(hcsbase)

if [ "${BENCH_PULL:-1}" = 1 ]; then
  echo "pull, $RUNS iterations (order rotates):"
  for i in $(seq "$RUNS"); do
    n=${#PULLERS[@]}
    for k in $(seq 0 $((n - 1))); do
      tool=${PULLERS[$(((i + k) % n))]}
      settle
      measure "pull-$tool" "$SRCPID" "pull_$tool"
    done
  done
fi

if [ "${BENCH_PUSH:-1}" = 1 ]; then
  # the pushed image: pulled once into a root of its own
  "$HCS" --root "$W/pushsrc" image pull -q "$REF" >/dev/null
  push_hcs() { "$HCS" --root "$W/pushsrc" image push -q "$REF" "$ADDR/bench/pushed:1"; }
  push_skopeo() { skopeo copy --dest-tls-verify=false "oci:$W/layout:bench" "docker://$ADDR/bench/pushed:1"; }
  # the floor: every blob of the layout uploaded by curl at once (POST, then
  # one monolithic PUT ?digest= each), what the registry costs by itself
  push_curl() {
    local b loc sep pids=()
    for b in "$W"/layout/blobs/sha256/*; do
      (
        loc=$(curl -sf -o /dev/null -w '%header{location}' -X POST "http://$ADDR/v2/bench/pushed/blobs/uploads/")
        case $loc in http*) ;; *) loc="http://$ADDR$loc" ;; esac
        sep='?'
        case $loc in *\?*) sep='&' ;; esac
        curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T "$b" \
          "$loc${sep}digest=sha256:$(basename "$b")"
      ) &
      pids+=($!)
    done
    for b in "${pids[@]}"; do wait "$b"; done
  }
  push_hcsbase() { "$HCS_BASE_BIN" --root "$W/pushsrc" image push -q "$REF" "$ADDR/bench/pushed:1"; }
  export -f push_hcs push_skopeo push_hcsbase push_curl
  PUSHERS=(hcs skopeo curl)
  [ -n "${HCS_BASE_BIN:-}" ] && PUSHERS+=(hcsbase)
  echo "push, $RUNS iterations (order rotates), each to an empty registry:"
  for i in $(seq "$RUNS"); do
    n=${#PUSHERS[@]}
    for k in $(seq 0 $((n - 1))); do
      tool=${PUSHERS[$(((i + k) % n))]}
      settle
      # the pushed blobs read back into the page cache, for both
      find "$W/pushsrc/images/blobs" "$W/layout" -type f -exec cat {} + >/dev/null
      start_registry "push-$tool-$i"
      export ADDR
      measure "push-$tool" "$REG_PID" "push_$tool"
      stop_registry
      rm -rf "$W/push-$tool-$i"
    done
  done
fi

if [ -n "${BENCH_PERF:-}" ]; then
  mkdir -p "$BENCH_PERF"
  echo "perf profiles (one pull each) in $BENCH_PERF:"
  for tool in "${PULLERS[@]}"; do
    settle
    perf record -q -g -o "$BENCH_PERF/pull-$tool.data" -- bash -c "pull_$tool" >/dev/null 2>&1
    share=$(perf report -i "$BENCH_PERF/pull-$tool.data" --children --sort sym --stdio 2>/dev/null |
      awk '/\] __ext4_new_inode$/ && !s {s = $1} END {print s}' || true)
    echo "  $tool: __ext4_new_inode (with children) ${share:-0%} of the samples"
  done
fi
REG_PID=$SRCPID
SRCPID=""
stop_registry

col() { awk -v c="$2" '{print $c}' "$W/res/$1" | median; }
echo
echo "medians of $RUNS (s): wall / cpu (user+sys) / registry cpu"
for f in "$W"/res/*; do
  k=$(basename "$f")
  printf '  %-12s %7.2f / %6.2f / %5.2f\n' "$k" "$(col "$k" 1)" "$(col "$k" 2)" "$(col "$k" 3)"
done
ratio() { # ratio HCSKEY PEERKEYS... column: hcs / the faster peer
  local h=$1 c=$2 best=""
  shift 2
  for p in "$@"; do
    [ -f "$W/res/$p" ] || continue
    v=$(col "$p" "$c")
    if [ -z "$best" ] || [ "$(echo "$v < $best" | bc -l)" = 1 ]; then best=$v; fi
  done
  echo "$(col "$h" "$c") / $best" | bc -l
}
if [ -f "$W/res/pull-hcs" ]; then
  printf 'pull hcs / faster peer: wall %.2f  cpu %.2f (target 0.4)\n' "$(ratio pull-hcs 1 pull-skopeo pull-podman)" \
    "$(ratio pull-hcs 2 pull-skopeo pull-podman)"
fi
if [ -f "$W/res/push-hcs" ]; then
  printf 'push hcs / skopeo: wall %.2f  cpu %.2f  cpu with the registry %.2f (target 0.5)\n' \
    "$(ratio push-hcs 1 push-skopeo)" "$(ratio push-hcs 2 push-skopeo)" \
    "$(echo "($(col push-hcs 2) + $(col push-hcs 3)) / ($(col push-skopeo 2) + $(col push-skopeo 3))" | bc -l)"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
