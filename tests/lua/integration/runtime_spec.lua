-- hcs-runtime, the OCI runtime: runc's command line on real bundles (a
-- busybox rootfs and config.json), and the bad inputs each refused with a
-- clear error that leaves nothing behind.
local u = require "spec_util"
local json = require("hcs").json

describe("hcs-runtime #root", function()
  local root, bundle, state, parent
  local bin = u.build_dir .. "/hcs-runtime"

  local function rt(...)
    local args = { ... }
    local parts = { u.quote(bin), "--root", u.quote(state) }
    for _, a in ipairs(args) do parts[#parts + 1] = u.quote(a) end
    -- A created or detached container keeps the stdio it was given: not
    -- the pipe this helper reads to its end.
    local detached = args[1] == "create" or (args[1] == "run" and args[2] == "-d")
    return u.run(table.concat(parts, " ") .. (detached and " </dev/null >/dev/null" or ""))
  end

  -- A config.json from `hcs-runtime spec`, changed by `edit(config)`.
  local function write_config(edit)
    u.run("rm -f " .. u.quote(bundle .. "/config.json"))
    local ok, _, _, err = u.run(("cd %s && %s spec"):format(u.quote(bundle), u.quote(bin)))
    assert.is_true(ok, err)
    local c = json.decode(u.read_file(bundle .. "/config.json"))
    c.process.terminal = false
    c.root.readonly = false
    c.linux.cgroupsPath = "/" .. parent .. "/x"
    if edit then edit(c) end
    u.write_file(bundle .. "/config.json", json.encode(c))
  end

  -- Nothing of a failed or deleted container may be left.
  local function assert_nothing_left()
    local _, _, out = rt("list", "-q")
    assert.equal("", out)
    local _, _, files = u.run("ls -A " .. u.quote(state .. "/oci") .. " " .. u.quote(state .. "/run/compute") ..
      " 2>/dev/null | grep -v ':$' | grep -v '^$'")
    assert.equal("", files)
    local _, _, cg = u.run("find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*/" .. parent .. "/*'")
    assert.equal("", cg)
  end

  setup(function()
    root = u.tmpdir()
    bundle = root .. "/bundle"
    state = root .. "/state"
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, bundle .. "/rootfs")))
    parent = "hcs-test-rt-" .. root:match("hcs%-test%.(.*)$")
  end)

  teardown(function()
    local _, _, out = rt("list", "-q")
    for id in out:gmatch("%S+") do rt("delete", "--force", id) end
    u.rmtree(root)
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
  end)

  it("run passes init's output and exit status and deletes the container", function()
    write_config(function(c)
      c.process.args = { "/bin/sh", "-c", "echo out; hostname; exit 3" }
      c.hostname = "box"
    end)
    local ok, code, out, err = u.run(("cd %s && %s --root %s run r1"):format(u.quote(bundle), u.quote(bin),
      u.quote(state)))
    assert.is_false(ok, err)
    assert.equal(3, code)
    assert.equal("out\nbox\n", out)
    assert_nothing_left()
  end)

  it("create, state, start, ps, exec, pause, resume, kill and delete", function()
    write_config(function(c) c.process.args = { "/bin/sleep", "100" } end)
    local ok, _, _, err = rt("create", "--bundle", bundle, "--pid-file", root .. "/pid", "c1")
    assert.is_true(ok, err)
    local _, _, out = rt("state", "c1")
    local st = json.decode(out)
    assert.equal("created", st.status)
    assert.equal("c1", st.id)
    assert.equal(bundle, st.bundle)
    assert.equal(tostring(st.pid), u.read_file(root .. "/pid"))
    ok, _, _, err = rt("start", "c1")
    assert.is_true(ok, err)
    assert.equal("running", json.decode(select(3, rt("state", "c1"))).status)
    -- a second start is refused
    local _, code, _, err2 = rt("start", "c1")
    assert.equal(1, code)
    assert.matches("cannot start a container that is running", err2)
    local _, _, pids = rt("ps", "--format", "json", "c1")
    assert.same({ st.pid }, json.decode(pids))
    local _, ecode, eout = rt("exec", "c1", "/bin/sh", "-c", "echo in $(cat /proc/1/cmdline | tr '\\0' ' '); exit 7")
    assert.equal(7, ecode)
    assert.equal("in /bin/sleep 100\n", eout)
    -- exec --process FILE (the form podman and containerd use)
    u.write_file(root .. "/proc.json", json.encode({ args = { "/bin/sh", "-c", "echo $FOO; pwd" },
      env = { "FOO=bar" }, cwd = "/tmp", user = { uid = 1000, gid = 1000 } }))
    local _, pcode, pout = rt("exec", "--process", root .. "/proc.json", "c1")
    assert.equal(0, pcode)
    assert.equal("bar\n/tmp\n", pout)
    assert.is_true((rt("pause", "c1")))
    assert.equal("paused", json.decode(select(3, rt("state", "c1"))).status)
    assert.is_true((rt("resume", "c1")))
    -- delete without --force refuses a running container
    local _, dcode, _, derr = rt("delete", "c1")
    assert.equal(1, dcode)
    assert.matches("cannot delete container c1 that is not stopped: running", derr)
    assert.is_true((rt("kill", "c1", "KILL")))
    local stopped
    for _ = 1, 200 do
      stopped = json.decode(select(3, rt("state", "c1"))).status == "stopped"
      if stopped then break end
      u.run("sleep 0.05")
    end
    assert.is_true(stopped)
    local _, kcode, _, kerr = rt("kill", "c1", "TERM")
    assert.equal(1, kcode)
    assert.matches("not running", kerr)
    assert.is_true((rt("delete", "c1")))
    local _, scode, _, serr = rt("state", "c1")
    assert.equal(1, scode)
    assert.matches("container `c1` does not exist", serr)
    assert_nothing_left()
  end)

  -- Under load, `start` can be preempted right after it let init exec: a
  -- short command runs, exits and is reaped by the subreaper (the
  -- containerd shim), and its monitor records the exit and goes, before
  -- `start` looks for a live process (containerd's `ctr run --rm` failed
  -- with "has no live process").  HCS_PAUSE_AT stops `start` in that window
  -- until init is reaped and the monitor is done.
  it("start succeeds when the command exited and was reaped before start returns", function()
    write_config(function(c) c.process.args = { "/bin/sh", "-c", "exit 3" } end)
    local script = ([[
      rt() { %s --root %s "$@"; }
      rt create --bundle %s --pid-file %s q1 </dev/null >/dev/null || exit 97
      init=$(cat %s)
      HCS_PAUSE_AT='start: init released' %s --root %s start q1 2>%s & p=$!
      wait_for() { n=0; until eval "$1"; do n=$((n+1)); [ $n -lt 600 ] || { kill -KILL $p; exit 98; }; sleep 0.05; done; }
      wait_for '[ "$(cut -d" " -f3 /proc/$p/stat 2>/dev/null)" = T ]'
      wait_for '[ -e %s ] && [ ! -e /proc/$init ]'
      kill -CONT $p; wait $p
    ]]):format(u.quote(bin), u.quote(state), u.quote(bundle), u.quote(root .. "/q1.pid"), u.quote(root .. "/q1.pid"),
      u.quote(bin), u.quote(state), u.quote(root .. "/start.err"), u.quote(state .. "/run/compute/q1/exit.json"))
    local ok, code = u.run(u.quote(u.build_dir .. "/tests/reaper") .. " sh -c " .. u.quote(script))
    local err = u.read_file(root .. "/start.err") or ""
    assert.matches("paused at `start: init released`", err)
    assert.is_true(ok, ("start exited with %s: %s"):format(tostring(code), err))
    assert.equal("stopped", json.decode(select(3, rt("state", "q1"))).status)
    assert.is_true((rt("delete", "q1")))
    assert_nothing_left()
  end)

  it("kill takes signal names and numbers, --all signals every process", function()
    write_config(function(c) c.process.args = { "/bin/sh", "-c", "trap 'echo usr1 >/tmp/got' USR1; sleep 100 & wait; sleep 100" } end)
    assert.is_true((rt("run", "-d", "--bundle", bundle, "k1")))
    assert.is_true((rt("kill", "k1", "SIGUSR1")))
    local got
    for _ = 1, 100 do
      got = select(3, rt("exec", "k1", "/bin/cat", "/tmp/got"))
      if got ~= "" then break end
      u.run("sleep 0.05")
    end
    assert.equal("usr1\n", got)
    assert.is_true((rt("kill", "--all", "k1", "9")))
    assert.is_true((rt("delete", "--force", "k1")))
    assert_nothing_left()
  end)

  it("update changes the memory and CPU limits, events prints stats", function()
    write_config(function(c) c.process.args = { "/bin/sleep", "100" } end)
    assert.is_true((rt("run", "-d", "--bundle", bundle, "u1")))
    local ok, _, _, err = rt("update", "--memory", tostring(64 * 1024 * 1024), "u1")
    assert.is_true(ok, err)
    u.write_file(root .. "/res.json", json.encode({ memory = { limit = 32 * 1024 * 1024 }, cpu = { shares = 512 } }))
    ok, _, _, err = rt("update", "--resources", root .. "/res.json", "u1")
    assert.is_true(ok, err)
    -- the cgroup has them (v1 memory and cpu, or v2 memory.max and cpu.weight)
    local _, _, mem = u.run("cat /sys/fs/cgroup/memory/" .. parent .. "/u1/memory.limit_in_bytes " ..
      "/sys/fs/cgroup/" .. parent .. "/u1/memory.max 2>/dev/null")
    assert.equal(tostring(32 * 1024 * 1024) .. "\n", mem)
    -- (the pids limit: runtime_join_spec.lua)
    local _, code, _, perr = rt("update", "--pids-limit", "-1", "u1")
    assert.equal(1, code)
    assert.matches("`pids.limit`: expected a positive count", perr)
    local _, _, ev = rt("events", "--stats", "u1")
    local e = json.decode(ev)
    assert.equal("stats", e.type)
    assert.equal("u1", e.id)
    assert.is_true(e.data.memory.usage.usage > 0)
    assert.is_true((rt("delete", "--force", "u1")))
    assert_nothing_left()
  end)

  it("list prints json and the ids", function()
    write_config(function(c) c.process.args = { "/bin/sleep", "100" } end)
    assert.is_true((rt("create", "--bundle", bundle, "l1")))
    local _, _, out = rt("list", "--format", "json")
    local l = json.decode(out)
    assert.equal(1, #l)
    assert.equal("l1", l[1].id)
    assert.equal("created", l[1].status)
    assert.is_true((rt("delete", "--force", "l1")))
    assert_nothing_left()
  end)

  it("applies mounts, a read-only root, rlimits, capabilities, sysctls and the memory limit", function()
    u.run("mkdir -p " .. u.quote(root .. "/data") .. " && echo hostdata > " .. u.quote(root .. "/data/f"))
    write_config(function(c)
      c.root.readonly = true
      c.process.args = { "/bin/sh", "-c", table.concat({
        "cat /data/f", "touch /data/ro 2>/dev/null || echo data-ro", "touch /x 2>/dev/null || echo root-ro",
        "touch /run/ok && echo run-rw", "ulimit -n", "grep CapBnd /proc/self/status",
        "cat /proc/sys/net/ipv4/ip_forward" }, "; ") }
      c.process.rlimits = { { type = "RLIMIT_NOFILE", soft = 321, hard = 321 } }
      c.process.capabilities = { bounding = { "CAP_KILL" }, effective = { "CAP_KILL" }, permitted = { "CAP_KILL" } }
      c.linux.sysctl = { ["net.ipv4.ip_forward"] = "1" }
      c.linux.resources.memory = { limit = 64 * 1024 * 1024 }
      table.insert(c.mounts, { destination = "/data", type = "bind", source = root .. "/data", options = { "rbind", "ro" } })
      table.insert(c.mounts, { destination = "/run", type = "tmpfs", source = "tmpfs", options = { "nosuid", "size=1m" } })
    end)
    local ok, _, out, err = rt("run", "--bundle", bundle, "m1")
    assert.is_true(ok, err)
    assert.equal("hostdata\ndata-ro\nroot-ro\nrun-rw\n321\nCapBnd:\t0000000000000020\n1\n", out)
    assert_nothing_left()
  end)

  it("applies the user's additionalGids and umask, for init and exec --process", function()
    write_config(function(c)
      c.process.user = { uid = 1000, gid = 1000, additionalGids = { 50, 4242 }, umask = 63 }
      c.process.args = { "/bin/sh", "-c", "id -G; umask; sleep 100" }
    end)
    local out = root .. "/ug.out"
    assert.is_true(u.run(("%s --root %s run -d --bundle %s ug1 </dev/null >%s"):format(u.quote(bin), u.quote(state),
      u.quote(bundle), u.quote(out))))
    u.write_file(root .. "/ug.json", json.encode({ args = { "/bin/sh", "-c", "id -G; umask" }, cwd = "/",
      user = { uid = 1000, gid = 1000, additionalGids = { 7 }, umask = 18 } }))
    local _, code, eout = rt("exec", "--process", root .. "/ug.json", "ug1")
    assert.equal(0, code)
    assert.equal("1000 7 50\n0022\n", eout)
    assert.is_true((rt("delete", "--force", "ug1")))
    assert.equal("1000 50 4242\n0077\n", u.read_file(out))
    assert_nothing_left()
  end)

  it("gives a non-root user the ambient capabilities of the five sets", function()
    local nbs = { "CAP_NET_BIND_SERVICE" }
    write_config(function(c)
      c.process.user = { uid = 1000, gid = 1000 }
      c.process.args = { "/bin/sh", "-c", "id -u; grep -E '^Cap(Inh|Eff|Amb|Bnd)' /proc/self/status" }
      c.process.capabilities = { bounding = { "CAP_NET_BIND_SERVICE", "CAP_KILL" }, effective = nbs,
        permitted = nbs, inheritable = nbs, ambient = nbs }
    end)
    local ok, _, out, err = rt("run", "--bundle", bundle, "cap1")
    assert.is_true(ok, err)
    assert.equal("1000\nCapInh:\t0000000000000400\nCapEff:\t0000000000000400\nCapBnd:\t0000000000000420\n" ..
      "CapAmb:\t0000000000000400\n", out)
    assert_nothing_left()
    write_config(function(c)
      c.process.capabilities = { bounding = nbs, permitted = nbs, ambient = nbs }
    end)
    local _, code, _, cerr = rt("create", "--bundle", bundle, "cap2")
    assert.equal(1, code)
    assert.matches('`process.capabilities.ambient%[0%]`: "CAP_NET_BIND_SERVICE" is not also permitted and inheritable',
      cerr)
    assert_nothing_left()
  end)

  it("compiles the seccomp profile: actions, errnoRet, argument conditions", function()
    write_config(function(c)
      c.process.args = { "/bin/sh", "-c", table.concat({
        "mkdir /tmp/d 2>&1 | grep -o 'Permission denied'", "grep Seccomp: /proc/self/status",
        "touch /tmp/m", "chmod 0700 /tmp/m 2>&1 | grep -o 'No such device'", "chmod 0755 /tmp/m && echo mode-ok",
        "touch /tmp/f && echo touched" }, "; ") }
      c.linux.seccomp = { defaultAction = "SCMP_ACT_ALLOW", architectures = { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86" },
        syscalls = {
          { names = { "mkdir", "mkdirat", "no_such_syscall" }, action = "SCMP_ACT_ERRNO", errnoRet = 13 },
          -- chmod(path, mode) and fchmodat(fd, path, mode): refused for 0700 only
          { names = { "chmod" }, action = "SCMP_ACT_ERRNO", errnoRet = 19,
            args = { { index = 1, value = 448, op = "SCMP_CMP_EQ" } } },
          { names = { "fchmodat" }, action = "SCMP_ACT_ERRNO", errnoRet = 19,
            args = { { index = 2, value = 448, op = "SCMP_CMP_EQ" } } } } }
    end)
    local ok, _, out, err = rt("run", "--bundle", bundle, "sc1")
    assert.is_true(ok, err)
    assert.equal("Permission denied\nSeccomp:\t2\nNo such device\nmode-ok\ntouched\n", out)
    assert_nothing_left()
    local _, code, _, err2 = rt("create", "--bundle", bundle, "sc2")
    assert.equal(0, code, err2)
    assert.is_true((rt("delete", "sc2")))
    write_config(function(c)
      c.linux.seccomp = { defaultAction = "SCMP_ACT_ALLOW", syscalls = { { names = { "mkdir" },
        action = "SCMP_ACT_ERRNO", args = { { index = 7, value = 1, op = "SCMP_CMP_EQ" } } } } }
    end)
    local _, code3, _, err3 = rt("create", "--bundle", bundle, "sc3")
    assert.equal(1, code3)
    assert.matches("`linux.seccomp.syscalls%[0%].args%[0%]`: expected {index 0..5", err3)
    assert_nothing_left()
  end)

  it("runs the hooks with the state on stdin", function()
    u.write_file(root .. "/hook.sh", "#!/bin/sh\ncat >> " .. root .. "/hooks.log; echo \" $1\" >> " .. root .. "/hooks.log\n")
    u.run("chmod +x " .. u.quote(root .. "/hook.sh"))
    write_config(function(c)
      c.process.args = { "/bin/true" }
      local function h(name) return { { path = root .. "/hook.sh", args = { "hook.sh", name }, timeout = 5 } } end
      c.hooks = { createRuntime = h("createRuntime"), poststart = h("poststart"), poststop = h("poststop"),
        -- in the container's namespaces: a host (static) binary, and one
        -- resolved in the container
        createContainer = { { path = "/bin/busybox", args = { "sh", "-c", "echo create-$(hostname)" } } },
        startContainer = { { path = "/bin/sh", args = { "sh", "-c", "echo start-$(hostname) $(ls /home)" } } } }
      c.hostname = "hookbox"
    end)
    local ok, _, out, err = rt("run", "--bundle", bundle, "h1")
    assert.is_true(ok, err)
    assert.equal("create-hookbox\nstart-hookbox user\n", out)
    local log = u.read_file(root .. "/hooks.log")
    assert.matches('"id":"h1".-createRuntime.-poststart.-poststop', log)
    assert.matches('"status":"created"', log)
    assert_nothing_left()
  end)

  it("refuses a failing hook at create and removes the container", function()
    write_config(function(c)
      c.hooks = { createRuntime = { { path = "/bin/false" } } }
    end)
    local _, code, _, err = rt("create", "--bundle", bundle, "h2")
    assert.equal(1, code)
    assert.matches("hook `hooks.createRuntime%[0%]` %(`/bin/false`%) exited with status 1", err)
    assert_nothing_left()
  end)

  it("passes the console over --console-socket (SCM_RIGHTS)", function()
    write_config(function(c)
      c.process.terminal = true
      c.process.args = { "/bin/sh", "-c", "tty; echo ok" }
    end)
    -- A receiver in python: accept, take the pty master, read until EOF.
    local py = [[
import socket, array, sys, os
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
msg, anc, flags, addr = c.recvmsg(64, socket.CMSG_LEN(4))
fd = array.array("i", anc[0][2])[0]
out = b""
while True:
    try:
        b = os.read(fd, 1024)
    except OSError:
        break
    if not b: break
    out += b
sys.stdout.write(msg.decode() + " " + out.decode().replace("\r", ""))
]]
    u.write_file(root .. "/recv.py", py)
    local sock = root .. "/console.sock"
    -- (the receiver is waited for, and bounded by a timeout)
    local cmd = ("timeout 30 python3 %s %s > %s & for i in $(seq 200); do grep -q ready %s 2>/dev/null && break; " ..
      "sleep 0.05; done; %s --root %s run --console-socket %s --bundle %s t1; echo rc=$?; wait")
      :format(u.quote(root .. "/recv.py"), u.quote(sock), u.quote(root .. "/recv.out"), u.quote(root .. "/recv.out"),
        u.quote(bin), u.quote(state),
        u.quote(sock), u.quote(bundle))
    local _, _, out = u.run(cmd)
    assert.equal("rc=0\n", out)
    assert.equal("ready\n/dev/ptmx /dev/pts/0\nok\n", u.read_file(root .. "/recv.out"))
    assert_nothing_left()
  end)

  it("never mounts through a destination symlink out of the root (CVE-2021-30465)", function()
    local outside = root .. "/outside"
    u.run("mkdir -p " .. u.quote(outside))
    -- An absolute link and a relative one climbing out: resolved inside the
    -- root (RESOLVE_IN_ROOT) they dangle, so the mount is refused.  A link
    -- to /etc in the middle of the path is the container's /etc.
    u.run("ln -sfn " .. u.quote(outside) .. " " .. u.quote(bundle .. "/rootfs/evil"))
    u.run("ln -sfn ../../../../../../../../" .. u.quote(outside:sub(2)) .. " " .. u.quote(bundle .. "/rootfs/evil2"))
    u.run("ln -sfn /etc " .. u.quote(bundle .. "/rootfs/mid"))
    local sub = "hcs-test-sub-" .. root:match("hcs%-test%.(.*)$")
    for _, dest in ipairs({ "/evil", "/evil2" }) do
      write_config(function(c)
        c.process.args = { "/bin/sh", "-c", "touch " .. dest .. "/x" }
        table.insert(c.mounts, { destination = dest, type = "tmpfs", source = "tmpfs" })
      end)
      local _, code, _, err = rt("run", "--bundle", bundle, "s1")
      assert.equal(1, code)
      assert.matches("mount `tmpfs` on `" .. dest:sub(2) .. "`: Not a directory", err)
      assert_nothing_left()
    end
    write_config(function(c)
      c.process.args = { "/bin/sh", "-c", "touch /mid/" .. sub .. "/x && grep -c " .. sub .. " /proc/mounts" }
      table.insert(c.mounts, { destination = "/mid/" .. sub, type = "tmpfs", source = "tmpfs" })
    end)
    local ok, _, out, err = rt("run", "--bundle", bundle, "s2")
    assert.is_true(ok, err)
    assert.equal("1\n", out)
    -- The host's directories got neither a mount nor a file.
    assert.same({}, u.mounts_under(outside))
    assert.same({}, u.mounts_under("/etc/" .. sub))
    assert.is_false(u.run("test -e /etc/" .. sub))
    local _, _, ls = u.run("ls -A " .. u.quote(outside))
    assert.equal("", ls)
    assert.is_true(u.run("test -d " .. u.quote(bundle .. "/rootfs/etc/" .. sub)))
    u.run("rm -f " .. u.quote(bundle .. "/rootfs/evil") .. " " .. u.quote(bundle .. "/rootfs/evil2") .. " " ..
      u.quote(bundle .. "/rootfs/mid"))
    u.run("rmdir " .. u.quote(bundle .. "/rootfs/etc/" .. sub))
    assert_nothing_left()
  end)

  describe("bad input", function()
    local function refuses(pattern, edit, ...)
      if edit then write_config(edit) end
      local args = { ... }
      if #args == 0 then args = { "create", "--bundle", bundle, "bad" } end
      local ok, code, _, err = rt(table.unpack(args))
      assert.is_false(ok)
      assert.equal(1, code)
      assert.matches(pattern, err)
      assert_nothing_left()
    end

    it("a missing config.json", function()
      u.run("mkdir -p " .. u.quote(root .. "/empty"))
      refuses("open `" .. (root .. "/empty/config.json"):gsub("%p", "%%%0") .. "`: No such file or directory", nil,
        "create", "--bundle", root .. "/empty", "bad")
    end)

    it("a malformed config.json", function()
      u.write_file(bundle .. "/config.json", '{"ociVersion": "1.1.0",')
      refuses("parse `.*config.json`: line 1", nil)
    end)

    it("a missing ociVersion and an unsupported one", function()
      refuses("`ociVersion`: expected a version string, missing", function(c) c.ociVersion = nil end)
      refuses('`ociVersion`: unsupported version "2.0.0"', function(c) c.ociVersion = "2.0.0" end)
    end)

    it("unknown names where the spec allows only its own", function()
      refuses('`hooks.preStart`: unknown hook', function(c) c.hooks = { preStart = {} } end)
      refuses('`linux.namespaces%[6%].type`: unknown namespace type "pidd"',
        function(c) table.insert(c.linux.namespaces, { type = "pidd" }) end)
      refuses('`process.capabilities.bounding%[0%]`: unknown capability "CAP_FLY"',
        function(c) c.process.capabilities.bounding = { "CAP_FLY" } end)
      refuses('`linux.seccomp.defaultAction`: unknown action "SCMP_ACT_MAYBE"',
        function(c) c.linux.seccomp = { defaultAction = "SCMP_ACT_MAYBE" } end)
      refuses('`process.rlimits%[0%].type`: expected an RLIMIT_%* name',
        function(c) c.process.rlimits = { { type = "NOFILE", soft = 1, hard = 1 } } end)
    end)

    it("relative paths", function()
      refuses('`mounts%[6%].destination`: expected an absolute path, got "data"', function(c)
        table.insert(c.mounts, { destination = "data", type = "tmpfs", source = "tmpfs" })
      end)
      refuses('`process.cwd`: expected an absolute path, got "tmp"', function(c) c.process.cwd = "tmp" end)
      refuses('`linux.namespaces%[1%].path`: expected an absolute path', function(c)
        c.linux.namespaces[2].path = "netns/x"
      end)
    end)

    it("what hcs cannot do, naming the field", function()
      refuses('`linux.namespaces`: no "network" entry: sharing the host\'s network namespace is not supported',
        function(c) table.remove(c.linux.namespaces, 2) end)
      refuses('`linux.resources.hugepageLimits`: not supported by hcs',
        function(c) c.linux.resources.hugepageLimits = { { pageSize = "2MB", limit = 1 } } end)
      refuses('`linux.namespaces%[6%]`: a new time namespace is not supported %(join one by path%)', function(c)
        table.insert(c.linux.namespaces, { type = "time" })
      end)
    end)

    it("a mount source that does not exist", function()
      refuses("`mounts%[6%].source`: `/nonexistent`: No such file or directory", function(c)
        table.insert(c.mounts, { destination = "/d", type = "bind", source = "/nonexistent", options = { "bind" } })
      end)
    end)

    it("an unknown signal", function()
      write_config(function(c) c.process.args = { "/bin/sleep", "100" } end)
      assert.is_true((rt("create", "--bundle", bundle, "sig")))
      local _, code, _, err = rt("kill", "sig", "SIGFOO")
      assert.equal(1, code)
      assert.matches('unknown signal "SIGFOO"', err)
      assert.equal("created", json.decode(select(3, rt("state", "sig"))).status)
      assert.is_true((rt("delete", "--force", "sig")))
      assert_nothing_left()
    end)

    it("a console socket that is not a socket", function()
      u.write_file(root .. "/notasock", "")
      refuses("console socket `.*notasock`: not a unix socket",
        function(c) c.process.terminal = true end, "create", "--bundle", bundle, "--console-socket",
        root .. "/notasock", "bad")
    end)

    it("an invalid or duplicate id", function()
      write_config()
      refuses("invalid", nil, "create", "--bundle", bundle, "../x")
      assert.is_true((rt("create", "--bundle", bundle, "dup")))
      local _, code, _, err = rt("create", "--bundle", bundle, "dup")
      assert.equal(1, code)
      assert.matches("container with id exists: dup", err)
      assert.is_true((rt("delete", "--force", "dup")))
      assert_nothing_left()
    end)

    it("checkpoint and restore", function()
      refuses("checkpoint: not supported by hcs%-runtime", nil, "checkpoint", "x")
      refuses("restore: not supported by hcs%-runtime", nil, "restore", "x")
    end)
  end)

  it("features and spec print their documents", function()
    local ok, _, out = rt("features")
    assert.is_true(ok)
    local f = json.decode(out)
    assert.equal("1.1.0", f.ociVersionMax)
    assert.is_true(f.linux.seccomp.enabled)
    write_config()
    local _, code, _, err = u.run(("cd %s && %s spec"):format(u.quote(bundle), u.quote(bin)))
    assert.equal(1, code)
    assert.matches("config.json exists", err)
  end)

  it("writes errors to --log as json lines", function()
    local log = root .. "/rt.log"
    u.run(("%s --root %s --log %s --log-format json state nope"):format(u.quote(bin), u.quote(state), u.quote(log)))
    local line = json.decode(u.read_file(log))
    assert.equal("error", line.level)
    assert.equal("container `nope` does not exist", line.msg)
  end)
end)
