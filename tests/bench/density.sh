#!/usr/bin/env bash
# Density benchmark (issue #17): what a host pays per idle system, and
# whether operations stay flat as systems, endpoints and port mappings pile
# up.  Not run in CI.  Needs root, podman, runc (scripts/bootstrap --bench).
#   tests/bench/density.sh [BUILD_DIR] [N] [K]
# N (default 1000): systems in each ramp; K (default 10): systems of each
# tool in the side-by-side monitor measurement.  Prints:
# 1. monitor memory, hcs-monitor vs conmon: K idle busybox systems of each,
#    started alternately (`hcs run -d`, `podman run -d` of the same image,
#    imported from one archive), RSS and PSS from /proc/PID/smaps_rollup;
# 2. two ramps to N idle systems (without, then with an endpoint each on one
#    NAT network, the first 500 with a port mapping): at 0, 100, 500, 1000
#    (and N), memory per system (monitor PSS/RSS; MemTotal-MemAvailable,
#    Slab, KernelStack, PageTables from /proc/meminfo; the cgroup parent's
#    memory and kmem usage) and, per operation on a probe system, the median
#    of 5 runs of its wall time and of its CPU time (user+sys of the command
#    and the children it waited for, from getrusage: far less sensitive to
#    other work on the machine), with the ratio n=N / n=0: create, start,
#    exec, inspect, list -q (and its cost per system), ps ID, stop, rm;
#    endpoint create/rm with and without a port mapping, port mapping
#    add/remove on an existing endpoint (the modify request); and the
#    kernel's share by hand ("k:" rows, the floor): a cgroup leaf mkdir+rmdir
#    under the systems' parent, `unshare -m` (a copy of the mount table),
#    a veth plugged into the network's bridge and out, a veth whose end is
#    a port of the bridge deleted (rm's kernel share);
# 3. podman: as many `podman run -d` as it reaches in the time hcs took for
#    its N, with conmon's memory and podman's run/exec/ps/stop/rm times;
# vm (only when DENSITY_PARTS names it): K idle VMs (TCG, Debian's kernel
#    and the hcs initramfs, one `hcs exec` each through the monitor's
#    relay) beside K conmons and K VMs whose monitor stays a fork of the
#    creator (HCS_MONITOR pointing nowhere: how every VM monitor was before
#    it exec'd hcs-monitor), started alternately; RSS, PSS, PSS anon and
#    PSS file of each kind's monitor (QEMU aside);
# then removes everything and runs scripts/check-leaks.
# HCS_MONITOR may name another hcs-monitor build (e.g. a dynamic one);
# DENSITY_PARTS (default "monitor plain net podman", or any of these and
# "vm") selects the parts.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
n=${2:-1000}
k=${3:-10}
hcs=$build/hcs
for t in podman runc python3; do command -v $t >/dev/null || { echo "density.sh: $t missing" >&2; exit 1; }; done
[ -x "$hcs" ] || { echo "density.sh: build hcs first ($hcs)" >&2; exit 1; }

# Names under hcs-test* so scripts/check-leaks sees anything left behind.
work=$(mktemp -d /tmp/hcs-test.density.XXXXXX)
export HCS_ROOT=$work/root HCS_RUN_ROOT HCS_MONITOR=${HCS_MONITOR:-$build/hcs-monitor}
HCS_RUN_ROOT=$(mktemp -d /dev/shm/hcs-test.density-run.XXXXXX)
parent=hcs-test-density-${work##*.}
podman=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver overlay --log-level error)
cleanup() {
  "${podman[@]}" rm -af -t 0 >/dev/null 2>&1 || true
  "${podman[@]}" system reset -f >/dev/null 2>&1 || true
  for id in $("$hcs" list -q 2>/dev/null); do "$hcs" rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $("$hcs" endpoint ls -q 2>/dev/null); do "$hcs" endpoint rm "$id" >/dev/null 2>&1 || true; done
  ip link del vhdensfloor0 >/dev/null 2>&1 || true
  ip link del vhdensk0 >/dev/null 2>&1 || true
  "$hcs" network rm densnet >/dev/null 2>&1 || true
  "$hcs" image rm -f busybox >/dev/null 2>&1 || true
  rm -rf "$work" "$HCS_RUN_ROOT"
  find /sys/fs/cgroup -maxdepth 2 -type d -name "$parent" -exec rmdir {} + 2>/dev/null || true
}
trap cleanup EXIT

links_before=$(ip -o link show | awk -F': ' '{print $2}' | grep -cE '^(hcs|vh)' || true)
tar=$(scripts/make-base-image --tar-only "$work/busybox.tar")
"${podman[@]}" import "$tar" localhost/busybox:latest >/dev/null
"$hcs" image install-os "$tar" --name busybox >/dev/null
"$hcs" network create --name densnet --type NAT --subnet 10.231.0.0/21 >/dev/null

# A veth whose end is plugged into the network's bridge by hand (the
# kernel's share of an endpoint), removed by cleanup.
ip link add vhdensfloor0 type veth peer name vhdensfloor1
ip link set vhdensfloor0 up

# Port mapping add/remove on an existing endpoint (the modify request; the
# CLI has no verb for it): hcs pm.lua ENDPOINT Add|Remove HOST:CTR
cat >"$work/pm.lua" <<'LUA'
local hcs = require "hcs"
local ep, how, map = ...
assert(hcs.net.endpoint.modify(ep, { RequestType = how, ResourceType = "Policy",
  Settings = { Policies = { hcs.net.port_mapping(map) } } }))
LUA

# The VM part's guest: the newest kernel in /boot and the hcs initramfs.
if [[ " ${DENSITY_PARTS:-} " == *" vm "* ]]; then
  export DENSITY_VM_KERNEL DENSITY_VM_INITRD=$work/agent-initrd.gz
  DENSITY_VM_KERNEL=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
  "$hcs" vm initrd --kernel-modules /lib/modules --kernel "${DENSITY_VM_KERNEL#/boot/vmlinuz-}" \
    -o "$DENSITY_VM_INITRD" >/dev/null
fi

python3 - "$hcs" "$n" "$k" "$parent" "$HCS_RUN_ROOT" "$work/pm.lua" "${podman[@]}" <<'PY'
import json, os, resource, statistics, subprocess, sys, time
hcs, n, k, parent, run_root, PM, podman = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5],
                                           sys.argv[6], sys.argv[7:])
parts = os.environ.get("DENSITY_PARTS", "monitor plain net podman").split()
IDLE = ["sleep", "2147483647"]
PODMAN_RUN = podman + ["run", "-d", "--runtime", "runc", "--network", "none", "--ulimit", "nofile=1024:1024",
                       "--ulimit", "nproc=1024:1024"]

def sh(argv, check=True):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        sys.exit(f"density.sh: {' '.join(argv)}: {r.returncode}: {r.stderr.strip()}")
    return r

def timed(argv, check=True):
    # Wall time, and CPU time (user+sys) of the command and every descendant
    # it waited for: the load of other work on the machine changes the
    # first far more than the second.
    r0, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = sh(argv, check)
    dt, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    timed.cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return dt, r

def smaps(pid):
    out = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            f = line.split()
            if f[0] in ("Rss:", "Pss:", "Pss_Anon:", "Pss_File:"):
                out[f[0][:-1]] = int(f[1])
    except OSError:
        pass
    return out

def monitor_pid(cid):
    return json.load(open(f"{run_root}/compute/{cid}/state.json"))["MonitorPid"]

def conmon_pid(cid):
    return int(sh(podman + ["inspect", "--format", "{{.State.ConmonPid}}", cid]).stdout)

def meminfo():
    m = {}
    for line in open("/proc/meminfo"):
        key, val = line.split(":")
        m[key] = int(val.split()[0])
    m["Used"] = m["MemTotal"] - m["MemAvailable"]
    return m

def cgroup_mem():
    for d, files in ((f"/sys/fs/cgroup/memory/{parent}", ("memory.usage_in_bytes", "memory.kmem.usage_in_bytes")),
                     (f"/sys/fs/cgroup/{parent}", ("memory.current", None))):
        try:
            use = int(open(f"{d}/{files[0]}").read()) // 1024
            kmem = int(open(f"{d}/{files[1]}").read()) // 1024 if files[1] else None
            if kmem is None:
                for line in open(f"{d}/memory.stat"):
                    if line.startswith("kernel "):
                        kmem = int(line.split()[1]) // 1024
            return use, kmem
        except OSError:
            continue
    return None, None

def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")

def settle():
    # hcs-monitor unmaps its read-only pages a second after it starts.
    time.sleep(2)

# --- 1. monitor memory side by side ------------------------------------------
if "monitor" in parts and k > 0:
    hids, pids = [], []
    for i in range(k):
        hids.append(sh([hcs, "run", "-d", "--name", f"side{i}", "--cgroup-parent", parent, "busybox"] + IDLE).stdout.strip())
        pids.append(sh(PODMAN_RUN + ["--name", f"side{i}", "localhost/busybox"] + IDLE).stdout.strip())
    settle()
    hm = [smaps(monitor_pid(c)) for c in hids]
    cm = [smaps(conmon_pid(c)) for c in pids]
    exe = os.readlink(f"/proc/{monitor_pid(hids[0])}/exe")
    print(f"1. monitor memory, {k} idle systems each (kB, mean per monitor; hcs-monitor: {exe})")
    print(f"   {'':12} {'RSS':>7} {'PSS':>7} {'PSS anon':>9} {'PSS file':>9}")
    for name, ms in (("hcs-monitor", hm), ("conmon", cm)):
        print(f"   {name:12} {mean([m['Rss'] for m in ms]):7.0f} {mean([m['Pss'] for m in ms]):7.0f}"
              f" {mean([m['Pss_Anon'] for m in ms]):9.0f} {mean([m['Pss_File'] for m in ms]):9.0f}")
    print(f"   ratio hcs/conmon: RSS {mean([m['Rss'] for m in hm]) / mean([m['Rss'] for m in cm]):.2f},"
          f" PSS {mean([m['Pss'] for m in hm]) / mean([m['Pss'] for m in cm]):.2f} (target <= 0.5)")
    sh([hcs, "rm", "-f"] + hids)
    sh(podman + ["rm", "-f", "-t", "0"] + pids)

# --- vm. VM monitors beside conmon -------------------------------------------
if "vm" in parts and k > 0:
    doc = {"Owner": "density", "Linux": {"CgroupParent": parent},
           "VirtualMachine": {"StopOnReset": True, "ComputeTopology": {"Memory": {"SizeInMB": 256}},
                              "Chipset": {"LinuxKernelDirect": {
                                  "KernelFilePath": os.environ["DENSITY_VM_KERNEL"],
                                  "InitRdPath": os.environ["DENSITY_VM_INITRD"],
                                  "KernelCmdLine": "console=ttyS0 quiet panic=-1"}}}}
    doc_path = os.path.join(os.path.dirname(os.environ["DENSITY_VM_INITRD"]), "vm.json")
    json.dump(doc, open(doc_path, "w"))
    env = dict(os.environ, HCS_VM_ACCEL="tcg")
    fork_env = dict(env, HCS_MONITOR="/nonexistent/hcs-monitor")
    def vm(argv, e=env):
        r = subprocess.run(argv, env=e, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"density.sh: {' '.join(argv)}: {r.returncode}: {r.stderr.strip()}")
        return r.stdout.strip()
    vms, forks, pids = [], [], []
    for i in range(k):
        for name, e, into in ((f"vm{i}", env, vms), (f"vmfork{i}", fork_env, forks)):
            vm([hcs, "create", "--name", name, doc_path], e)
            vm([hcs, "start", name], e)
            into.append(name)
        pids.append(sh(PODMAN_RUN + ["--name", f"vmside{i}", "localhost/busybox"] + IDLE).stdout.strip())
    # One process each through the monitor's relay (it waits for the boot).
    for name in vms + forks:
        vm([hcs, "exec", name, "/bin/true"])
    settle()
    rows = (("hcs-monitor --vm", [smaps(monitor_pid(c)) for c in vms]),
            ("VM monitor fork", [smaps(monitor_pid(c)) for c in forks]),
            ("conmon", [smaps(conmon_pid(c)) for c in pids]))
    exe = os.readlink(f"/proc/{monitor_pid(vms[0])}/exe")
    print(f"vm. VM monitor memory, {k} idle VMs (TCG, agent ready) of each kind beside {k} conmons"
          f" (kB, mean per monitor; hcs-monitor: {exe})")
    print(f"   {'':17} {'RSS':>7} {'PSS':>7} {'PSS anon':>9} {'PSS file':>9}")
    for name, ms in rows:
        print(f"   {name:17} {mean([m['Rss'] for m in ms]):7.0f} {mean([m['Pss'] for m in ms]):7.0f}"
              f" {mean([m['Pss_Anon'] for m in ms]):9.0f} {mean([m['Pss_File'] for m in ms]):9.0f}")
    hm, cm = rows[0][1], rows[2][1]
    print(f"   ratio hcs-monitor --vm / conmon: RSS {mean([m['Rss'] for m in hm]) / mean([m['Rss'] for m in cm]):.2f},"
          f" PSS {mean([m['Pss'] for m in hm]) / mean([m['Pss'] for m in cm]):.2f} (target <= 0.5)")
    print(f"   load average: {open('/proc/loadavg').read().split()[:3]}")
    sh([hcs, "rm", "-f"] + vms + forks)
    sh(podman + ["rm", "-f", "-t", "0"] + pids)

# --- 2. hcs ramps -------------------------------------------------------------
checkpoints = sorted({c for c in (0, 100, 500, 1000, n) if c <= n})
RUNS = 5

# A cgroup leaf made and removed by hand under the systems' parent, in the
# controllers hcs uses for a system without limits (v1: memory, cpuacct,
# freezer, devices; v2: the unified hierarchy).
if os.path.isdir("/sys/fs/cgroup/memory"):
    CG_DIRS = [f"/sys/fs/cgroup/{c}/{parent}/density-floor" for c in ("memory", "cpuacct", "freezer", "devices")]
else:
    CG_DIRS = [f"/sys/fs/cgroup/{parent}/density-floor"]
CGROUP_LEAF = f"mkdir {' '.join(CG_DIRS)} && rmdir {' '.join(CG_DIRS)}"
BRIDGE = json.loads(sh([hcs, "network", "inspect", "densnet", "--json"]).stdout)["Linux"]["Bridge"]

def probe_ops(net):
    """Median wall and CPU ms of each operation on a probe system (and
    endpoint), RUNS times, the operations of one run in turn."""
    ops = ["create", "start", "exec", "inspect", "list -q", "ps ID", "stop", "rm"]
    if net:
        ops += ["ep create", "ep rm", "ep create -p", "ep rm -p", "pm add", "pm rm"]
    ops += ["k: cgroup leaf", "k: unshare -m"] + (["k: bridge port", "k: veth rm"] if net else [])
    wall, cpu = {op: [] for op in ops}, {op: [] for op in ops}
    extra = ["--network", "densnet"] if net else []
    for i in range(RUNS):
        name, ep = f"probe{i}", f"probe-ep{i}"
        steps = [("create", [hcs, "create", "--name", name, "--cgroup-parent", parent] + extra + ["busybox"] + IDLE),
                 ("start", [hcs, "start", name]),
                 ("exec", [hcs, "exec", name, "/bin/true"]),
                 ("inspect", [hcs, "inspect", name]),
                 ("list -q", [hcs, "list", "-q"]),
                 ("ps ID", [hcs, "ps", name]),
                 ("stop", [hcs, "stop", "-t", "0", name]),
                 ("rm", [hcs, "rm", name])]
        if net:
            steps += [("ep create", [hcs, "endpoint", "create", "--network", "densnet", "--id", ep]),
                      ("ep rm", [hcs, "endpoint", "rm", ep]),
                      ("ep create -p", [hcs, "endpoint", "create", "--network", "densnet", "--id", ep,
                                        "-p", f"{40000 + i}:80"]),
                      ("ep rm -p", [hcs, "endpoint", "rm", ep]),
                      ("ep create", None),
                      ("pm add", [hcs, PM, ep, "Add", f"{41000 + i}:80"]),
                      ("pm rm", [hcs, PM, ep, "Remove", f"{41000 + i}:80"]),
                      ("ep rm", None)]
        # The kernel's share, by hand: the same kernel work as a system's
        # create/rm (its cgroup leaf under the parent the systems share, a
        # bridge port on the network's bridge, a mount namespace copy), so
        # what grows with n there is the floor, not hcs.
        steps += [("k: cgroup leaf", ["sh", "-c", CGROUP_LEAF]), ("k: unshare -m", ["unshare", "-m", "true"])]
        if net:
            # rm's kernel share: deleting a veth whose end is a port of the
            # bridge (made untimed first), as an endpoint's removal does.
            steps += [("k: bridge port", ["sh", "-c", f"ip link set vhdensfloor0 master {BRIDGE} && "
                                                      "ip link set vhdensfloor0 nomaster"]),
                      ("-", ["sh", "-c", "ip link add vhdensk0 type veth peer name vhdensk1 && "
                                         f"ip link set vhdensk0 master {BRIDGE} up"]),
                      ("k: veth rm", ["ip", "link", "del", "vhdensk0"])]
        for op, argv in steps:
            if op == "-":  # untimed set-up of the next step
                sh(argv)
                continue
            if argv is None:  # the endpoint the port mappings are added to, untimed
                argv = [hcs, "endpoint", "create", "--network", "densnet", "--id", ep] if op == "ep create" \
                    else [hcs, "endpoint", "rm", ep]
                sh(argv)
                continue
            dt, _ = timed(argv)
            wall[op].append(dt)
            cpu[op].append(timed.cpu)
    return {op: (statistics.median(wall[op]) * 1000, statistics.median(cpu[op]) * 1000) for op in ops}

def ramp(net):
    label = "with an endpoint each (the first 500 with a port mapping)" if net else "without network"
    print(f"\n2. hcs: {n} idle systems {label}")
    base_mem, ids, fill_time, rows = meminfo(), [], 0.0, []
    for cp in checkpoints:
        t0 = time.perf_counter()
        while len(ids) < cp:
            i = len(ids)
            extra = ["--network", "densnet"] if net else []
            if net and i < 500:
                extra += ["-p", f"{20000 + i}:80"]
            r = sh([hcs, "run", "-d", "--name", f"d{i}", "--cgroup-parent", parent] + extra + ["busybox"] + IDLE, check=False)
            if r.returncode != 0:
                print(f"   system {i + 1} failed: {r.stderr.strip()}")
                break
            ids.append(r.stdout.strip())
        fill_time += time.perf_counter() - t0
        if len(ids) < cp:
            break
        settle()
        row = {"n": cp, "fill_s": fill_time}
        if cp:
            ms = [smaps(monitor_pid(c)) for c in ids]
            mem = meminfo()
            use, kmem = cgroup_mem()
            row.update(rss=mean([m["Rss"] for m in ms]), pss=mean([m["Pss"] for m in ms]),
                       used=(mem["Used"] - base_mem["Used"]) / cp, slab=(mem["Slab"] - base_mem["Slab"]) / cp,
                       kstack=(mem["KernelStack"] - base_mem["KernelStack"]) / cp,
                       ptables=(mem["PageTables"] - base_mem["PageTables"]) / cp,
                       cg=use / cp if use is not None else float("nan"),
                       cgk=kmem / cp if kmem is not None else float("nan"))
        row["ops"] = probe_ops(net)
        rows.append(row)
    print(f"   memory per system (kB): {'n':>5} {'mon RSS':>8} {'mon PSS':>8} {'host used':>10} {'slab':>6}"
          f" {'kstack':>7} {'ptables':>8} {'cgroup':>7} {'cg kmem':>8}")
    for r in rows:
        if r["n"]:
            print(f"   {'':24} {r['n']:5} {r['rss']:8.0f} {r['pss']:8.0f} {r['used']:10.0f} {r['slab']:6.0f}"
                  f" {r['kstack']:7.0f} {r['ptables']:8.0f} {r['cg']:7.0f} {r['cgk']:8.0f}")
    ops = list(rows[0]["ops"])
    for k, what in ((0, "wall"), (1, "CPU (user+sys of the command and its children)")):
        print(f"   median ms per operation at n systems, {what}; ratio: n={rows[-1]['n']} / n=0")
        print("   " + f"{'op':14}" + "".join(f"{r['n']:>9}" for r in rows) + f"{'ratio':>8}")
        for op in ops:
            print("   " + f"{op:14}" + "".join(f"{r['ops'][op][k]:9.1f}" for r in rows)
                  + f"{rows[-1]['ops'][op][k] / rows[0]['ops'][op][k]:8.2f}")
    if rows[-1]["n"]:
        l0, l1 = rows[0]["ops"]["list -q"], rows[-1]["ops"]["list -q"]
        print(f"   list -q per system: wall {(l1[0] - l0[0]) / rows[-1]['n'] * 1000:.1f} us,"
              f" CPU {(l1[1] - l0[1]) / rows[-1]['n'] * 1000:.1f} us;"
              + "".join(f" at {r['n']}: {(r['ops']['list -q'][1] - l0[1]) / r['n'] * 1000:.1f} us CPU" for r in rows[1:]))
    print(f"   load average: {open('/proc/loadavg').read().split()[:3]}")
    print(f"   time to start {len(ids)} systems: {fill_time:.1f} s")
    t0 = time.perf_counter()
    for i in range(0, len(ids), 50):
        sh([hcs, "rm", "-f"] + ids[i:i + 50])
    print(f"   time to remove them: {time.perf_counter() - t0:.1f} s")
    return fill_time

budget = None
if "plain" in parts:
    budget = ramp(False)
if "net" in parts:
    t = ramp(True)
    budget = budget or t
if "podman" not in parts or budget is None:
    sys.exit(0)

# --- 3. podman in the same time ----------------------------------------------
print(f"\n3. podman: as many idle containers as it starts in {budget:.1f} s (hcs's time for {n})")
base_mem, ids, t0 = meminfo(), [], time.perf_counter()
t_run = []
while time.perf_counter() - t0 < budget and len(ids) < n:
    dt, r = timed(PODMAN_RUN + ["--name", f"d{len(ids)}", "localhost/busybox"] + IDLE, check=False)
    if r.returncode != 0:
        print(f"   container {len(ids) + 1} failed: {r.stderr.strip()}")
        break
    t_run.append(dt)
    ids.append(r.stdout.strip())
settle()
cm = [smaps(conmon_pid(c)) for c in ids]
mem = meminfo()
cnt = max(len(ids), 1)
print(f"   reached {len(ids)} (hcs: {n}); conmon RSS {mean([m['Rss'] for m in cm]):.0f} kB,"
      f" PSS {mean([m['Pss'] for m in cm]):.0f} kB; host used {(mem['Used'] - base_mem['Used']) / cnt:.0f} kB,"
      f" slab {(mem['Slab'] - base_mem['Slab']) / cnt:.0f} kB per container")
print(f"   podman run -d: first 10 median {statistics.median(t_run[:10]) * 1000:.0f} ms,"
      f" last 10 median {statistics.median(t_run[-10:]) * 1000:.0f} ms")
ops = {}
for op, argv in (("exec", podman + ["exec", ids[0], "/bin/true"]), ("ps", podman + ["ps", "-q"]),
                 ("inspect", podman + ["inspect", ids[0]])):
    ops[op] = statistics.median([timed(argv)[0] for _ in range(RUNS)]) * 1000
print("   at that count: " + ", ".join(f"{op} {v:.0f} ms" for op, v in ops.items()))
t0 = time.perf_counter()
for i in range(0, len(ids), 50):
    sh(podman + ["rm", "-f", "-t", "0"] + ids[i:i + 50])
print(f"   time to remove them: {time.perf_counter() - t0:.1f} s")
PY
cleanup
trap - EXIT
# scripts/check-leaks is global: other work on the machine may show up in
# it.  What this run made is checked by name.
echo
left=0
[ -z "$(find /sys/fs/cgroup -maxdepth 2 -name "$parent")" ] || { echo "left: cgroup $parent"; left=1; }
[ -z "$(pgrep -f "$work|$HCS_RUN_ROOT" || true)" ] || { echo "left: processes of $work"; left=1; }
[ ! -e "$work" ] && [ ! -e "$HCS_RUN_ROOT" ] || { echo "left: $work or $HCS_RUN_ROOT"; left=1; }
links_after=$(ip -o link show | awk -F': ' '{print $2}' | grep -cE '^(hcs|vh)' || true)
[ "$links_after" -le "$links_before" ] || { echo "left: $((links_after - links_before)) links hcs*/vh*"; left=1; }
[ "$left" = 0 ] && echo "teardown: nothing of this run left (cgroups, processes, roots, links)"
scripts/check-leaks || true
