#!/usr/bin/env bash
# Endpoint set-up (namespace, veth, addresses, routes, up) and tear-down:
# hcs (libhcs through a small C driver, and the CLI) vs the fastest
# `ip -batch` sequence, side by side in one run, inside a private test netns.
# usage: tests/bench/net.sh [ITERATIONS]   (as root, after scripts/build)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200}
build=${HCS_BUILD_DIR:-build}
host=hcs-test-bench-$$
tmp=$(mktemp -d /tmp/hcs-test.XXXXXX)
cleanup() {
  ip netns del "$host" 2>/dev/null || true
  grep -o " $tmp[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
cc -O2 -o "$tmp/net_driver" tests/bench/net_driver.c -Isrc/include -L"$build" -lhcs -Wl,-rpath,"$PWD/$build"
ip netns add "$host"
inhost() { ip netns exec "$host" "$@"; }
inhost ip link set lo up

# --- peer: ip -batch (the bridge exists, as a network would) ---------------
inhost ip link add hcsbench type bridge
inhost ip addr add 10.97.0.1/24 dev hcsbench
inhost ip link set hcsbench up
# Names differ per iteration: a reaped netns takes its veth a moment later.
for ((i = 0; i < n; i++)); do
  cat >"$tmp/up.$i" <<B
netns add hcs-test-b$$-$i
link add vhb$i type veth peer name eth0 netns hcs-test-b$$-$i
link set vhb$i master hcsbench up
B
  # Fastest tear-down: the veth dies with the netns (an explicit `link del`
  # first costs 20-30 ms of RCU grace periods more).
  echo "netns del hcs-test-b$$-$i" >"$tmp/down.$i"
done
cat >"$tmp/in.batch" <<B
link set lo up
link set eth0 up
addr add 10.97.0.2/24 dev eth0
route add default via 10.97.0.1
B
inhost bash -c '
  n=$1 tmp=$2 ns=$3
  for ((i = 0; i < n; i++)); do
    t0=$EPOCHREALTIME; ip -batch "$tmp/up.$i"; ip -n "$ns-$i" -batch "$tmp/in.batch"; t1=$EPOCHREALTIME
    ip -batch "$tmp/down.$i"; t2=$EPOCHREALTIME
    echo "$t0 $t1 $t2"
  done' _ "$n" "$tmp" "hcs-test-b$$" >"$tmp/ip.times"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ip_up=$(awk '{printf "%.3f\n", ($2-$1)*1000}' "$tmp/ip.times" | median)
ip_down=$(awk '{printf "%.3f\n", ($3-$2)*1000}' "$tmp/ip.times" | median)
ip_total=$(awk '{printf "%.3f\n", ($3-$1)*1000}' "$tmp/ip.times" | median)

# --- hcs: library ------------------------------------------------------------
# Run root on tmpfs as in production (/run/hcs: compartments, endpoints,
# leases); the state root (networks) stays on disk.
runroot=$(mktemp -d /dev/shm/hcs-test-bench.XXXXXX)
trap 'cleanup; for m in netns alt/netns cli/netns; do umount -l "$runroot/$m" 2>/dev/null || true; done; rm -rf "$runroot"' EXIT
read -r lib_up lib_down lib_total < <(inhost env HCS_RUN_ROOT="$runroot" "$tmp/net_driver" "$tmp/root" "$n")
# Alternating: one ip -batch sequence and one hcs set-up + tear-down per
# iteration (fresh netns names), so both see the same load.
mkdir -p "$tmp/alt"
for ((i = 0; i < n; i++)); do
  printf 'netns add hcs-test-a%s-%d\nlink add vha%d type veth peer name eth0 netns hcs-test-a%s-%d\nlink set vha%d master hcsbench up\n' \
    $$ "$i" "$i" $$ "$i" "$i" >"$tmp/alt/up.$i"
  echo "netns del hcs-test-a$$-$i" >"$tmp/alt/down.$i"
done
cp "$tmp/in.batch" "$tmp/alt/in.batch"
{ read -r alt_up alt_down alt_total; read -r altip_up altip_down altip_total; } < <(
  inhost env HCS_RUN_ROOT="$runroot/alt" "$tmp/net_driver" "$tmp/alt-root" "$n" "$tmp/alt" "hcs-test-a$$")
inhost ip link del hcsbench

# --- hcs: CLI (one process per verb, like a user or a script would) -----------
hcs=$build/hcs
cli_n=$(( n < 30 ? n : 30 ))
export HCS_RUN_ROOT=$runroot/cli
inhost "$hcs" --root "$tmp/cli" network create --name bench --subnet 10.96.0.0/24 >/dev/null || true
inhost bash -c '
  hcs=$1 root=$2 n=$3
  for ((i = 0; i < n; i++)); do
    t0=$EPOCHREALTIME
    "$hcs" --root "$root" compartment create --id b >/dev/null
    "$hcs" --root "$root" endpoint create --name b --network bench --namespace b >/dev/null
    t1=$EPOCHREALTIME
    "$hcs" --root "$root" compartment rm b >/dev/null
    "$hcs" --root "$root" endpoint rm b >/dev/null
    t2=$EPOCHREALTIME
    echo "$t0 $t1 $t2"
  done' _ "$hcs" "$tmp/cli" "$cli_n" >"$tmp/cli.times" || echo "(CLI timing failed)"
inhost "$hcs" --root "$tmp/cli" network rm bench >/dev/null || true
cli_total=$(awk '{printf "%.3f\n", ($3-$1)*1000}' "$tmp/cli.times" | median)

# --- why the peer is created in place: moving a link costs more ----------------
inhost bash -c '
  n=$1 ns=$2
  ip netns add "$ns"
  for ((i = 0; i < n; i++)); do
    t0=$EPOCHREALTIME; ip link add mv$i type veth peer name mp$i; ip link set mp$i netns "$ns"; t1=$EPOCHREALTIME
    ip link add cr$i type veth peer name cp$i netns "$ns"; t2=$EPOCHREALTIME
    echo "$t0 $t1 $t2"
  done
  ip netns del "$ns"' _ "$(( n < 50 ? n : 50 ))" "hcs-test-mv$$" >"$tmp/move.times"
move=$(awk '{printf "%.3f\n", ($2-$1)*1000}' "$tmp/move.times" | median)
inplace=$(awk '{printf "%.3f\n", ($3-$2)*1000}' "$tmp/move.times" | median)

printf '%-34s %10s %10s %10s\n' "endpoint set-up + tear-down (ms)" "set-up" "tear-down" "total"
printf '%-34s %10s %10s %10s\n' "ip -batch (3 invocations)" "$ip_up" "$ip_down" "$ip_total"
printf '%-34s %10s %10s %10s\n' "hcs library (libhcs)" "$lib_up" "$lib_down" "$lib_total"
printf '%-34s %10s %10s %10s\n' "hcs CLI (4 invocations)" "" "" "$cli_total"
printf '%-34s %10s %10s %10s\n' "alternating: ip -batch" "$altip_up" "$altip_down" "$altip_total"
printf '%-34s %10s %10s %10s\n' "alternating: hcs library" "$alt_up" "$alt_down" "$alt_total"
awk -v h="$lib_total" -v p="$ip_total" 'BEGIN {printf "ratio hcs/ip (library, total): %.2fx (target <= 0.40x)\n", h/p}'
awk -v h="$alt_total" -v p="$altip_total" 'BEGIN {printf "ratio hcs/ip (library, alternating): %.2fx\n", h/p}'
awk -v h="$cli_total" -v p="$ip_total" 'BEGIN {printf "ratio hcs/ip (CLI, total):     %.2fx\n", h/p}'
echo "veth + move into a netns (2 ip runs): $move ms; veth created in the netns (1 ip run): $inplace ms"
echo "medians of $n iterations (CLI: $cli_n)"
