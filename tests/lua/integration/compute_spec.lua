-- hcs.compute and hcs.process against the real kernel (root): namespaces,
-- cgroups, the monitor, processes, consoles, and that nothing leaks.
local hcs = require "hcs"
local u = require "spec_util"

local function sleep(s) os.execute(("sleep %s"):format(s)) end

local function read_first_line(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local l = f:read("l")
  f:close()
  return l
end

describe("hcs.compute #root", function()
  local root, rootfs, parent, share

  local function config(extra)
    local doc = hcs.compute.config { rootfs = rootfs, cgroup_parent = parent, owner = "spec" }
    for k, v in pairs(extra or {}) do
      if k == "Init" then
        doc.Linux.Init = v
      elseif k == "Container" then
        for ck, cv in pairs(v) do doc.Container[ck] = cv end
      elseif k == "Linux" then
        for lk, lv in pairs(v) do doc.Linux[lk] = lv end
      else
        doc[k] = v
      end
    end
    return doc
  end

  local function create(id, extra)
    local cs, err = hcs.compute.create(id, config(extra), { root = root })
    assert(cs, err)
    return cs
  end

  local function run_in(cs, argv, extra)
    local params = { CommandArgs = argv, CreateStdOutPipe = true, CreateStdErrPipe = true }
    for k, v in pairs(extra or {}) do params[k] = v end
    local p = assert(cs:create_process(params))
    local out = p.stdout:read("a")
    local errout = p.stderr:read("a")
    local _, code = p:wait()
    p:close()
    return out, code, errout
  end

  -- The systems' cgroups: the parent itself stays until teardown removes it.
  local function cgroup_dirs()
    local ok, _, out = u.run("find /sys/fs/cgroup -mindepth 3 -maxdepth 3 -type d -path '*/" .. parent .. "/*'")
    assert(ok)
    local t = {}
    for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
    return t
  end

  setup(function()
    root = u.tmpdir()
    rootfs = root .. "/rootfs"
    share = root .. "/share"
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, rootfs)))
    assert(u.run("mkdir -p " .. share))
    parent = "hcs-test-" .. root:match("hcs%-test%.(.*)$")
  end)

  teardown(function()
    for _, s in ipairs(hcs.compute.enumerate(nil, root) or {}) do
      local cs = hcs.compute.open(s.Id, root)
      if cs then cs:delete(true) end
    end
    u.rmtree(root)
    assert.same({}, cgroup_dirs())
    -- rmdir only removes an empty parent: nothing of a system may be left.
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, left = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", left)
  end)

  describe("lifecycle", function()
    it("creates a system in Created, starts, shuts down and deletes it", function()
      local cs = create("life")
      local p = assert(cs:properties())
      assert.equal("Created", p.State)
      assert.equal("spec", p.Owner)
      assert.equal("Container", p.SystemType)
      assert.is_true(cs:start())
      assert.equal("Running", cs:properties().State)
      assert.is_nil((cs:start()))
      assert.is_true(cs:shutdown(2000))
      p = cs:properties()
      assert.equal("Stopped", p.State)
      assert.equal("Shutdown", p.ExitType)
      assert.equal(0, p.ExitCode)
      assert.is_nil(p.Pid) -- only the exit status remains
      assert.is_true(cs:delete())
      local none, msg, code = hcs.compute.open("life", root)
      assert.is_nil(none)
      assert.matches("not found", msg)
      assert.equal(2, code)
      cs:close()
      assert.has_error(function() cs:start() end, "attempt to use a closed compute system handle")
    end)

    it("records init's exit code and waits with a timeout", function()
      local cs = create("exit", { Init = { CommandArgs = { "/bin/sh", "-c", "read x; exit 3" }, CreateStdInPipe = true } })
      local stdin = cs:stdio()
      assert.is_true(cs:start())
      assert.is_false(cs:wait(50))
      stdin:write("go\n")
      stdin:close()
      assert.is_true(cs:wait(10000))
      local p = cs:properties()
      assert.equal("Stopped", p.State)
      assert.equal(3, p.ExitCode)
      assert.equal("Exited", p.ExitType)
      assert.is_true(cs:delete())
    end)

    it("reports a failing init command at start", function()
      local cs = create("badcmd", { Init = { CommandArgs = { "/no/such/binary" } } })
      local ok, msg = cs:start()
      assert.is_nil(ok)
      assert.matches("exec `/no/such/binary`: No such file or directory", msg, 1, true)
      assert.is_true(cs:wait(10000))
      assert.is_true(cs:delete())
    end)

    it("terminates a running system", function()
      local cs = create("term", { Init = { CommandArgs = { "/bin/sleep", "1000" } } })
      assert.is_true(cs:start())
      assert.is_true(cs:terminate())
      local p = cs:properties()
      assert.equal("Stopped", p.State)
      assert.equal("Terminated", p.ExitType)
      assert.equal(137, p.ExitCode)
      assert.is_true(cs:delete())
    end)

    it("shutdown falls back to terminate when init ignores SIGTERM", function()
      local cs = create("stubborn", { Init = { CommandArgs = { "/bin/sleep", "1000" } } })
      assert.is_true(cs:start())
      assert.is_true(cs:shutdown(100))
      assert.equal("Terminated", cs:properties().ExitType)
      assert.is_true(cs:delete())
    end)

    it("refuses to delete a running system unless forced", function()
      local cs = create("busy")
      assert.is_true(cs:start())
      local ok, msg = cs:delete()
      assert.is_nil(ok)
      assert.matches("Running", msg)
      assert.is_true(cs:delete(true))
    end)

    it("exposes SystemExited as a pollable fd", function()
      local cs = create("event", { Init = { CommandArgs = { "/bin/true" } } })
      local fd = assert(cs:event_fd())
      assert.is_true(fd >= 0)
      assert.is_true(cs:start())
      assert.is_true(cs:wait(10000))
      assert.is_true(cs:delete())
    end)

    it("enumerates with Owner, State and Ids filters", function()
      local a = create("enum-a")
      local b = create("enum-b", { Owner = "other" })
      assert.is_true(a:start())
      local ids = function(list)
        local t = {}
        for _, s in ipairs(list) do t[#t + 1] = s.Id end
        table.sort(t)
        return t
      end
      assert.same({ "enum-a", "enum-b" }, ids(hcs.compute.enumerate({ Ids = { "enum-a", "enum-b" } }, root)))
      assert.same({ "enum-b" }, ids(hcs.compute.enumerate({ Owners = { "other" } }, root)))
      assert.same({ "enum-a" }, ids(hcs.compute.enumerate({ State = "Running", Ids = { "enum-a", "enum-b" } }, root)))
      assert.same({ "enum-b" }, ids(hcs.compute.enumerate({ State = "Created" }, root)))
      -- Ids opens only those: each once, unknown and malformed ones skipped.
      assert.same({ "enum-a", "enum-b" },
        ids(hcs.compute.enumerate({ Ids = { "enum-b", "enum-a", "enum-b", "nope", "../enum-a" } }, root)))
      -- A listing reads state.json only: the Owner and times are there.
      local listed = hcs.compute.enumerate({ Ids = { "enum-b" } }, root)[1]
      assert.equal("other", listed.Owner)
      assert.equal(b:properties().CreatedTime, listed.CreatedTime)
      assert.equal("Created", listed.State)
      assert.is_true(a:delete(true))
      assert.is_true(b:delete(true))
    end)

    it("keeps the exit status when the creating process is SIGKILLed", function()
      local script = ([[
        local hcs = require "hcs"
        local cfg = hcs.json.decode(%q)
        local cs = assert(hcs.compute.create("orphan", cfg, { root = %q }))
        assert(cs:start())
        io.stdout:write("started\n")
        io.stdout:flush()
        cs:wait() -- killed before it returns
      ]]):format(hcs.json.encode(config { Init = { CommandArgs = { "/bin/sh", "-c", "sleep 1; exit 42" } } }), root)
      u.write_file(root .. "/creator.lua", script)
      local p = assert(io.popen(("echo $$; exec %s %s"):format(u.quote(u.hcs_bin), u.quote(root .. "/creator.lua"))))
      local pid = tonumber(p:read("l"))
      assert.equal("started", p:read("l"))
      assert(u.run("kill -9 " .. pid))
      p:close()
      local cs = assert(hcs.compute.open("orphan", root))
      assert.equal("Running", cs:properties().State)
      assert.is_true(cs:wait(20000))
      local props = cs:properties()
      assert.equal(42, props.ExitCode)
      assert.equal("Exited", props.ExitType)
      assert.is_true(cs:delete())
    end)
  end)

  describe("two state roots", function()
    it("run systems of the same id under the default cgroup parent without meeting", function()
      local other = u.tmpdir()
      local function doc()
        local d = hcs.compute.config { rootfs = rootfs, owner = "spec" }
        d.Linux = d.Linux or {}
        d.Linux.Init = { CommandArgs = { "/bin/sleep", "30" } }
        return d
      end
      local a = assert(hcs.compute.create("twin", doc(), { root = root }))
      local b, err = hcs.compute.create("twin", doc(), { root = other })
      finally(function()
        a:delete(true)
        if b then b:delete(true) end
        u.rmtree(other)
      end)
      assert(b, err)
      assert.is_true(a:start())
      assert.is_true(b:start())
      local ca, cb = a:properties().Cgroup, b:properties().Cgroup
      assert.matches("^hcs/twin%.%x+$", ca)
      assert.matches("^hcs/twin%.%x+$", cb)
      assert.not_equal(ca, cb)
      -- Deleting one leaves the other's cgroup and processes alone.
      assert.is_true(a:delete(true))
      assert.equal("Running", b:properties().State)
      local _, _, dirs = u.run("find /sys/fs/cgroup -mindepth 3 -maxdepth 3 -type d -path '*/hcs/twin.*'")
      assert.matches(cb:match("twin%.%x+$") .. "\n", dirs)
      assert.not_matches(ca:match("twin%.%x+$"), dirs)
      assert.is_true(#b:properties({ "ProcessList" }).ProcessList >= 1)
      assert.is_true(b:delete(true))
      u.rmtree(other)
      local _, _, left = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name 'twin.*'")
      assert.equal("", left)
    end)
  end)

  describe("create killed", function()
    it("reuses the id of a create killed before the system existed, and list sweeps such debris", function()
      -- What a create killed between its mkdir and the monitor's state.json
      -- leaves: the directory (unlocked), the exec fifo, no state.json.
      for _, id in ipairs { "half", "half2", ".new-999999-half3" } do
        local d = root .. "/run/compute/" .. id
        assert(u.run("mkdir -p " .. d .. " && mkfifo " .. d .. "/exec.fifo"))
      end
      local cs = create("half", { Init = { CommandArgs = { "/bin/true" } } })
      assert.is_true(cs:start())
      assert.is_true(cs:wait(10000))
      assert.equal(0, cs:properties().ExitCode)
      assert.is_true(cs:delete())
      assert.is_true(u.run("test -d " .. root .. "/run/compute/half2"))
      hcs.compute.enumerate(nil, root)
      assert.is_false(u.run("test -e " .. root .. "/run/compute/half2"))
      assert.is_false(u.run("test -e " .. root .. "/run/compute/.new-999999-half3"))
    end)

    it("leaves a create in progress alone (its directory is locked)", function()
      local d = root .. "/run/compute/busy"
      assert(u.run("mkdir -p " .. d))
      local holder = assert(io.popen(("exec flock %s sleep 3"):format(u.quote(d))))
      assert(u.run("sleep 0.2"))
      local cs, err = hcs.compute.create("busy", config(), { root = root })
      assert.is_nil(cs)
      assert.matches("already exists", err)
      hcs.compute.enumerate(nil, root)
      assert.is_true(u.run("test -d " .. d))
      holder:close()
      assert(u.run("rmdir " .. d))
    end)
  end)

  describe("monitor killed", function()
    it("deletes a system whose monitor was SIGKILLed without leaving its cgroup or processes", function()
      local cs = create("nomon", { Init = { CommandArgs = { "/bin/sh", "-c", "sleep 1000 & exec sleep 1000" } } })
      assert.is_true(cs:start())
      local props = cs:properties()
      local function mine()
        local _, _, out = u.run("find /sys/fs/cgroup -mindepth 3 -maxdepth 3 -type d -path '*/" .. parent .. "/nomon'")
        return out
      end
      assert.matches("nomon", mine())
      -- Its two processes, by pid: the machine may run other `sleep 1000`s.
      local procs_file = mine():match("[^\n]+") .. "/cgroup.procs"
      local pids = {}
      for _ = 1, 200 do
        pids = {}
        for pid in (u.read_file(procs_file) or ""):gmatch("%d+") do pids[#pids + 1] = pid end
        if #pids == 2 then break end
        u.run("sleep 0.05")
      end
      assert.equal(2, #pids)
      assert(u.run("kill -9 " .. props.MonitorPid))
      -- The system still runs (init outlives its monitor) and is deleted by force.
      assert.is_true(cs:delete(true))
      assert.equal("", mine())
      -- No live process of it is left (zombies wait for whoever adopted them).
      for _, pid in ipairs(pids) do
        local _, _, st = u.run("ps -o stat=,args= -p " .. pid)
        assert.is_falsy(st:match("^%s*[^Z%s]%S*%s+/bin/sleep 1000"), st)
      end
      assert.is_nil(hcs.compute.open("nomon", root))
    end)
  end)

  describe("the monitor program", function()
    local function monitor_of(cs)
      local pid = cs:properties().MonitorPid
      local _, _, exe = u.run("readlink /proc/" .. pid .. "/exe")
      return pid, (exe:gsub("\n$", ""))
    end

    local function rss_kb(pid)
      return tonumber((u.read_file("/proc/" .. pid .. "/smaps_rollup") or ""):match("\nRss:%s+(%d+) kB"))
    end

    it("execs hcs-monitor, which stays under half of conmon's resident size while idle", function()
      local cs = create("small", { Init = { CommandArgs = { "/bin/sleep", "1000" } } })
      assert.is_true(cs:start())
      local pid, exe = monitor_of(cs)
      local _, _, want = u.run("readlink -f " .. u.quote(os.getenv("HCS_MONITOR")))
      assert.equal(want:gsub("\n$", ""), exe)
      assert.equal("hcs-monitor", read_first_line("/proc/" .. pid .. "/comm"))
      -- Non-dumpable again after the exec: nothing may open its memory.
      assert.matches("\nCoreDumping:%s+0", u.read_file("/proc/" .. pid .. "/status"))
      local _, _, stat = u.run("stat -c %u /proc/" .. pid .. "/mem")
      assert.equal("0\n", stat)
      if os.getenv("HCS_SANITIZE") ~= "ON" then
        -- conmon: 1844 kB.  The monitor unmaps its read-only pages a
        -- second after it starts (src/monitor/main.c): wait for that.
        local rss
        for _ = 1, 100 do
          rss = rss_kb(pid)
          if rss and rss < 922 then break end
          sleep(0.1)
        end
        assert.is_true(rss < 922, "idle hcs-monitor RSS " .. tostring(rss) .. " kB")
      end
      assert.is_true(cs:terminate())
      assert.equal("Terminated", cs:properties().ExitType)
      assert.is_true(cs:delete())
    end)

    it("runs an exit command that outlives the monitor's page-drop alarm", function()
      local mark = root .. "/exit-command-done"
      local cs = create("exitcmd", {
        Init = { CommandArgs = { "/bin/true" } },
        Linux = { ExitCommand = hcs.json.array { "/bin/sh", "-c", "sleep 2; echo done > " .. mark } },
      })
      assert.is_true(cs:start())
      assert.is_true(cs:wait(30000))
      assert.equal(0, cs:properties().ExitCode)
      -- The monitor execs the exit command; waiting for the monitor's pidfd
      -- (delete) waits for the command.
      for _ = 1, 300 do
        if u.read_file(mark) then break end
        sleep(0.1)
      end
      assert.equal("done\n", u.read_file(mark))
      assert.is_true(cs:delete())
    end)

    it("watches from the fork of the creator when hcs-monitor cannot be exec'd", function()
      local env = { HCS_ROOT = root, HCS_MONITOR = "/nonexistent/hcs-monitor" }
      local ok, _, out, err = u.hcs({ "run", "-d", "--name", "fallback", "--cgroup-parent", parent, rootfs, "--",
        "/bin/sh", "-c", "echo out; exec sleep 1000" }, env)
      assert.is_true(ok, out .. err)
      local cs = assert(hcs.compute.open("fallback", root))
      local _, exe = monitor_of(cs)
      assert.not_equal("", exe)
      assert.is_nil(exe:match("hcs%-monitor$"))
      -- The log relay runs in the fork too.
      for _ = 1, 100 do
        local _, _, logs = u.hcs({ "logs", "fallback" }, env)
        if logs == "out\n" then break end
        sleep(0.1)
      end
      assert.equal("out\n", select(3, u.hcs({ "logs", "fallback" }, env)))
      assert.is_true(cs:terminate())
      local p = cs:properties()
      assert.equal("Stopped", p.State)
      assert.equal("Terminated", p.ExitType)
      assert.is_true(cs:delete())
    end)
  end)

  describe("resources", function()
    it("OOM-kills a process exceeding Memory.SizeInMB and says so", function()
      local cs = create("oom", {
        Container = { Memory = { SizeInMB = 16 } },
        Init = { CommandArgs = { "/bin/sh", "-c", "exec tail /dev/zero" } },
      })
      assert.is_true(cs:start())
      assert.is_true(cs:wait(30000))
      local p = cs:properties()
      assert.equal("OomKilled", p.ExitType)
      assert.equal(137, p.ExitCode)
      assert.is_true(p.OomKillCount >= 1)
      assert.is_true(cs:delete())
    end)

    it("pause really freezes: a counter stops, and resumes", function()
      local cs = create("freeze", {
        Container = { MappedDirectories = { { HostPath = share, ContainerPath = "/share" } } },
        Init = { CommandArgs = { "/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /share/c.tmp; mv /share/c.tmp /share/c; done" } },
      })
      assert.is_true(cs:start())
      local counter = function() return tonumber(read_first_line(share .. "/c") or "0") end
      -- Progress, not speed: on a loaded machine the loop may need a while.
      local function advances(from)
        for _ = 1, 100 do
          if counter() > from then return true end
          sleep(0.05)
        end
        return false
      end
      local c1 = counter()
      assert.is_true(advances(c1))
      assert.is_true(cs:pause())
      assert.equal("Paused", cs:properties().State)
      local frozen = counter()
      sleep(0.3)
      assert.equal(frozen, counter())
      assert.is_nil((cs:pause()))
      assert.is_true(cs:resume())
      assert.equal("Running", cs:properties().State)
      assert.is_true(advances(frozen))
      assert.is_true(cs:pause())
      assert.is_true(cs:terminate()) -- a paused system can be terminated
      assert.equal("Terminated", cs:properties().ExitType)
      assert.is_true(cs:delete())
    end)

    it("reports statistics and the process list", function()
      local cs = create("stats", { Init = { CommandArgs = { "/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000; exit 0" } } })
      assert.is_true(cs:start())
      sleep(0.2)
      local p = assert(cs:properties { "Statistics", "ProcessList" })
      assert.is_true(p.Statistics.Processor.TotalRuntime100ns > 0)
      assert.is_true(p.Statistics.Memory.UsageBytes > 0)
      assert.is_true(p.Statistics.Memory.PeakBytes >= p.Statistics.Memory.UsageBytes)
      local names = {}
      for _, proc in ipairs(p.ProcessList) do names[proc.ImageName] = proc.ProcessId end
      assert.equal(p.Pid, names.sh)
      assert.is_number(names.sleep)
      assert.is_true(cs:delete(true))
    end)

    it("modifies memory and processor limits live", function()
      local cs = create("modify", { Container = { Memory = { SizeInMB = 64 } } })
      assert.is_true(cs:start())
      local mode = hcs.host.cgroup_mode()
      local memfile = mode == "v2" and ("/sys/fs/cgroup/%s/modify/memory.max"):format(parent)
        or ("/sys/fs/cgroup/memory/%s/modify/memory.limit_in_bytes"):format(parent)
      assert.equal(tostring(64 * 1048576), read_first_line(memfile))
      assert.is_true(cs:modify { Memory = { SizeInMB = 32 }, Processor = { Maximum = 5000 } })
      assert.equal(tostring(32 * 1048576), read_first_line(memfile))
      if mode ~= "v2" then
        local ncpu = tonumber((select(3, u.run("nproc --all"))))
        assert.equal(tostring(100000 * ncpu // 2),
          read_first_line(("/sys/fs/cgroup/cpu/%s/modify/cpu.cfs_quota_us"):format(parent)))
      end
      local ok, msg = cs:modify { Memory = { SizeInMB = "lots" } }
      assert.is_nil(ok)
      assert.matches("`Container.Memory.SizeInMB`: expected integer, got string", msg, 1, true)
      local dok, dmsg = cs:modify { Disk = {} }
      assert.is_nil(dok)
      assert.matches("invalid modify request: `Disk`: unknown field (expected one of Memory, Processor, PidsLimit)",
        dmsg, 1, true)
      assert.is_true(cs:delete(true))
    end)
  end)

  describe("isolation and security", function()
    local cs
    setup(function()
      cs = create("sec", {
        Container = {
          GuestOs = { HostName = "secbox" },
          MappedDirectories = { { HostPath = share, ContainerPath = "/ro", ReadOnly = true } },
        },
      })
      assert(cs:start())
    end)
    teardown(function() cs:delete(true) end)

    it("drops capabilities to the default set, sets no_new_privs and seccomp", function()
      local out = run_in(cs, { "/bin/cat", "/proc/self/status" })
      assert.equal("00000000a80425fb", out:match("CapEff:%s*(%x+)"))
      assert.equal("00000000a80425fb", out:match("CapBnd:%s*(%x+)"))
      assert.equal("1", out:match("NoNewPrivs:%s*(%d)"))
      assert.equal("2", out:match("Seccomp:%s*(%d)"))
    end)

    it("keeps init's seccomp program for processes exec'd later by other hcs processes", function()
      local path = root .. "/run/compute/sec/seccomp.bpf"
      local bpf = assert(u.read_file(path))
      assert.is_true(#bpf > 0 and #bpf % 8 == 0) -- whole struct sock_filter instructions
      local function exec_status()
        local ok, _, out, err = u.hcs({ "--root", root, "exec", "sec", "--", "/bin/sh", "-c",
          "grep Seccomp: /proc/self/status; unshare -n true 2>&1 || echo denied" })
        assert.is_true(ok, err)
        return out
      end
      assert.matches("Seccomp:%s*2\n.*denied", exec_status())
      -- A damaged program is never loaded: the filter is compiled again.
      u.write_file(path, "not a filter")
      assert.matches("Seccomp:%s*2\n.*denied", exec_status())
      u.write_file(path, bpf)
    end)

    it("caches compiled seccomp programs in the run root, and never loads a damaged one", function()
      local _, _, files = u.run("ls -A " .. root .. "/run/compute")
      local name = files:match("(%.seccomp%-%x+%.bpf)")
      assert.is_truthy(name)
      local path = root .. "/run/compute/" .. name
      u.write_file(path, "garbage")
      local ok, _, out, err = u.hcs({ "--root", root, "run", "--rm", "--cgroup-parent", parent, "--rootfs", rootfs,
        "--", "/bin/sh", "-c", "grep Seccomp: /proc/self/status; unshare -n true 2>&1 || echo denied" })
      assert.is_true(ok, err)
      assert.matches("Seccomp:%s*2\n.*denied", out)
      local bpf = assert(u.read_file(path))
      assert.is_true(#bpf > 0 and #bpf % 8 == 0) -- compiled and saved again
    end)

    it("blocks denied syscalls with EPERM", function()
      local _, code, err = run_in(cs, { "/bin/unshare", "-n", "true" })
      assert.not_equal(0, code)
      assert.matches("Operation not permitted", err)
    end)

    it("masks and write-protects /proc and /sys paths", function()
      local out = run_in(cs, { "/bin/sh", "-c", "wc -c < /proc/timer_list; wc -c < /proc/keys 2>/dev/null || echo none" })
      assert.matches("^0\n", out)
      local _, code, err = run_in(cs, { "/bin/sh", "-c", "echo x > /proc/sys/kernel/domainname" })
      assert.not_equal(0, code)
      assert.matches("Read%-only file system", err)
      _, code = run_in(cs, { "/bin/sh", "-c", "echo 1 > /proc/sysrq-trigger" })
      assert.not_equal(0, code)
      _, code, err = run_in(cs, { "/bin/mkdir", "/sys/kernel/x" })
      assert.not_equal(0, code)
    end)

    it("a second system joins its uts, pid and ipc namespaces by path (Linux.Namespaces)", function()
      local pid = assert(cs:properties()).Pid
      local doc = hcs.compute.config { rootfs = rootfs, cgroup_parent = parent, owner = "spec",
        namespaces = { uts = "/proc/" .. pid .. "/ns/uts", pid = "/proc/" .. pid .. "/ns/pid",
          ipc = "/proc/" .. pid .. "/ns/ipc" } }
      assert.same({ Uts = "/proc/" .. pid .. "/ns/uts", Pid = "/proc/" .. pid .. "/ns/pid",
        Ipc = "/proc/" .. pid .. "/ns/ipc" }, doc.Linux.Namespaces)
      local joiner = assert(hcs.compute.create("joiner", doc, { root = root }))
      assert(joiner:start())
      local out = run_in(joiner, { "/bin/sh", "-c", "hostname; cat /proc/1/comm; readlink /proc/self/ns/ipc" })
      local _, _, ipc = u.run("readlink /proc/" .. pid .. "/ns/ipc")
      assert.equal("secbox\nhcs-init\n" .. ipc, out)
      assert(joiner:delete(true))
      -- a path of the wrong type, or no namespace at all
      doc.Linux.Namespaces = { Pid = "/proc/" .. pid .. "/ns/uts" }
      local bad, err = hcs.compute.create("joiner", doc, { root = root })
      assert.is_nil(bad)
      assert.matches("`Linux.Namespaces.Pid`: `/proc/%d+/ns/uts` is a uts namespace %(expected pid%)", err)
      doc.Linux.Namespaces = { Ipc = share }
      bad, err = hcs.compute.create("joiner", doc, { root = root })
      assert.is_nil(bad)
      assert.matches("`Linux.Namespaces.Ipc`: `.*` is not a namespace file %(nsfs%)", err)
      doc.Linux.Namespaces = nil
      doc.Container.Networking = { Namespace = "/proc/self/ns/uts" }
      bad, err = hcs.compute.create("joiner", doc, { root = root })
      assert.is_nil(bad)
      assert.matches("`Container.Networking.Namespace`: `/proc/self/ns/uts` is a uts namespace %(expected network%)", err)
    end)

    it("hands out init's seccomp listener while Created (Linux.Seccomp.Listener)", function()
      -- a one-instruction program: return SECCOMP_RET_ALLOW
      local prog = root .. "/allow.bpf"
      u.write_file(prog, string.pack("<I2I1I1I4", 0x06, 0, 0, 0x7fff0000))
      local doc = config { Init = { CommandArgs = { "/bin/true" } },
        Linux = { Seccomp = { ProgramFile = prog, Listener = true } } }
      local ls = assert(hcs.compute.create("listener", doc, { root = root }))
      local fd = assert(ls:seccomp_listener())
      local stat = assert(io.open("/proc/self/stat"))
      local self = stat:read("n")
      stat:close()
      local _, _, link = u.run("readlink /proc/" .. self .. "/fd/" .. fd)
      assert.equal("anon_inode:seccomp notify\n", link)
      assert(ls:start())
      assert(ls:wait(30000))
      local none, err = ls:seccomp_listener()
      assert.is_nil(none)
      assert.matches("the system is Stopped, not Created", err)
      assert(ls:delete())
      -- without a program of the caller's there is nothing to listen on
      doc.Linux.Seccomp = { Listener = true }
      local bad, err2 = hcs.compute.create("listener", doc, { root = root })
      assert.is_nil(bad)
      assert.matches("`Linux.Seccomp.Listener`: needs a ProgramFile", err2)
    end)

    it("gives a process its own capability sets within the system's bounding set", function()
      local out = run_in(cs, { "/bin/grep", "Cap", "/proc/self/status" }, { Capabilities = { "CAP_KILL", "CAP_CHOWN" },
        CapabilitySets = { Effective = { "CAP_KILL" }, Permitted = { "CAP_KILL" } } })
      assert.equal("0000000000000020", out:match("CapEff:%s*(%x+)"))
      assert.equal("0000000000000021", out:match("CapBnd:%s*(%x+)"))
      local p, err = cs:create_process { CommandArgs = { "/bin/true" }, Capabilities = { "CAP_SYS_ADMIN" } }
      assert.is_nil(p)
      assert.matches("`Capabilities`: CAP_SYS_ADMIN is not in the system's bounding set", err)
    end)

    it("has its own hostname, pid namespace, /dev and read-only mapped directories", function()
      local out = run_in(cs, { "/bin/sh", "-c", "hostname; echo $$; ls /dev | tr '\\n' ' '; echo; cat /proc/1/comm" })
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal("secbox", lines[1])
      assert.is_true(tonumber(lines[2]) > 1)
      for _, dev in ipairs { "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx" } do
        assert.matches(" ?" .. dev .. " ", " " .. lines[3])
      end
      assert.equal("hcs-init", lines[4])
      local _, code, err = run_in(cs, { "/bin/touch", "/ro/x" })
      assert.not_equal(0, code)
      assert.matches("Read%-only file system", err)
    end)

    it("cannot open the exe of hcs processes (CVE-2019-5736)", function()
      -- pid 1 is hcs's own (forked, never exec'd) idle init; the monitor is
      -- outside the pid namespace and invisible.
      local out, code, err = run_in(cs, { "/bin/sh", "-c", "cat /proc/1/exe > /dev/null; readlink /proc/1/exe" })
      assert.not_equal(0, code)
      assert.matches("Permission denied", err)
      assert.equal("", out)
      out = run_in(cs, { "/bin/ps", "-o", "comm" })
      assert.is_nil(out:match("hcs%-monitor"))
      -- The idle init carries no trace of its creator's command line.
      out = run_in(cs, { "/bin/cat", "/proc/1/cmdline" })
      assert.equal("hcs-init", (out:gsub("%z+$", "")))
    end)

    it("runs as a user from the container's /etc/passwd", function()
      local out = run_in(cs, { "/bin/id" }, { User = "user" })
      assert.matches("uid=1000%(user%) gid=1000%(user%) groups=50%(staff%),1000%(user%)", out)
      out = run_in(cs, { "/bin/sh", "-c", "id -u; id -g; cat /proc/self/status" }, { User = "1000:50" })
      assert.matches("^1000\n50\n", out)
      assert.equal("0000000000000000", out:match("CapEff:%s*(%x+)"))
      local p, msg = cs:create_process { CommandArgs = { "/bin/true" }, User = "nosuch" }
      assert.is_nil(p)
      assert.matches("unknown user in `nosuch`", msg, 1, true)
    end)
  end)

  describe("processes", function()
    local cs
    setup(function()
      cs = create("procs")
      assert(cs:start())
    end)
    teardown(function() cs:delete(true) end)

    it("gives stdin, stdout and stderr as Lua files", function()
      local p = assert(cs:create_process {
        CommandLine = "/bin/sh -c 'cat; echo \"to err\" >&2; exit 7'",
        CreateStdInPipe = true, CreateStdOutPipe = true, CreateStdErrPipe = true,
      })
      assert.matches("hcs.process %(pid %d+%)", tostring(p))
      assert.equal("file", io.type(p.stdin))
      p.stdin:write("line 1\nline 2\n")
      assert.is_true(p:close_stdin())
      local lines = {}
      for l in p.stdout:lines() do lines[#lines + 1] = l end
      assert.same({ "line 1", "line 2" }, lines)
      assert.equal("to err\n", p.stderr:read("a"))
      local exited, code = p:wait()
      assert.is_true(exited)
      assert.equal(7, code)
      assert.equal(7, p:exit_code())
      assert.same({ ProcessId = p:pid(), Exited = true, ExitCode = 7 }, p:properties())
    end)

    it("leaks no descriptor into the container", function()
      local out = run_in(cs, { "/bin/ls", "/proc/self/fd" })
      assert.equal("0\n1\n2\n3\n", out) -- 3 is ls's own directory
      local init = create("fds", { Init = { CommandArgs = { "/bin/ls", "/proc/self/fd" }, CreateStdOutPipe = true } })
      local _, stdout = init:stdio()
      assert.is_true(init:start())
      assert.equal("0\n1\n2\n3\n", stdout:read("a"))
      assert.is_true(init:wait(10000))
      assert.is_true(init:delete())
    end)

    it("passes WorkingDirectory and Environment", function()
      local out = run_in(cs, { "/bin/sh", "-c", "pwd; echo $GREETING; echo $PATH" },
        { WorkingDirectory = "/tmp", Environment = { GREETING = "hello" } })
      assert.matches("^/tmp\nhello\n/usr/local/sbin", out)
    end)

    it("signals, waits with a timeout and terminates", function()
      local p = assert(cs:create_process { CommandArgs = { "/bin/sleep", "1000" } })
      assert.is_false(p:wait(50))
      assert.is_true(p:signal("TERM"))
      local _, code = p:wait(10000)
      assert.equal(143, code)
      local q = assert(cs:create_process { CommandArgs = { "/bin/sleep", "1000" } })
      assert.is_number(q:event_fd())
      assert.is_true(q:terminate())
      assert.same({ true, 137 }, { q:wait() })
      q:close()
      assert.has_error(function() q:wait() end, "attempt to use a closed process handle")
    end)

    it("gives a console from the container's devpts, with resize", function()
      local p = assert(cs:create_process {
        CommandArgs = { "/bin/sh", "-c", "tty; stty size; read x; stty size" },
        EmulateConsole = true, ConsoleSize = { 30, 100 },
      })
      assert.equal("/dev/pts/0", (p.stdout:read("l"):gsub("\r$", "")))
      assert.equal("30 100", (p.stdout:read("l"):gsub("\r$", "")))
      assert.is_true(p:resize(40, 120))
      p.stdin:write("go\n")
      p.stdin:flush()
      assert.equal("go", (p.stdout:read("l"):gsub("\r$", "")))
      assert.equal("40 120", (p.stdout:read("l"):gsub("\r$", "")))
      assert.same({ true, 0 }, { p:wait() })
    end)

    it("reports exec failures and refuses systems that are not running", function()
      local p, msg = cs:create_process { CommandArgs = { "/nope" } }
      assert.is_nil(p)
      assert.matches("exec `/nope`: No such file or directory", msg, 1, true)
      local created = create("notrunning")
      p, msg = created:create_process { CommandArgs = { "/bin/true" } }
      assert.is_nil(p)
      assert.matches("the system is Created, not Running", msg, 1, true)
      assert.is_true(created:delete())
      p, msg = cs:create_process { CommandArgs = "ls" }
      assert.is_nil(p)
      assert.matches("`CommandArgs`: expected array of strings, got string \"ls\"", msg, 1, true)
    end)
  end)

  describe("user namespace", function()
    it("maps ids with UidMappings/GidMappings", function()
      assert(u.run("chmod 755 " .. root)) -- the mapped root must reach the rootfs
      local cs = create("userns", { Linux = {
        UidMappings = { { ContainerId = 0, HostId = 100000, Size = 65536 } },
        GidMappings = { { ContainerId = 0, HostId = 100000, Size = 65536 } },
      } })
      assert.is_true(cs:start())
      local out = run_in(cs, { "/bin/sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %U /" })
      assert.matches("^0\n%s+0%s+100000%s+65536\nnobody\n$", out)
      local host_uid = select(3, u.run("stat -c %u /proc/" .. cs:properties().Pid))
      assert.equal("100000", (host_uid:gsub("%s+", "")))
      assert.is_true(cs:delete(true))
    end)
  end)

  describe("networking", function()
    it("joins a network namespace given by path, or gets a new one", function()
      local ns = parent .. "-ns"
      assert(u.run("ip netns add " .. ns))
      local ok, err = pcall(function()
        local inode = select(3, u.run("stat -L -c %i /run/netns/" .. ns)):gsub("%s+", "")
        local cs = create("net", { Container = { Networking = { Namespace = "/run/netns/" .. ns } } })
        assert.is_true(cs:start())
        local out = run_in(cs, { "/bin/readlink", "/proc/self/ns/net" })
        assert.equal("net:[" .. inode .. "]", (out:gsub("%s+$", "")))
        assert.is_true(cs:delete(true))
        local fresh = create("net2")
        assert.is_true(fresh:start())
        out = run_in(fresh, { "/bin/sh", "-c", "readlink /proc/self/ns/net; ip link show lo" })
        assert.not_equal("net:[" .. inode .. "]", out:match("^[^\n]+"))
        assert.matches("UP", out)
        assert.is_true(fresh:delete(true))
      end)
      u.run("ip netns del " .. ns)
      assert(ok, err)
    end)
  end)

  describe("leaks", function()
    it("leaves no mounts, cgroups, processes or files after 200 create/start/stop/delete cycles", function()
      local doc = config() -- the built-in idle init: stopped by shutdown
      local monitors = {}
      for i = 1, 200 do
        local id = "cycle" .. i
        local cs = assert(hcs.compute.create(id, doc, { root = root }))
        monitors[#monitors + 1] = cs:properties().MonitorPid
        assert(cs:start())
        assert(cs:shutdown(10000))
        local p = cs:properties()
        assert(p.ExitCode == 0 and p.ExitType == "Shutdown", id)
        assert(cs:delete())
        cs:close()
      end
      assert.same({}, u.mounts_under(root))
      assert.same({}, cgroup_dirs())
      local left = {}
      for _, pid in ipairs(monitors) do
        -- A zombie waiting for the host's reaper holds nothing; count the rest.
        local stat = read_first_line("/proc/" .. pid .. "/stat")
        if stat and stat:match("%(hcs%-monitor%) [^Z]") then left[#left + 1] = pid end
      end
      assert.same({}, left)
      -- Nothing of any system; the compiled seccomp program is a cache,
      -- one file per distinct filter, shared by all systems.
      local _, _, files = u.run("ls -A " .. root .. "/run/compute")
      local left_files = {}
      for f in files:gmatch("[^\n]+") do
        if not f:match("^%.seccomp%-%x+%.bpf$") then left_files[#left_files + 1] = f end
      end
      assert.same({}, left_files)
      assert.matches("%.seccomp%-%x+%.bpf", files)
    end)
  end)
end)
