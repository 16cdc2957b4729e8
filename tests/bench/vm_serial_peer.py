#!/usr/bin/env python3
"""One sample of tests/bench/vm-agent.sh, the peer: the same QEMU command
line with an initramfs whose /init is a busybox shell loop on the serial
console (ttyS0 on QEMU's stdio).  Times boot to the loop's READY line, then
ROUNDS round trips of /bin/true (a command line in, "DONE <status>" out).
Prints "serial ready_ms=N rt_ms=M1,M2,...".
  vm_serial_peer.py KERNEL INITRD ROUNDS"""
import os
import select
import subprocess
import sys
import tempfile
import time

kernel, initrd, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = tempfile.mkdtemp(prefix="hcs-bench.serial.")
sock = os.path.join(d, "agent.sock")
t0 = time.monotonic()
q = subprocess.Popen(
    ["qemu-system-x86_64", "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1",
     "-nographic", "-m", "256", "-accel", "tcg", "-no-reboot", "-nodefaults", "-serial", "stdio",
     "-chardev", f"socket,id=hcsagent,path={sock},server=on,wait=off", "-device", "virtio-serial-pci",
     "-device", "virtserialport,chardev=hcsagent,name=org.hcs.agent"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
buf = b""


def wait_for(marker, limit=300):
    global buf
    end = time.monotonic() + limit
    while marker not in buf:
        if time.monotonic() > end or q.poll() is not None:
            raise SystemExit(f"vm_serial_peer: no {marker!r} (got {buf[-200:]!r})")
        r, _, _ = select.select([q.stdout], [], [], 1)
        if r:
            buf += os.read(q.stdout.fileno(), 65536)
    buf = buf[buf.index(marker) + len(marker):]


try:
    wait_for(b"READY")
    ready = (time.monotonic() - t0) * 1e3
    rts = []
    for i in range(rounds):
        t = time.monotonic()
        q.stdin.write(b"/bin/true\n")
        q.stdin.flush()
        wait_for(b"DONE 0")
        rts.append((time.monotonic() - t) * 1e3)
    print(f"serial ready_ms={ready:.1f} rt_ms=" + ",".join(f"{x:.2f}" for x in rts))
finally:
    q.kill()
    q.wait()
    subprocess.run(["rm", "-rf", d])
