#!/usr/bin/env bash
# Layer benchmark: hcs vs umoci on a generated tree (hardlinks, symlinks,
# xattrs): export (gzip + digests) vs umoci repack, import of the gzip layer
# vs umoci unpack and vs `tar -x` of the same layer uncompressed (the
# floor), alternating per run; plus overlay activation of chains of 1, 10
# and 50 layers vs a plain mount(8) (ACT_RUNS pairs each, default 200).  Prints medians of wall time and of CPU
# time (user + sys of the command and its children; far less sensitive to
# the machine's other load) and the ratios hcs/peer.
#
# usage: tests/bench/layer.sh [SIZE_MB [NFILES [RUNS]]]     (default 500 20000 3)
# env: EXPORT_ONLY=1 runs the export rows alone (no import, no activation);
# EXPORT_ARGS adds options to `hcs layer export` (e.g. "--level 2").
# needs: root, a built tree (build/hcs or $HCS_BIN), umoci, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-500}
NFILES=${2:-20000}
RUNS=${3:-3}
HCS=${HCS_BIN:-$PWD/build/hcs}
# HCS_BENCH_DIR: where to work (e.g. a freshly made file system: ext4's
# inode allocator slows every tool down after big removals, see
# docs/PERFORMANCE.md), /tmp by default.
W=$(mktemp -d "${HCS_BENCH_DIR:-/tmp}/hcs-bench.XXXXXX")
cleanup() {
  grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timeit() { # timeit CMD... -> WALL:CPU seconds on stdout
  sync
  /usr/bin/time -f '%e %U %S' -o "$W/.time" "$@" >/dev/null 2>&1 || true
  tail -1 "$W/.time" | awk '{printf "%s:%.2f\n", $1, $2 + $3}'
}
wall() { printf "%s\n" "$@" | cut -d: -f1 | median; }
cpu() { printf "%s\n" "$@" | cut -d: -f2 | median; }
row() { # row NAME HCS_SECONDS PEER_SECONDS PEER_NAME [HCS_CPU PEER_CPU]
  printf "%-28s hcs %8.3f s   %-14s %8.3f s   ratio %.2f" "$1" "$2" "$4" "$3" "$(echo "$2 / $3" | bc -l)"
  [ -z "${5:-}" ] || printf "   CPU %.2f s / %.2f s, ratio %.2f" "$5" "$6" "$(echo "$5 / $6" | bc -l)"
  printf "\n"
}

if [ "$SIZE" != 0 ]; then
echo "generating ${SIZE} MB in ${NFILES} files under $W/tree ..."
python3 tests/bench/gen_tree.py "$W/tree" "$SIZE" "$NFILES"
du -sh "$W/tree" | awk '{print "tree on disk: " $1}'

# umoci: an OCI layout whose one layer is the tree (umoci repack).
umoci init --layout "$W/oci" >/dev/null
umoci new --image "$W/oci:base" >/dev/null
umoci unpack --image "$W/oci:base" "$W/bundle" >/dev/null 2>&1
cp -a "$W/tree/." "$W/bundle/rootfs/"
cp -a "$W/oci" "$W/oci.pristine"

# hcs: the same tree as a layer in the store (imported from an uncompressed tar).
tar -C "$W/tree" --xattrs -cf "$W/tree.tar" .
"$HCS" layer import --root "$W/root" -q --id src "$W/tree.tar" >/dev/null
rm -f "$W/tree.tar"

export_hcs=() export_peer=() import_hcs=() import_peer=()
for i in $(seq "$RUNS"); do
  rm -rf "$W/oci"
  cp -a "$W/oci.pristine" "$W/oci"
  export_peer+=("$(timeit umoci repack --image "$W/oci:base" "$W/bundle")")
  rm -f "$W/out.tar.gz"
  # shellcheck disable=SC2086 # EXPORT_ARGS: words
  export_hcs+=("$(timeit "$HCS" layer export --root "$W/root" -q ${EXPORT_ARGS:-} src "$W/out.tar.gz")")
done
blob=$(ls -S "$W/oci/blobs/sha256" | head -1)
cp "$W/oci/blobs/sha256/$blob" "$W/umoci-layer.tar.gz"
echo "gzip layer: umoci $(stat -c %s "$W/umoci-layer.tar.gz") bytes, hcs $(stat -c %s "$W/out.tar.gz") bytes"

if [ -n "${EXPORT_ONLY:-}" ]; then
  echo
  echo "== layers: ${SIZE} MB, ${NFILES} files, median of ${RUNS} =="
  row "export gzip + digests" "$(wall "${export_hcs[@]}")" "$(wall "${export_peer[@]}")" "umoci repack" \
    "$(cpu "${export_hcs[@]}")" "$(cpu "${export_peer[@]}")"
  echo "runs (wall:cpu s): export ${export_hcs[*]} | repack ${export_peer[*]}"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

# Nothing is deleted between runs: ext4 without a journal skips recently
# freed inodes when allocating, which would make whoever runs right after a
# big removal pay for it.
gzip -dc "$W/umoci-layer.tar.gz" > "$W/layer.tar"
import_tar=() import_plain=()
for i in $(seq "$RUNS"); do
  import_peer+=("$(timeit umoci unpack --image "$W/oci:base" "$W/unpacked$i")")
  import_hcs+=("$(timeit "$HCS" layer import --root "$W/root" -q --id "imp$i" "$W/umoci-layer.tar.gz")")
  mkdir "$W/untar$i"
  import_tar+=("$(timeit tar -C "$W/untar$i" -xf "$W/layer.tar")")
  import_plain+=("$(timeit "$HCS" layer import --root "$W/root" -q --id "plain$i" "$W/layer.tar")")
done

echo
echo "== layers: ${SIZE} MB, ${NFILES} files, median of ${RUNS} =="
eh=$(wall "${export_hcs[@]}"); ep=$(wall "${export_peer[@]}")
ih=$(wall "${import_hcs[@]}"); ip=$(wall "${import_peer[@]}")
it=$(wall "${import_tar[@]}"); il=$(wall "${import_plain[@]}")
row "export gzip + digests" "$eh" "$ep" "umoci repack" "$(cpu "${export_hcs[@]}")" "$(cpu "${export_peer[@]}")"
row "import gzip" "$ih" "$ip" "umoci unpack" "$(cpu "${import_hcs[@]}")" "$(cpu "${import_peer[@]}")"
row "import gzip" "$ih" "$it" "tar -x (plain)" "$(cpu "${import_hcs[@]}")" "$(cpu "${import_tar[@]}")"
row "import plain" "$il" "$it" "tar -x (plain)" "$(cpu "${import_plain[@]}")" "$(cpu "${import_tar[@]}")"
echo "runs (wall:cpu s): export ${export_hcs[*]} | repack ${export_peer[*]}"
echo "  import ${import_hcs[*]} | unpack ${import_peer[*]}"
echo "  tar -x ${import_tar[*]} | import plain ${import_plain[*]}"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
fi # SIZE != 0

# Activation: chains of small layers, activate+deactivate via the CLI vs
# mount(8)+umount(8) of the same overlay (both: two processes per cycle),
# alternating per iteration, wall and CPU time of each pair
# (tests/bench/pairs.py, rusage of the commands); then the library alone:
# 50 cycles inside one hcs process, minus the start-up of an empty one.
ACT_RUNS=${ACT_RUNS:-200}
printf 'x' > "$W/one"
mkdir -p "$W/small"
parent=()
for n in $(seq 50); do
  echo "$n" > "$W/small/f$n"
  tar -C "$W/small" -cf "$W/small.tar" "f$n"
  "$HCS" layer import --root "$W/root" -q --id "c$n" "${parent[@]}" "$W/small.tar" >/dev/null
  parent=(--parent "c$n")
done
for n in 1 10 50; do
  "$HCS" layer create-scratch --root "$W/root" --parent "c$n" "s$n" >/dev/null
  lowers=$(for k in $(seq "$n" -1 1); do printf "%s/root/layers/c%d/diff:" "$W" "$k"; done)
  lowers=${lowers%:}
  mkdir -p "$W/m$n" "$W/u$n" "$W/w$n"
  echo "activate+deactivate, chain of $n, $ACT_RUNS pairs each (wall and CPU of one pair, median and quartiles):"
  python3 tests/bench/pairs.py "$ACT_RUNS" \
    "hcs CLI" "$HCS layer activate --root $W/root s$n" "$HCS layer deactivate --root $W/root s$n" -- \
    "mount+umount" "mount -t overlay overlay -o lowerdir=$lowers,upperdir=$W/u$n,workdir=$W/w$n $W/m$n" "umount $W/m$n"
  t0=$(now); "$HCS" -e '' ; t1=$(now); base=$(echo "$t1 - $t0" | bc -l)
  t0=$(now)
  "$HCS" -e "local s = assert(require('hcs').layer.open('$W/root'))
    for i = 1, 50 do assert(s:activate('s$n')); assert(s:deactivate('s$n')) end"
  t1=$(now)
  printf "%-28s hcs %8.3f ms per activate+deactivate (library, in-process)\n" "  chain of $n" \
    "$(echo "($t1 - $t0 - $base) * 1000 / 50" | bc -l)"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
