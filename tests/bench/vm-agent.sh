#!/usr/bin/env bash
# VM guest agent benchmark: boot to agent ready and /bin/true round trips
# through hcs-agent (tests/bench/vm_agent_bench.c, the libhcs agent client),
# against the same QEMU command line and kernel driven by a plain serial
# console script (tests/bench/vm_serial_peer.py: a busybox `while read`
# loop as /init).  QEMU with TCG (KVM does not boot guests on this host,
# issue 13).  Alternates one hcs and one peer boot per iteration, so both
# see the same load on a shared machine; prints medians.
#   tests/bench/vm-agent.sh [BUILD_DIR] [BOOTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
boots=${2:-5}
rounds=${3:-20}
for t in qemu-system-x86_64 python3 cpio gzip; do command -v $t >/dev/null || { echo "vm-agent.sh: $t missing" >&2; exit 1; }; done
[ -x "$build/hcs" ] && [ -x "$build/tests/vm_agent_bench" ] || { echo "vm-agent.sh: build hcs first ($build)" >&2; exit 1; }
kernel=$(ls /boot/vmlinuz-* | sort | tail -n 1)
version=${kernel#/boot/vmlinuz-}

work=$(mktemp -d /tmp/hcs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# hcs: the initramfs `hcs vm initrd` builds.
"$build/hcs" vm initrd --kernel-modules /lib/modules --kernel "$version" -o "$work/hcs.gz" >/dev/null
# peer: busybox and a shell loop on the console.
mkdir -p "$work/peer/bin" "$work/peer/dev" "$work/peer/proc"
cp /bin/busybox "$work/peer/bin/busybox"
cat > "$work/peer/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s /bin
echo READY
while read -r line; do eval "$line"; echo "DONE $?"; done
INIT
chmod 755 "$work/peer/init"
(cd "$work/peer" && find . | cpio -o -H newc --quiet | gzip -6) > "$work/peer.gz"
ls -l "$work/hcs.gz" "$work/peer.gz" | awk '{print "# initramfs " $NF ": " $5 " bytes"}'

for i in $(seq "$boots"); do
  "$build/tests/vm_agent_bench" "$kernel" "$work/hcs.gz" "$rounds"
  python3 tests/bench/vm_serial_peer.py "$kernel" "$work/peer.gz" "$rounds"
done | tee "$work/samples" >&2

python3 - "$work/samples" "$boots" "$rounds" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, ready, rt = line.split()
    r = rows.setdefault(who, {"ready": [], "rt": []})
    r["ready"].append(float(ready.split("=")[1]))
    r["rt"] += [float(x) for x in rt.split("=")[1].split(",")]
print(f"accelerator: tcg; {sys.argv[2]} boots each, {sys.argv[3]} round trips per boot (medians)")
print(f"{'':8} {'boot to ready ms':>18} {'/bin/true round trip ms':>25}")
for who in ("hcs", "serial"):
    r = rows.get(who)
    if r:
        print(f"{who:8} {statistics.median(r['ready']):18.0f} {statistics.median(r['rt']):25.2f}")
if "hcs" in rows and "serial" in rows:
    h, s = rows["hcs"], rows["serial"]
    print(f"{'hcs/serial':8} {statistics.median(h['ready']) / statistics.median(s['ready']):18.2f}"
          f" {statistics.median(h['rt']) / statistics.median(s['rt']):25.2f}")
PY
