#!/usr/bin/env python3
# A/B of `hcs create` (an idle system, no network) between two builds on one
# state root, with no other system and then with N idle systems (not in CI;
# root): per build, alternating, ITER creates at each count; medians of the
# wall time, the CPU of the creator and the children it waited for
# (rusage), and the CPU of the monitor and init so far (/proc/PID/schedstat:
# the monitor's clone3, where init's mount namespace is copied, and init's
# pivot_root are not in the creator's rusage):
#   tests/bench/create_ab.py OLD_BUILD NEW_BUILD [N] [ITER]
import json, os, subprocess, sys, tempfile, time, statistics
src = os.path.realpath(os.path.join(os.path.dirname(__file__), "../.."))
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
ITER = int(sys.argv[4]) if len(sys.argv) > 4 else 12
builds = {"old": os.path.realpath(sys.argv[1]), "new": os.path.realpath(sys.argv[2])}
work = tempfile.mkdtemp(prefix="hcs-test.createab.", dir="/tmp")
run = tempfile.mkdtemp(prefix="hcs-test.createab-run.", dir="/dev/shm")
parent = "hcs-test-createab-" + work.rsplit(".", 1)[1]
def env(b):
    e = dict(os.environ, HCS_ROOT=work + "/root", HCS_RUN_ROOT=run, HCS_MONITOR=builds[b] + "/hcs-monitor")
    return e
def sh(b, *args, check=True):
    return subprocess.run([builds[b] + "/hcs"] + list(args), env=env(b), check=check, capture_output=True, text=True)
def sched(pid):
    try:
        return int(open(f"/proc/{pid}/schedstat").read().split()[0]) / 1e6
    except OSError:
        return float("nan")
tar = subprocess.check_output([src + "/scripts/make-base-image", "--tar-only", work + "/busybox.tar"], text=True).strip()
sh("new", "image", "install-os", tar, "--name", "busybox")
IDLE = ["sleep", "2147483647"]
def probe(tag):
    res = {b: [] for b in builds}
    for i in range(ITER):
        for b in (list(builds) if i % 2 == 0 else list(builds)[::-1]):
            name = f"p-{b}-{i}"
            t0 = time.perf_counter()
            p = subprocess.Popen([builds[b] + "/hcs", "create", "--name", name, "--cgroup-parent", parent, "busybox"] + IDLE,
                                 env=env(b), stdout=subprocess.DEVNULL)
            _, st, ru = os.wait4(p.pid, 0)
            wall = (time.perf_counter() - t0) * 1000
            assert st == 0, name
            info = json.loads(sh(b, "inspect", name, "--json").stdout)
            info = info[0] if isinstance(info, list) else info
            mon, init = sched(info.get("MonitorPid")), sched(info.get("Pid"))
            res[b].append((wall, (ru.ru_utime + ru.ru_stime) * 1000, mon, init))
            sh(b, "rm", "-f", name)
    for b, v in res.items():
        med = [statistics.median(x[k] for x in v) for k in range(4)]
        print(f"  n={tag:5} {b:4} {builds[b]}: create wall {med[0]:6.1f} ms  creator CPU {med[1]:5.1f} ms  monitor CPU {med[2]:5.2f} ms  init CPU {med[3]:5.2f} ms  total CPU {med[1]+med[2]+med[3]:5.1f} ms")
    print("  load average:", os.getloadavg())
try:
    probe(0)
    t0 = time.time()
    for i in range(N):
        sh("new", "create", "--name", f"d{i}", "--cgroup-parent", parent, "busybox", *IDLE)
        sh("new", "start", f"d{i}")
    print(f"  {N} systems in {time.time() - t0:.0f} s; host mounts: {sum(1 for _ in open('/proc/self/mountinfo'))}")
    probe(N)
finally:
    ids = sh("new", "list", "-q", check=False).stdout.split()
    for i in range(0, len(ids), 50):
        sh("new", "rm", "-f", *ids[i:i + 50], check=False)
    sh("new", "image", "rm", "-f", "busybox", check=False)
    subprocess.call(["rm", "-rf", work, run])
    subprocess.call(f"find /sys/fs/cgroup -maxdepth 2 -type d -name {parent} -exec rmdir {{}} + 2>/dev/null", shell=True)
