#!/usr/bin/env bash
# Capture benchmark (issue #16): a container wrote ~500 MB in ~20,000 files;
# time turning that into an image with
#   hcs commit          (running system, paused: the scratch copied into a
#                        new layer in one pass, digests of its canonical tar)
#   hcs commit, former  (HCS_CAPTURE=reimport: export piped into an import)
#   hcs commit --stop   (stopped system: scratch files moved, one hashing pass)
#   umoci repack        (OCI layout, gzip)
#   tar -c | tar -x     (a plain copy of the same tree: the floor)
#   buildah commit      (containers-storage, overlay driver; when installed)
# alternating per run, and print medians of wall time and of CPU time (user +
# sys of the command and its children, far less sensitive to the machine's
# other load) and the ratios.
#
# usage: tests/bench/image.sh [SIZE_MB [NFILES [RUNS]]]     (default 500 20000 3)
# needs: root, a built tree (build/hcs or $HCS_BIN), umoci, python3 (buildah optional).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-500}
NFILES=${2:-20000}
RUNS=${3:-3}
SRC=$PWD
HCS=${HCS_BIN:-$PWD/build/hcs}
# HCS_BENCH_DIR: where to work (e.g. a freshly made file system, as in
# layer.sh: ext4 slows every tool down after big removals), /tmp by default.
W=$(mktemp -d "${HCS_BENCH_DIR:-/tmp}/hcs-bench.XXXXXX")
export HCS_ROOT=$W/root
B=(buildah --root "$W/bstore" --runroot "$W/brun" --storage-driver overlay)
have_buildah=$(command -v buildah >/dev/null && echo 1 || true)
cleanup() {
  for s in cap $(seq -f 'mv%g' 1 "$RUNS"); do "$HCS" destroy "$s" >/dev/null 2>&1 || true; done
  if [ -n "$have_buildah" ]; then
    [ -n "${CTR:-}" ] && "${B[@]}" rm "$CTR" >/dev/null 2>&1 || true
    "${B[@]}" rmi -a -f >/dev/null 2>&1 || true
  fi
  { grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l; } 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timeit() { # timeit CMD... -> WALL:CPU seconds
  sync
  /usr/bin/time -f '%e %U %S' -o "$W/.time" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
  tail -1 "$W/.time" | awk '{printf "%s:%.2f\n", $1, $2 + $3}'
}
wall() { printf '%s\n' "$@" | cut -d: -f1 | median; }
cpu() { printf '%s\n' "$@" | cut -d: -f2 | median; }

echo "base image, tree of ${SIZE} MB in ${NFILES} files under $W ..."
"$SRC/scripts/make-base-image" >/dev/null
python3 "$SRC/tests/bench/gen_tree.py" "$W/tree" "$SIZE" "$NFILES"
du -sh "$W/tree" | awk '{print "tree on disk: " $1}'
"$HCS" image save busybox -o "$W/busybox.tar" >/dev/null

# hcs: a realized system whose scratch layer holds the tree (as if the
# container had written it).
"$HCS" plan create busybox --name cap >/dev/null
"$HCS" realize cap --idle >/dev/null
MNT=$("$HCS" plan show cap --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Realized"]["MountPath"])')
cp -a "$W/tree" "$MNT/data"

# umoci: the same change in an unpacked bundle of the same image.
mkdir -p "$W/layout" && tar -xf "$W/busybox.tar" -C "$W/layout"
umoci unpack --image "$W/layout:busybox:latest" "$W/bundle" >/dev/null 2>&1
cp -a "$W/tree" "$W/bundle/rootfs/data"
cp -a "$W/layout" "$W/layout.pristine"

# buildah: a working container from the same image, the tree written into its mount.
if [ -n "$have_buildah" ]; then
  "${B[@]}" pull -q "oci-archive:$W/busybox.tar" >/dev/null
  CTR=$("${B[@]}" from -q "oci-archive:$W/busybox.tar")
  BMNT=$("${B[@]}" mount "$CTR")
  cp -a "$W/tree" "$BMNT/data"
fi


# A system whose scratch holds the tree, for each `commit --stop` run.
fresh_system() {
  "$HCS" plan create busybox --name "mv$1" >/dev/null
  "$HCS" realize "mv$1" --idle >/dev/null
  local m
  m=$("$HCS" plan show "mv$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Realized"]["MountPath"])')
  cp -a "$W/tree" "$m/data"
  echo "move $1" > "$m/.bench-run"
}

# Nothing is deleted until the end: ext4 (no journal here) makes whoever
# creates inodes after a big removal scan for recently freed ones, which
# multiplied the CPU of the runs after the first (a capture 2.7 s -> 17 s of
# CPU, tar | tar 8 -> 15 s).  Every capture gets a marker file of its own, so
# it makes a new layer (the same content would be the same layer id: the
# copy would be made and then removed inside the timed command).

hcs_t=() old_t=() move_t=() buildah_t=() umoci_t=() tar_t=()
for i in $(seq "$RUNS"); do
  echo "hcs $i" > "$MNT/.bench-run"
  hcs_t+=("$(timeit "$HCS" commit cap --name "captured$i")")
  cp -a "$W/layout.pristine" "$W/layout$i"
  umoci_t+=("$(timeit umoci repack --image "$W/layout$i:busybox:latest" "$W/bundle")")
  tar_t+=("$(timeit bash -c 'mkdir "$1" && tar -C "$2" -cf - . | tar -C "$1" -xf -' tarcp "$W/copy$i" "$W/tree")")
  echo "former $i" > "$MNT/.bench-run"
  old_t+=("$(timeit env HCS_CAPTURE=reimport "$HCS" commit cap --name "former$i")")
  fresh_system "$i"
  move_t+=("$(timeit "$HCS" commit "mv$i" --stop --name "moved$i")")
  if [ -n "$have_buildah" ]; then
    buildah_t+=("$(timeit "${B[@]}" commit -q "$CTR" "bench$i")")
    "${B[@]}" rmi -f "bench$i" >/dev/null 2>&1 || true
  fi
done

h=$(wall "${hcs_t[@]}") o=$(wall "${old_t[@]}") m=$(wall "${move_t[@]}") u=$(wall "${umoci_t[@]}") t=$(wall "${tar_t[@]}")
hc=$(cpu "${hcs_t[@]}") oc=$(cpu "${old_t[@]}") mc=$(cpu "${move_t[@]}") uc=$(cpu "${umoci_t[@]}") tc=$(cpu "${tar_t[@]}")
printf "capture %s MB / %s files, median of %s, alternating (warm cache)\n" "$SIZE" "$NFILES" "$RUNS"
printf "  hcs commit             %8.3f s   /umoci %.2f (target <= 0.30)   /tar|tar %.2f (target <= 1.50)\n" "$h" \
  "$(echo "$h / $u" | bc -l)" "$(echo "$h / $t" | bc -l)"
printf "  hcs commit, former     %8.3f s   /umoci %.2f   /tar|tar %.2f\n" "$o" "$(echo "$o / $u" | bc -l)" \
  "$(echo "$o / $t" | bc -l)"
printf "  hcs commit --stop      %8.3f s   /umoci %.2f   /tar|tar %.2f\n" "$m" "$(echo "$m / $u" | bc -l)" \
  "$(echo "$m / $t" | bc -l)"
printf "  umoci repack           %8.3f s\n" "$u"
printf "  tar -c | tar -x        %8.3f s\n" "$t"
printf "  CPU (s): hcs %s, former %s, move %s, umoci %s, tar|tar %s; hcs /umoci %.2f, /tar|tar %.2f\n" "$hc" "$oc" "$mc" \
  "$uc" "$tc" "$(echo "$hc / $uc" | bc -l)" "$(echo "$hc / $tc" | bc -l)"
if [ -n "$have_buildah" ]; then
  printf "  buildah commit         %8.3f s\n" "$(wall "${buildah_t[@]}")"
fi
printf "  runs (wall:cpu s): hcs %s | former %s | move %s | umoci %s | tar %s\n" "${hcs_t[*]}" "${old_t[*]}" \
  "${move_t[*]}" "${umoci_t[*]}" "${tar_t[*]}"
echo "  load: $(cut -d' ' -f1-3 /proc/loadavg)"
