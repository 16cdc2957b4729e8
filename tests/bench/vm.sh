#!/usr/bin/env bash
# VM benchmark, hcs against the same QEMU driven by hand, side by side in
# one run (iterations alternate peer and hcs: the host is shared).
#  1. boot to ready + shutdown: `hcs create/start`, wait for the guest's
#     console marker, `hcs stop` (ACPI), `hcs rm`  vs  the very QEMU command
#     line hcs ran (read from /proc) started by a plain script, QMP `cont`,
#     the same marker, `system_powerdown`, wait for QEMU to exit.
#  2. save + restore of a 256 MB guest: `hcs vm save`, `hcs rm -f`, `hcs vm
#     restore --start` until the guest counts again  vs  QMP stop, migrate
#     to a file (and fsync it, as hcs does), kill, a new QEMU with
#     -incoming from the file, cont.
#  3. boot to agent ready, run /bin/true, shut down, with the hcs initramfs
#     (`hcs vm initrd`): `hcs create/start`, `hcs exec ID /bin/true` (it
#     waits for the agent), `hcs stop` (ACPI: the agent powers off), `hcs rm`
#     vs  the same QEMU command line started by a plain script that speaks
#     the agent protocol itself (a tiny Python helper on QEMU's chardev:
#     hello, create /bin/true, its exit event), then QMP `system_powerdown`
#     and waits for QEMU to exit.
# In 1 and 2 "ready" is the console marker of tests/tools/vm-initrd.sh's init.
# Usage: tests/bench/vm.sh [ITERATIONS]  (HCS_VM_ACCEL=kvm|tcg to force one;
# VM_BENCH_AGENT_ONLY=1 runs only 3)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
hcs=${HCS_BIN:-$here/build/hcs}
n=${1:-3}
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
work=$(mktemp -d /tmp/hcs-test.vmbench.XXXXXX)
export HCS_ROOT=$work/root
# The plain QEMU runs in a cgroup of its own, as hcs's does: on this shared
# host a VM in the caller's cgroup competes with everything there for its
# CPU share, and the comparison would measure that, not hcs.
cg_dirs=()
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  cg_dirs=(/sys/fs/cgroup/hcs-test-vmbench-$$)
else
  for c in cpu,cpuacct memory pids; do [ -d /sys/fs/cgroup/$c ] && cg_dirs+=(/sys/fs/cgroup/$c/hcs-test-vmbench-$$); done
fi
for d in "${cg_dirs[@]}"; do mkdir -p "$d"; done
run_plain() { # ARGV...: QEMU in the bench's cgroup, in the background
  ( for d in "${cg_dirs[@]}"; do echo "$BASHPID" > "$d/cgroup.procs"; done; exec "$@" >/dev/null 2>&1 ) &
  qpid=$!
}
cleanup() {
  for id in $("$hcs" list -q 2>/dev/null); do "$hcs" rm -f "$id" >/dev/null 2>&1 || true; done
  [ -n "${qpid:-}" ] && kill -9 "$qpid" 2>/dev/null || true
  rm -rf "$work"
  for d in "${cg_dirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT
"$here/tests/tools/vm-initrd.sh" "$work/initrd.gz"
"$hcs" vm initrd --kernel-modules /lib/modules --kernel "${kernel#/boot/vmlinuz-}" -o "$work/agent.gz" >/dev/null

doc() { # MODE MB CONSOLE
  cat <<DOC
{"VirtualMachine": {"StopOnReset": true, "ComputeTopology": {"Memory": {"SizeInMB": $2}},
 "Chipset": {"LinuxKernelDirect": {"KernelFilePath": "$kernel", "InitRdPath": "$work/initrd.gz",
   "KernelCmdLine": "console=ttyS0 quiet panic=-1 hcs.mode=$1"}},
 "Devices": {"ComPorts": {"0": {"Path": "$3"}}}}}
DOC
}

agent_doc() { # CONSOLE
  cat <<DOC
{"VirtualMachine": {"StopOnReset": true, "ComputeTopology": {"Memory": {"SizeInMB": 256}},
 "Chipset": {"LinuxKernelDirect": {"KernelFilePath": "$kernel", "InitRdPath": "$work/agent.gz",
   "KernelCmdLine": "console=ttyS0 quiet panic=-1"}},
 "Devices": {"ComPorts": {"0": {"Path": "$1"}}}}}
DOC
}

now() { date +%s.%N; }
wait_for() { # FILE PATTERN
  for _ in $(seq 1 6000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "vm.sh: timed out waiting for '$2' in $1" >&2; return 1
}

# QMP by hand: one connection, commands in order, waits where asked.
qmp() { # SOCKET CMD...   (CMD: a JSON command, or wait-migrate / wait-running)
  python3 - "$@" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(2000):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.005)
f = s.makefile("rw")
def call(c):
    f.write(json.dumps(c) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            return m
json.loads(f.readline())
call({"execute": "qmp_capabilities"})
for a in sys.argv[2:]:
    if a == "wait-migrate":
        while call({"execute": "query-migrate"})["return"].get("status") not in ("completed", "failed"):
            time.sleep(0.002)
    elif a == "wait-incoming":
        while call({"execute": "query-status"})["return"]["status"] == "inmigrate":
            time.sleep(0.002)
    else:
        r = call(json.loads(a))
        if "error" in r: sys.exit("qmp: %s" % r["error"])
PY
}

# The QEMU command line hcs builds, taken from a live system (so the plain
# script runs exactly what hcs runs), with its sockets moved.
doc counter 256 "$work/probe.log" > "$work/probe.json"
"$hcs" create --name probe "$work/probe.json" >/dev/null
qpid=$("$hcs" inspect probe | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d["Pid"])')
accel=$("$hcs" inspect probe | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d["VirtualMachine"]["Accelerator"])')
mapfile -d '' argv < /proc/"$qpid"/cmdline
qpid=
"$hcs" rm -f probe >/dev/null
agent_doc "$work/probe.log" > "$work/probe-agent.json"
"$hcs" create --name probea "$work/probe-agent.json" >/dev/null
qpid=$("$hcs" inspect probea | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d["Pid"])')
mapfile -d '' agent_argv < /proc/"$qpid"/cmdline
qpid=
"$hcs" rm -f probea >/dev/null
plain_agent_argv() { # DIR CONSOLE
  local a
  for a in "${agent_argv[@]}"; do
    a=${a//$HCS_ROOT\/run\/compute\/probea/$1}
    a=${a//$work\/probe.log/$2}
    printf '%s\0' "$a"
  done
}
plain_argv() { # DIR CONSOLE MODE
  local a
  for a in "${argv[@]}"; do
    a=${a//$HCS_ROOT\/run\/compute\/probe/$1}
    a=${a//$work\/probe.log/$2}
    a=${a//hcs.mode=counter/hcs.mode=$3}
    printf '%s\0' "$a"
  done
}

# The agent's protocol by hand (docs/vm-agent.md): hello until answered,
# create /bin/true, wait for its exit event.
agent_true() { # SOCKET
  python3 - "$1" <<'PY'
import json, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(20000):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.005)
def send(o):
    b = json.dumps(o).encode()
    s.sendall(struct.pack("<HBBII", 0x4148, 1, 0, 0, len(b)) + b)
buf = b""
def frames():
    global buf
    while True:
        while len(buf) >= 12:
            magic, typ, _, stream, n = struct.unpack("<HBBII", buf[:12])
            if magic != 0x4148:
                buf = buf[1:]; continue
            if len(buf) < 12 + n: break
            p, buf = buf[12:12 + n], buf[12 + n:]
            yield typ, p
        d = s.recv(65536)
        if not d: sys.exit("agent gone")
        buf += d
send({"op": "hello", "seq": 0, "nonce": "bench"})
f = frames()
for typ, p in f:
    if typ == 1 and json.loads(p).get("nonce") == "bench": break
send({"op": "create", "seq": 1, "process": {"CommandArgs": ["/bin/true"]}})
for typ, p in f:
    m = json.loads(p) if typ == 1 else {}
    if m.get("seq") == 1 and not m.get("ok"): sys.exit("create: %s" % m.get("error"))
    if m.get("event") == "exit":
        sys.exit(m["code"])
PY
}

agent_hcs() {
  agent_doc "$work/ha.log" > "$work/ha.json"
  local t0; t0=$(now)
  "$hcs" create --name ha "$work/ha.json" >/dev/null
  "$hcs" start ha >/dev/null
  "$hcs" exec ha /bin/true
  "$hcs" stop -t 60 ha >/dev/null
  "$hcs" rm ha >/dev/null
  echo "$(now) - $t0" | bc
}

agent_plain() {
  local d=$work/pa; rm -rf "$d"; mkdir -p "$d"
  local t0; t0=$(now)
  mapfile -d '' a < <(plain_agent_argv "$d" "$work/pa.log")
  run_plain "${a[@]}"
  qmp "$d/qmp.sock" '{"execute":"cont"}'
  agent_true "$d/agent.sock"
  qmp "$d/qmp.sock" '{"execute":"system_powerdown"}'
  wait "$qpid"; qpid=
  echo "$(now) - $t0" | bc
}

boot_hcs() {
  local c=$work/hb.log; rm -f "$c"
  doc idle 256 "$c" > "$work/hb.json"
  local t0; t0=$(now)
  "$hcs" create --name hb "$work/hb.json" >/dev/null
  "$hcs" start hb >/dev/null
  wait_for "$c" HCS-VM-BOOTED
  "$hcs" stop -t 60 hb >/dev/null
  "$hcs" rm hb >/dev/null
  echo "$(now) - $t0" | bc
}

boot_plain() {
  local d=$work/pb c=$work/pb.log; rm -rf "$d" "$c"; mkdir -p "$d"
  local t0; t0=$(now)
  mapfile -d '' a < <(plain_argv "$d" "$c" idle)
  run_plain "${a[@]}"
  qmp "$d/qmp.sock" '{"execute":"cont"}'
  wait_for "$c" HCS-VM-BOOTED
  qmp "$d/qmp.sock" '{"execute":"system_powerdown"}'
  wait "$qpid"; qpid=
  echo "$(now) - $t0" | bc
}

save_restore_hcs() {
  local c=$work/hs.log; rm -f "$c" "$work/hs.state"
  doc counter 256 "$c" > "$work/hs.json"
  "$hcs" create --name hs "$work/hs.json" >/dev/null
  "$hcs" start hs >/dev/null
  wait_for "$c" "tick 3"
  local t0; t0=$(now)
  "$hcs" vm save hs "$work/hs.state" >/dev/null
  "$hcs" rm -f hs >/dev/null
  : > "$c"
  "$hcs" vm restore --name hs --start "$work/hs.state" >/dev/null
  wait_for "$c" tick
  local t; t=$(echo "$(now) - $t0" | bc)
  "$hcs" rm -f hs >/dev/null
  echo "$t"
}

save_restore_plain() {
  local d=$work/ps c=$work/ps.log; rm -rf "$d" "$c" "$work/ps.state"; mkdir -p "$d"
  mapfile -d '' a < <(plain_argv "$d" "$c" counter)
  run_plain "${a[@]}"
  qmp "$d/qmp.sock" '{"execute":"cont"}'
  wait_for "$c" "tick 3"
  local t0; t0=$(now)
  qmp "$d/qmp.sock" '{"execute":"stop"}' \
    "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $work/ps.state\"}}" wait-migrate
  sync "$work/ps.state" # hcs makes the saved state durable before it names it
  kill -9 "$qpid"; wait "$qpid" 2>/dev/null || true
  rm -f "$d"/*.sock; : > "$c"
  run_plain "${a[@]}" -incoming "exec:cat $work/ps.state"
  qmp "$d/qmp.sock" wait-incoming '{"execute":"cont"}'
  wait_for "$c" tick
  local t; t=$(echo "$(now) - $t0" | bc)
  kill -9 "$qpid"; wait "$qpid" 2>/dev/null || true; qpid=
  echo "$t"
}

echo "accelerator: $accel ($("$hcs" vm accel))"
sum() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print("%.3f" % (sorted(v)[len(v)//2]))' "$@"; }
bp=() bh=() sp=() sh=() ap=() ah=()
for i in $(seq 1 "$n"); do
  if [ -z "${VM_BENCH_AGENT_ONLY:-}" ]; then
    bp+=("$(boot_plain)"); bh+=("$(boot_hcs)")
    sp+=("$(save_restore_plain)"); sh+=("$(save_restore_hcs)")
    echo "iteration $i: boot+shutdown plain ${bp[-1]} s, hcs ${bh[-1]} s; save+restore plain ${sp[-1]} s, hcs ${sh[-1]} s"
  fi
  ap+=("$(agent_plain)"); ah+=("$(agent_hcs)")
  echo "iteration $i: agent ready + /bin/true + shutdown plain ${ap[-1]} s, hcs ${ah[-1]} s"
done
mapl=$(sum "${ap[@]}") mahc=$(sum "${ah[@]}")
printf 'boot to agent ready + /bin/true + shutdown (median of %d): plain %s s, hcs %s s, ratio %.2f\n' "$n" "$mapl" "$mahc" "$(echo "$mahc / $mapl" | bc -l)"
[ -n "${VM_BENCH_AGENT_ONLY:-}" ] && exit 0
mbp=$(sum "${bp[@]}") mbh=$(sum "${bh[@]}") msp=$(sum "${sp[@]}") msh=$(sum "${sh[@]}")
printf 'boot to ready + shutdown (median of %d): plain %s s, hcs %s s, ratio %.2f\n' "$n" "$mbp" "$mbh" "$(echo "$mbh / $mbp" | bc -l)"
printf 'save + restore, 256 MB guest (median of %d): by hand %s s, hcs %s s, ratio %.2f\n' "$n" "$msp" "$msh" "$(echo "$msh / $msp" | bc -l)"
