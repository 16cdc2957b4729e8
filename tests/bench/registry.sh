#!/usr/bin/env bash
# Registry benchmark (issue #10): a ~500 MB image in 5 gzip layers (trees from
# gen_tree.py) in a loopback docker-registry; one run side by side of
#   pull:  hcs image pull (download, verify, unpack into the layer store)
#          vs skopeo copy docker://... oci:DIR + umoci unpack (the same work)
#          vs podman pull (containers-storage, overlay driver)
#   push:  hcs image push of the pulled image (upload of the blobs the pull
#          kept, to an empty registry)
#          vs skopeo copy oci:DIR docker://... (upload of the existing blobs)
# Prints medians and the ratios hcs / faster peer (targets: pull 0.4, push 0.5).
#
# usage: tests/bench/registry.sh [SIZE_MB [NFILES [RUNS]]]    (default 500 20000 3)
# needs: root, a built tree (build/hcs or $HCS_BIN), docker-registry, skopeo,
# umoci, podman (optional), python3, bc.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-500}
NFILES=${2:-20000}
RUNS=${3:-3}
SRC=$PWD
HCS=${HCS_BIN:-$PWD/build/hcs}
W=$(mktemp -d /tmp/hcs-bench.XXXXXX)
REG_PID=""
POD=(podman --root "$W/podman" --runroot "$W/podrun" --storage-driver overlay)
stop_registry() {
  if [ -n "$REG_PID" ]; then
    kill "$REG_PID" 2>/dev/null || true
    while kill -0 "$REG_PID" 2>/dev/null; do sleep 0.1; done
    REG_PID=""
  fi
}
cleanup() {
  stop_registry
  if command -v podman >/dev/null; then "${POD[@]}" rmi -a -f >/dev/null 2>&1 || true; fi
  { grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# start_registry NAME: a fresh registry on a free loopback port; sets ADDR.
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

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timeit() { # timeit CMD... -> seconds
  local t0 t1
  sync
  t0=$(now)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo "image: ${SIZE} MB in ${NFILES} files, 5 layers, under $W ..."
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
du -sh "$W/layout" | awk '{print "compressed image: " $1}'
start_registry src
SRCREG=$ADDR
SRCPID=$REG_PID
skopeo copy --dest-tls-verify=false "oci:$W/layout:bench" "docker://$SRCREG/bench/img:1" >/dev/null
REF=$SRCREG/bench/img:1

hcs_pull=() skopeo_pull=() podman_pull=() hcs_push=() skopeo_push=()
for i in $(seq "$RUNS"); do
  hcs_pull+=("$(timeit "$HCS" --root "$W/hcs$i" image pull -q "$REF")")
  rm -rf "$W/oci$i" "$W/bundle$i"
  skopeo_pull+=("$(timeit sh -c "skopeo copy --src-tls-verify=false docker://$REF oci:$W/oci$i:bench && umoci unpack --image $W/oci$i:bench $W/bundle$i")")
  rm -rf "$W/oci$i" "$W/bundle$i"
  last_podman=n/a
  if command -v podman >/dev/null; then
    last_podman=$(timeit "${POD[@]}" pull -q --tls-verify=false "docker://$REF")
    podman_pull+=("$last_podman")
    "${POD[@]}" rmi -a -f >/dev/null 2>&1
  fi
  # push: to an empty registry each time, so nothing is skipped or mounted
  REG_PID=""
  start_registry "push-hcs$i"
  hcs_push+=("$(timeit "$HCS" --root "$W/hcs$i" image push -q "$REF" "$ADDR/bench/pushed:1")")
  stop_registry
  start_registry "push-skopeo$i"
  skopeo_push+=("$(timeit skopeo copy --dest-tls-verify=false "oci:$W/layout:bench" "docker://$ADDR/bench/pushed:1")")
  stop_registry
  rm -rf "$W/push-hcs$i" "$W/push-skopeo$i" "$W/hcs$i"
  echo "run $i: pull hcs ${hcs_pull[-1]} skopeo+umoci ${skopeo_pull[-1]} podman $last_podman; push hcs ${hcs_push[-1]} skopeo ${skopeo_push[-1]}"
done
REG_PID=$SRCPID
stop_registry

m() { printf '%s\n' "$@" | median; }
HP=$(m "${hcs_pull[@]}") SP=$(m "${skopeo_pull[@]}") HU=$(m "${hcs_push[@]}") SU=$(m "${skopeo_push[@]}")
PP=""
[ ${#podman_pull[@]} -gt 0 ] && PP=$(m "${podman_pull[@]}")
BEST=$SP
if [ -n "$PP" ] && [ "$(echo "$PP < $SP" | bc -l)" = 1 ]; then BEST=$PP; fi
printf '\nmedians of %d (s):  pull: hcs %.2f  skopeo+umoci %.2f  podman %s   push: hcs %.2f  skopeo %.2f\n' \
  "$RUNS" "$HP" "$SP" "$(printf '%.2f' "${PP:-0}")" "$HU" "$SU"
printf 'ratios: pull hcs/faster peer %.2f (target 0.4)   push hcs/skopeo %.2f (target 0.5)\n' \
  "$(echo "$HP / $BEST" | bc -l)" "$(echo "$HU / $SU" | bc -l)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
