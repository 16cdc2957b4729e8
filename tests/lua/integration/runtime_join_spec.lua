-- hcs-runtime, the rest of the runtime-spec on real bundles: a seccomp agent
-- answering SCMP_ACT_NOTIFY through listenerPath (a real kernel round trip),
-- namespaces joined by path, --preserve-fds, an exec'd process's own
-- capability sets, the cgroup file system inside the container and a live
-- pids limit; each bad input refused naming its field, nothing left.
local u = require "spec_util"
local json = require("hcs").json

describe("hcs-runtime joins and agents #root", function()
  local root, bundle, bundle2, state, parent
  local bin = u.build_dir .. "/hcs-runtime"
  local agent = u.build_dir .. "/tests/seccomp_agent"

  local function rt(...)
    local args = { ... }
    local parts = { u.quote(bin), "--root", u.quote(state) }
    for _, a in ipairs(args) do parts[#parts + 1] = u.quote(a) end
    local detached = args[1] == "create" or ((args[1] == "run" or args[1] == "exec") and args[2] == "-d")
    return u.run(table.concat(parts, " ") .. (detached and " </dev/null >/dev/null" or ""))
  end

  -- A config.json from `hcs-runtime spec` in `dir`, changed by `edit`.
  local function write_config(dir, edit)
    u.run("rm -f " .. u.quote(dir .. "/config.json"))
    local ok, _, _, err = u.run(("cd %s && %s spec"):format(u.quote(dir), u.quote(bin)))
    assert.is_true(ok, err)
    local c = json.decode(u.read_file(dir .. "/config.json"))
    c.process.terminal = false
    c.root.readonly = false
    c.linux.cgroupsPath = "/" .. parent .. "/" .. dir:match("[^/]+$")
    if edit then edit(c) end
    u.write_file(dir .. "/config.json", json.encode(c))
  end

  local function assert_nothing_left()
    local _, _, out = rt("list", "-q")
    assert.equal("", out)
    local _, _, files = u.run("ls -A " .. u.quote(state .. "/oci") .. " " .. u.quote(state .. "/run/compute") ..
      " 2>/dev/null | grep -v ':$' | grep -v '^$'")
    assert.equal("", files)
    local _, _, cg = u.run("find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*/" .. parent .. "/*'")
    assert.equal("", cg)
  end

  local function state_of(id)
    local _, _, out = rt("state", id)
    return json.decode(out)
  end

  local function ns_of(pid, kind)
    return ("/proc/%d/ns/%s"):format(pid, kind)
  end

  setup(function()
    root = u.tmpdir()
    bundle = root .. "/bundle"
    bundle2 = root .. "/bundle2"
    state = root .. "/state"
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, bundle .. "/rootfs")))
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, bundle2 .. "/rootfs")))
    parent = "hcs-test-rtj-" .. root:match("hcs%-test%.(.*)$")
  end)

  teardown(function()
    local _, _, out = rt("list", "-q")
    for id in out:gmatch("%S+") do rt("delete", "--force", id) end
    u.rmtree(root)
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
  end)

  describe("seccomp SCMP_ACT_NOTIFY", function()
    -- The agent gets the listener with the container process state, and
    -- answers each notified mkdir: with an errno, or 0 ("done", although
    -- nothing was made: the proof that the agent, not the kernel, ran it).
    local function run_with_agent(id, answer)
      local sock, st = root .. "/agent-" .. id .. ".sock", root .. "/agent-" .. id .. ".json"
      write_config(bundle, function(c)
        c.process.args = { "/bin/sh", "-c", "mkdir /tmp/made-" .. id .. "; echo rc=$?; test -d /tmp/made-" .. id ..
          " && echo exists || echo absent" }
        c.linux.seccomp = { defaultAction = "SCMP_ACT_ALLOW", listenerPath = sock, listenerMetadata = "meta-" .. id,
          syscalls = { { names = { "mkdir", "mkdirat" }, action = "SCMP_ACT_NOTIFY" } } }
      end)
      local cmd = ("timeout 60 %s %s %s %d > %s 2>&1 & for i in $(seq 200); do test -S %s && break; sleep 0.05; " ..
        "done; %s --root %s run --bundle %s %s 2>&1; echo status=$?; wait")
        :format(u.quote(agent), u.quote(sock), u.quote(st), answer, u.quote(root .. "/agent.out"), u.quote(sock),
          u.quote(bin), u.quote(state), u.quote(bundle), id)
      local _, _, out, err = u.run(cmd)
      return out, err, json.decode(u.read_file(st))
    end

    it("sends the listener and the state to listenerPath; the agent's answers are the syscalls' results", function()
      local out, err, msg = run_with_agent("n1", 122)
      assert.equal("mkdir: can't create directory '/tmp/made-n1': Disk quota exceeded\nrc=1\nabsent\nstatus=0\n",
        out, err)
      assert.same({ "seccompFd" }, msg.fds)
      assert.equal("meta-n1", msg.metadata)
      assert.equal("n1", msg.state.id)
      assert.equal("creating", msg.state.status)
      assert.equal(bundle, msg.state.bundle)
      assert.equal(msg.pid, msg.state.pid)
      assert.is_true(msg.pid > 0)
      assert.matches("answered syscall", u.read_file(root .. "/agent.out"))
      assert_nothing_left()
      -- answered 0: mkdir "succeeds" and nothing was made
      out = run_with_agent("n2", 0)
      assert.equal("rc=0\nabsent\nstatus=0\n", out)
      assert_nothing_left()
    end)

    it("refuses a listenerPath that is not a socket, a missing one and notify on write", function()
      local function refuses(pattern, seccomp)
        write_config(bundle, function(c) c.linux.seccomp = seccomp end)
        local ok, code, _, err = rt("create", "--bundle", bundle, "bad")
        assert.is_false(ok)
        assert.equal(1, code)
        assert.matches(pattern, err)
        assert_nothing_left()
      end
      local notify = { { names = { "mkdir" }, action = "SCMP_ACT_NOTIFY" } }
      u.write_file(root .. "/plain", "x")
      refuses("config.json: `linux.seccomp.listenerPath` `" .. (root .. "/plain"):gsub("%p", "%%%0") ..
        "`: not a unix socket", { defaultAction = "SCMP_ACT_ALLOW", listenerPath = root .. "/plain", syscalls = notify })
      refuses("`linux.seccomp.listenerPath` `/nonexistent.sock`: No such file",
        { defaultAction = "SCMP_ACT_ALLOW", listenerPath = "/nonexistent.sock", syscalls = notify })
      refuses("`linux.seccomp.listenerPath`: expected a socket path for SCMP_ACT_NOTIFY, missing",
        { defaultAction = "SCMP_ACT_ALLOW", syscalls = notify })
      refuses('`linux.seccomp.listenerPath`: expected an absolute path, got "x.sock"',
        { defaultAction = "SCMP_ACT_ALLOW", listenerPath = "x.sock", syscalls = notify })
      refuses("`linux.seccomp.defaultAction`: SCMP_ACT_NOTIFY cannot be the default action",
        { defaultAction = "SCMP_ACT_NOTIFY", listenerPath = "/x.sock" })
      refuses('`linux.seccomp.syscalls%[0%].names%[1%]`: SCMP_ACT_NOTIFY cannot be used for "write"',
        { defaultAction = "SCMP_ACT_ALLOW", listenerPath = "/x.sock",
          syscalls = { { names = { "mkdir", "write" }, action = "SCMP_ACT_NOTIFY" } } })
    end)
  end)

  describe("linux.namespaces by path", function()
    it("a second container joins the first one's ipc, uts, pid, mount and cgroup namespaces", function()
      write_config(bundle, function(c)
        c.hostname = "first"
        c.process.args = { "/bin/sh", "-c", "touch /tmp/first-was-here; exec sleep 1000" }
      end)
      assert.is_true((rt("create", "--bundle", bundle, "j1")))
      assert.is_true((rt("start", "j1")))
      local pid = state_of("j1").pid
      -- (the marker is written by the first container's init before its sleep)
      for _ = 1, 100 do
        if u.run("test -e /proc/" .. pid .. "/root/tmp/first-was-here") then break end
        u.run("sleep 0.05")
      end
      write_config(bundle2, function(c)
        c.process.args = { "/bin/sh", "-c", "hostname; ps -o args | grep -c '^sleep 1000'; " ..
          "test -e /tmp/first-was-here && echo same-root; ls -l /proc/self/ns/ | grep -o '[a-z]*:.*'" }
        c.hostname = nil
        for _, n in ipairs(c.linux.namespaces) do
          local kind = n.type == "mount" and "mnt" or n.type
          if n.type ~= "network" then n.path = ns_of(pid, kind) end
        end
      end)
      local ok, _, out, err = rt("run", "--bundle", bundle2, "j2")
      assert.is_true(ok, err)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal("first", lines[1])
      assert.equal("1", lines[2])
      assert.equal("same-root", lines[3])
      local _, _, theirs = u.run("ls -l /proc/" .. pid .. "/ns/ | grep -o '[a-z]*:.*'")
      for _, kind in ipairs({ "ipc", "uts", "pid", "mnt", "cgroup" }) do
        local mine = out:match(kind .. " %-> (%S+)")
        assert.is_not_nil(mine, kind)
        assert.equal(theirs:match(kind .. " %-> (%S+)"), mine, kind)
      end
      -- the network namespace stays its own
      assert.are_not.equal(theirs:match("net %-> (%S+)"), out:match("net %-> (%S+)"))
      -- a process exec'd into the first sees the same
      assert.is_true((rt("delete", "--force", "j1")))
      assert_nothing_left()
    end)

    it("joins a time namespace by path", function()
      write_config(bundle, function(c)
        table.insert(c.linux.namespaces, { type = "time", path = "/proc/self/ns/time" })
        c.process.args = { "/bin/sh", "-c", "readlink /proc/self/ns/time" }
      end)
      local ok, _, out, err = rt("run", "--bundle", bundle, "t1")
      assert.is_true(ok, err)
      local _, _, mine = u.run("readlink /proc/self/ns/time")
      assert.equal(mine, out)
      assert_nothing_left()
    end)

    it("refuses a path that is not an nsfs file or of the wrong type, naming the field", function()
      local function refuses(pattern, edit)
        write_config(bundle, edit)
        local ok, code, _, err = rt("create", "--bundle", bundle, "bad")
        assert.is_false(ok)
        assert.equal(1, code)
        assert.matches(pattern, err)
        assert_nothing_left()
      end
      u.write_file(root .. "/plain", "x")
      refuses("`linux.namespaces%[2%].path`: `.*/plain` is not a namespace file %(nsfs%)",
        function(c) c.linux.namespaces[3].path = root .. "/plain" end)
      refuses("`linux.namespaces%[2%].path`: `/proc/self/ns/uts` is a uts namespace %(expected ipc%)",
        function(c) c.linux.namespaces[3].path = "/proc/self/ns/uts" end)
      refuses("`linux.namespaces%[0%].path`: `/proc/self/ns/net` is a network namespace %(expected pid%)",
        function(c) c.linux.namespaces[1].path = "/proc/self/ns/net" end)
      refuses("`linux.namespaces%[1%].path`: `/proc/self/ns/pid` is a pid namespace %(expected network%)",
        function(c) c.linux.namespaces[2].path = "/proc/self/ns/pid" end)
      refuses("`linux.namespaces%[0%].path`: `/nonexistent/ns`: No such file",
        function(c) c.linux.namespaces[1].path = "/nonexistent/ns" end)
      refuses("joining an existing user namespace is not supported",
        function(c) table.insert(c.linux.namespaces, { type = "user", path = "/proc/self/ns/user" }) end)
    end)
  end)

  describe("--preserve-fds", function()
    it("passes fds 3..3+N-1 into the container's process", function()
      write_config(bundle, function(c)
        c.process.args = { "/bin/sh", "-c", "cat <&3; cat <&4; echo $LISTEN_FDS" }
        table.insert(c.process.env, "LISTEN_FDS=2")
      end)
      u.write_file(root .. "/three", "fd three\n")
      u.write_file(root .. "/four", "fd four\n")
      local _, code, out, err = u.run(("%s --root %s run --preserve-fds 2 --bundle %s p1 3<%s 4<%s"):format(
        u.quote(bin), u.quote(state), u.quote(bundle), u.quote(root .. "/three"), u.quote(root .. "/four")))
      assert.equal(0, code, err)
      assert.equal("fd three\nfd four\n2\n", out)
      assert_nothing_left()
      -- and into an exec'd process
      write_config(bundle, function(c) c.process.args = { "/bin/sleep", "1000" } end)
      assert.is_true((rt("create", "--bundle", bundle, "p2")))
      assert.is_true((rt("start", "p2")))
      local _, ecode, eout, eerr = u.run(("%s --root %s exec --preserve-fds 1 p2 /bin/cat /proc/self/fd/3 3<%s")
        :format(u.quote(bin), u.quote(state), u.quote(root .. "/three")))
      assert.equal(0, ecode, eerr)
      assert.equal("fd three\n", eout)
      -- without the option nothing of ours reaches the process
      local _, _, fds = u.run(("%s --root %s exec p2 /bin/ls /proc/self/fd 3<%s"):format(u.quote(bin),
        u.quote(state), u.quote(root .. "/three")))
      assert.equal("0\n1\n2\n3\n", fds) -- (3 is ls's own directory)
      assert.is_true((rt("delete", "--force", "p2")))
      assert_nothing_left()
    end)

    it("refuses more fds than are open, and a bad count", function()
      write_config(bundle, function(c) c.process.args = { "/bin/true" } end)
      local _, code, _, err = u.run(("%s --root %s run --preserve-fds 3 --bundle %s p3 3</dev/null"):format(
        u.quote(bin), u.quote(state), u.quote(bundle)))
      assert.equal(1, code)
      assert.matches("%-%-preserve%-fds 3: fd 4 is not open %(fds 3..5 are passed%)", err)
      assert_nothing_left()
      local _, code2, _, err2 = rt("run", "--preserve-fds", "many", "--bundle", bundle, "p4")
      assert.equal(1, code2)
      assert.matches("%-%-preserve%-fds: expected a count >= 0", err2)
      assert_nothing_left()
    end)
  end)

  describe("exec's own capabilities", function()
    local function caps(out)
      local t = {}
      for k, v in out:gmatch("Cap(%a+):%s*(%x+)") do t[k] = tonumber(v, 16) end
      return t
    end
    local KILL, CHOWN, NET_BIND, AUDIT_WRITE = 1 << 5, 1 << 0, 1 << 10, 1 << 29

    it("gives --process's five sets and --cap's additions, the bounding set only shrinking", function()
      write_config(bundle, function(c)
        c.process.args = { "/bin/sleep", "1000" }
        c.process.capabilities = { bounding = { "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN" },
          effective = { "CAP_KILL" }, permitted = { "CAP_KILL" } }
      end)
      assert.is_true((rt("create", "--bundle", bundle, "x1")))
      assert.is_true((rt("start", "x1")))
      local _, _, out = rt("exec", "x1", "grep", "Cap", "/proc/self/status")
      local c = caps(out)
      assert.equal(KILL, c.Eff)
      assert.equal(AUDIT_WRITE | KILL | NET_BIND | CHOWN, c.Bnd)
      u.write_file(root .. "/proc.json", json.encode({ args = { "/bin/grep", "Cap", "/proc/self/status" }, cwd = "/",
        user = { uid = 1000, gid = 1000 },
        capabilities = { bounding = { "CAP_KILL", "CAP_CHOWN" }, effective = { "CAP_CHOWN" },
          permitted = { "CAP_CHOWN" }, inheritable = { "CAP_CHOWN" }, ambient = { "CAP_CHOWN" } } }))
      local ok, _, pout, perr = rt("exec", "--process", root .. "/proc.json", "x1")
      assert.is_true(ok, perr)
      c = caps(pout)
      assert.same({ Inh = CHOWN, Prm = CHOWN, Eff = CHOWN, Bnd = KILL | CHOWN, Amb = CHOWN }, c)
      local _, _, cout = rt("exec", "--cap", "CAP_CHOWN", "x1", "grep", "Cap", "/proc/self/status")
      c = caps(cout)
      assert.equal(KILL | CHOWN, c.Eff)
      assert.equal(KILL | CHOWN, c.Prm)
      -- beyond the container's bounding set, and unknown names
      local _, code, _, err = rt("exec", "--cap", "CAP_SYS_ADMIN", "x1", "true")
      assert.equal(1, code)
      assert.matches("`Capabilities`: CAP_SYS_ADMIN is not in the system's bounding set", err)
      u.write_file(root .. "/bad.json", json.encode({ args = { "/bin/true" }, cwd = "/",
        capabilities = { effective = { "CAP_FLY" } } }))
      local _, code2, _, err2 = rt("exec", "--process", root .. "/bad.json", "x1")
      assert.equal(1, code2)
      assert.matches("bad.json: `process.capabilities.effective%[0%]`: unknown capability \"CAP_FLY\"", err2)
      local _, code3, _, err3 = rt("exec", "--cap", "CAP_FLY", "x1", "true")
      assert.equal(1, code3)
      assert.matches("%-%-cap: `process.capabilities.bounding%[4%]`: unknown capability \"CAP_FLY\"", err3)
      assert.is_true((rt("delete", "--force", "x1")))
      assert_nothing_left()
    end)
  end)

  describe("cgroups", function()
    it("mounts the container's own cgroup read-only where config.json asks for one", function()
      write_config(bundle, function(c)
        c.linux.resources = { memory = { limit = 64 * 1024 * 1024 }, pids = { limit = 42 } }
        table.insert(c.mounts, { destination = "/sys/fs/cgroup", type = "cgroup", source = "cgroup",
          options = { "nosuid", "noexec", "nodev", "relatime", "ro" } })
        c.process.args = { "/bin/sh", "-c", table.concat({
          "if [ -e /sys/fs/cgroup/cgroup.controllers ]; then cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; " ..
          "else cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; fi",
          "find /sys/fs/cgroup -name cgroup.procs -exec cat {} + | sort -u | tr '\\n' ' '; echo",
          "(echo 1 > $(find /sys/fs/cgroup -name pids.max)) 2>&1 | grep -o 'Read-only file system'" }, "; ") }
      end)
      local ok, _, out, err = rt("run", "--bundle", bundle, "g1")
      assert.is_true(ok, err)
      -- its limits, its own processes only (the shell and find, pids of its namespace), not writable
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal(tostring(64 * 1024 * 1024), lines[1])
      assert.equal("42", lines[2])
      for pid in lines[3]:gmatch("%d+") do assert.is_true(tonumber(pid) < 10, lines[3]) end
      assert.equal("Read-only file system", lines[4])
      assert_nothing_left()
    end)

    it("update --pids-limit and --resources change a running container's pids limit", function()
      write_config(bundle, function(c) c.process.args = { "/bin/sleep", "1000" } end)
      assert.is_true((rt("run", "-d", "--bundle", bundle, "g2")))
      -- four processes: init and three sleeps
      local ok, _, _, err = rt("exec", "-d", "g2", "/bin/sh", "-c", "sleep 1000 & sleep 1000 & exec sleep 1000")
      assert.is_true(ok, err)
      local function npids()
        local _, _, o = rt("ps", "--format", "json", "g2")
        return #json.decode(o)
      end
      for _ = 1, 100 do
        if npids() == 4 then break end
        u.run("sleep 0.05")
      end
      assert.equal(4, npids())
      ok, _, _, err = rt("update", "--pids-limit", "4", "g2")
      assert.is_true(ok, err)
      local _, _, max = u.run("cat /sys/fs/cgroup/pids/" .. parent .. "/g2/pids.max /sys/fs/cgroup/" .. parent ..
        "/g2/pids.max 2>/dev/null")
      assert.equal("4\n", max)
      local _, code, _, xerr = rt("exec", "g2", "/bin/true")
      assert.equal(1, code)
      assert.matches("Resource temporarily unavailable", xerr)
      u.write_file(root .. "/res.json", json.encode({ pids = { limit = 10 } }))
      ok, _, _, err = rt("update", "--resources", root .. "/res.json", "g2")
      assert.is_true(ok, err)
      local _, code2 = rt("exec", "g2", "/bin/true")
      assert.equal(0, code2)
      local _, code3, _, err3 = rt("update", "--pids-limit", "0", "g2")
      assert.equal(1, code3)
      assert.matches("`pids.limit`: expected a positive count", err3)
      assert.is_true((rt("delete", "--force", "g2")))
      assert_nothing_left()
    end)
  end)
end)
