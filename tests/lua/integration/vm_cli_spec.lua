-- Virtual machines through the real `hcs` binary (ctest label `vm`): the
-- compute verbs take a VirtualMachine document (create, start, pause,
-- resume, inspect, list, kill, rm), `hcs vm save|restore|accel`, `hcs disk
-- create|resize|inspect`, `hcs info`.  One boot (TCG), with the busybox
-- initramfs of tests/tools/vm-initrd.sh counting on the console.
local u = require "spec_util"
local json = require("hcs").json

local kernel = (select(3, u.run("ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1")) or ""):gsub("%s+$", "")
local have_qemu = u.run("command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null")

describe("hcs VM CLI #root #vm", function()
  local root, parent, env, con

  local function hcs(...)
    return u.hcs({ ... }, env)
  end

  local function last_tick()
    local s = u.read_file(con) or ""
    local n
    for t in s:gmatch("tick (%d+)") do n = tonumber(t) end
    return n or -1
  end

  local function wait_until(f)
    for _ = 1, 1800 do
      if f() then return true end
      u.run("sleep 0.1")
    end
    return false
  end

  -- Run `hcs ARGS` (a shell-quoted string) with HCS_PAUSE_AT=label; once it
  -- stopped at that pause point, SIGKILL it.  True when it got there.
  local function kill_at(label, args)
    local _, _, pid = u.run(("HCS_ROOT=%s HCS_PAUSE_AT=%s %s %s >/dev/null 2>&1 & echo $!"):format(
      u.quote(root), u.quote(label), u.quote(u.hcs_bin), args))
    pid = assert(tonumber(pid))
    local stopped = wait_until(function()
      return (u.read_file("/proc/" .. pid .. "/stat") or ""):match("%) T ") ~= nil
    end)
    u.run("kill -KILL " .. pid)
    wait_until(function() return u.read_file("/proc/" .. pid .. "/stat") == nil end)
    return stopped
  end

  setup(function()
    root = u.tmpdir()
    parent = "hcs-test-vmcli-" .. root:match("hcs%-test%.(.*)$")
    env = { HCS_ROOT = root, HCS_VM_ACCEL = "tcg" }
    con = root .. "/console.log"
    if kernel ~= "" and have_qemu then
      assert(u.run(("%s/tests/tools/vm-initrd.sh %s/initrd.gz"):format(u.source_dir, root)))
    end
  end)

  teardown(function()
    local _, _, out = hcs("list", "--json")
    for _, s in ipairs(json.decode(out ~= "" and out or "[]")) do hcs("rm", "-f", s.Id) end
    _, _, out = hcs("network", "ls", "-q")
    for id in out:gmatch("%S+") do hcs("network", "rm", "--force", id) end
    u.rmtree(root)
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
  end)

  it("disk create, inspect, resize, and a disk on a backing file", function()
    if not have_qemu then pending("no qemu-img") return end
    local ok, code, _, err = hcs("disk", "create", "--format", "raw", "--size", "1M", root .. "/base.img")
    assert.is_true(ok and code == 0, err)
    local _, _, out = hcs("disk", "inspect", "--json", root .. "/base.img")
    local info = json.decode(out)
    assert.equal("raw", info.Format)
    assert.equal(1048576, info.VirtualSize)
    ok, code, _, err = hcs("disk", "create", "--backing", root .. "/base.img", root .. "/top.qcow2")
    assert.is_true(ok and code == 0, err)
    info = json.decode(select(3, hcs("disk", "inspect", "--json", root .. "/top.qcow2")))
    assert.equal("qcow2", info.Format)
    assert.equal(root .. "/base.img", info.BackingFile)
    assert.equal(1048576, info.VirtualSize)
    ok, code, _, err = hcs("disk", "resize", root .. "/top.qcow2", "2M")
    assert.is_true(ok and code == 0, err)
    info = json.decode(select(3, hcs("disk", "inspect", "--json", root .. "/top.qcow2")))
    assert.equal(2097152, info.VirtualSize)
    -- Existing files are never overwritten; bad input is named.
    local _, c2, _, e2 = hcs("disk", "create", "--size", "1M", root .. "/top.qcow2")
    assert.equal(1, c2)
    assert.matches("it exists", e2, 1, true)
    _, c2, _, e2 = hcs("disk", "create", "--size", "lots", root .. "/x.qcow2")
    assert.equal(1, c2)
    assert.matches('invalid size "lots"', e2, 1, true)
    _, c2, _, e2 = hcs("disk", "create", "--format", "raw", "--backing", root .. "/base.img", root .. "/y.img")
    assert.equal(1, c2)
    assert.matches("a backing file needs the qcow2 format", e2, 1, true)
  end)

  it("disk create killed mid-way leaves nothing beside the target", function()
    if not have_qemu then pending("no qemu-img") return end
    local dir = root .. "/killed"
    assert(u.run("mkdir -p " .. u.quote(dir)))
    -- Killed once qemu-img wrote the disk, before it is named.
    assert.is_true(kill_at("disk create: written", "disk create --size 1M " .. u.quote(dir .. "/d.qcow2")),
      "hcs disk create reached its pause point")
    local _, _, left = u.run("ls -A " .. u.quote(dir))
    assert.equal("", left)
    -- And the same create then succeeds.
    local ok, code, _, err = hcs("disk", "create", "--size", "1M", dir .. "/d.qcow2")
    assert.is_true(ok and code == 0, err)
    assert.equal("qcow2", json.decode(select(3, hcs("disk", "inspect", "--json", dir .. "/d.qcow2"))).Format)
  end)

  it("create, start, pause, resume, save, restore, kill and rm a VM from a document", function()
    if kernel == "" or not have_qemu then pending("no kernel or QEMU") return end
    local doc = {
      Owner = "vmcli",
      VirtualMachine = {
        StopOnReset = true,
        ComputeTopology = { Memory = { SizeInMB = 192 } },
        Chipset = { LinuxKernelDirect = { KernelFilePath = kernel, InitRdPath = root .. "/initrd.gz",
          KernelCmdLine = "console=ttyS0 quiet panic=-1 hcs.mode=counter" } },
        Devices = { ComPorts = { ["0"] = { Path = con } } },
      },
      Linux = { CgroupParent = parent },
    }
    u.write_file(root .. "/vm.json", json.encode(doc))
    local ok, code, out, err = hcs("create", "--name", "v1", root .. "/vm.json")
    assert.is_true(ok and code == 0, err)
    assert.equal("v1\n", out)
    -- A VM document takes no command.
    local _, c2, _, e2 = hcs("create", "--name", "v2", root .. "/vm.json", "/bin/true")
    assert.equal(125, c2)
    assert.matches("takes no command", e2, 1, true)

    local _, _, list = hcs("list")
    assert.matches("v1%s+vmcli%s+vm%s+Created", list)
    assert.equal(0, select(2, hcs("start", "v1")))
    assert.is_true(wait_until(function() return last_tick() >= 2 end), "the guest counts")
    -- This guest's init is no hcs-agent: exec says what is missing.
    local _, c1, _, e1 = u.hcs({ "exec", "v1", "/bin/true" }, { HCS_ROOT = root, HCS_VM_AGENT_TIMEOUT = "1500" })
    assert.equal(125, c1)
    assert.matches("the guest agent (does the VM boot the hcs initramfs?)", e1, 1, true)
    assert.equal(0, select(2, hcs("pause", "v1")))
    local insp = json.decode(select(3, hcs("inspect", "v1")))
    insp = insp[1] or insp
    assert.equal("Paused", insp.State)
    assert.equal("VirtualMachine", insp.SystemType)
    assert.equal("tcg", insp.VirtualMachine.Accelerator)
    local before = last_tick()
    u.run("sleep 1.5")
    assert.equal(before, last_tick())
    assert.equal(0, select(2, hcs("resume", "v1")))
    assert.is_true(wait_until(function() return last_tick() >= before + 2 end), "resumed")

    ok, code, _, err = hcs("vm", "save", "v1", root .. "/v1.state")
    assert.is_true(ok and code == 0, err)
    -- A save over that file killed between its temporary name and the
    -- rename leaves v1.state.tmp-PID; the next save to v1.state sweeps it.
    -- (QEMU saves a VM once per pause: each save follows a resume.)
    assert.equal(0, select(2, hcs("resume", "v1")))
    assert.is_true(kill_at("vm save: linked", "vm save v1 " .. u.quote(root .. "/v1.state")),
      "hcs vm save reached its pause point")
    assert.matches("v1.state.tmp-", select(3, u.run("ls " .. u.quote(root))), 1, true)
    assert.equal(0, select(2, hcs("resume", "v1")))
    ok, code, _, err = hcs("vm", "save", "v1", root .. "/v1.state")
    assert.is_true(ok and code == 0, err)
    assert.equal("", select(3, u.run("ls " .. u.quote(root) .. " | grep 'v1.state.tmp-' || true")))
    local saved = last_tick()
    assert.equal(0, select(2, hcs("rm", "-f", "v1")))
    ok, code, out, err = hcs("vm", "restore", "--name", "v1r", "--start", root .. "/v1.state")
    assert.is_true(ok and code == 0, err)
    assert.equal("v1r\n", out)
    assert.is_true(wait_until(function() return last_tick() > saved end), "the restored guest counts on")
    assert.equal(0, select(2, hcs("kill", "v1r")))
    insp = json.decode(select(3, hcs("inspect", "v1r")))
    insp = insp[1] or insp
    assert.equal("Stopped", insp.State)
    assert.equal("Terminated", insp.ExitType)
    assert.equal(0, select(2, hcs("rm", "v1r")))
    local _, _, left = hcs("list", "-q")
    assert.equal("", left)

    -- A restore from a file that is no saved state says so.
    _, c2, _, e2 = hcs("vm", "restore", root .. "/vm.json")
    assert.equal(1, c2)
    assert.matches("not an hcs saved state", e2, 1, true)
  end)

  it("hcs exec runs processes in a VM booted with the hcs initramfs (guest agent)", function()
    if kernel == "" or not have_qemu then pending("no kernel or QEMU") return end
    local version = kernel:match("vmlinuz%-(.*)$")
    local ok, code, out, err = hcs("vm", "initrd", "--kernel-modules", "/lib/modules", "--kernel", version,
      "-o", root .. "/agent-initrd.gz")
    assert.is_true(ok and code == 0, err)
    local doc = {
      Owner = "vmcli",
      VirtualMachine = {
        StopOnReset = true,
        ComputeTopology = { Memory = { SizeInMB = 256 } },
        Chipset = { LinuxKernelDirect = { KernelFilePath = kernel, InitRdPath = root .. "/agent-initrd.gz",
          KernelCmdLine = "console=ttyS0 quiet panic=-1" } },
        Devices = { ComPorts = { ["0"] = { Path = root .. "/agent-console.log" } } },
      },
      Linux = { CgroupParent = parent },
    }
    u.write_file(root .. "/agent-vm.json", json.encode(doc))
    ok, code, _, err = hcs("create", "--name", "va", root .. "/agent-vm.json")
    assert.is_true(ok and code == 0, err)
    -- Before start: not Running, said so.
    local _, c0, _, e0 = hcs("exec", "va", "/bin/true")
    assert.equal(125, c0)
    assert.matches("the system is Created, not Running", e0, 1, true)
    assert.equal(0, select(2, hcs("start", "va")))
    -- The first exec waits for the agent to boot; exit codes, stdout, stderr apart.
    ok, code, out, err = hcs("exec", "va", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert.equal(7, code, err)
    assert.equal("out\n", out)
    assert.equal("err\n", err)
    _, code, out = hcs("exec", "va", "uname", "-r")
    assert.equal(0, code)
    assert.equal(version .. "\n", out)
    -- stdin with -i; environment, user and directory.
    _, code, out = u.hcs({ "exec", "-i", "va", "tr", "a-z", "A-Z" }, env, "hello vm")
    assert.equal(0, code)
    assert.equal("HELLO VM", out)
    _, code, out = hcs("exec", "-e", "GREETING=hi", "-u", "nobody", "-w", "/tmp", "va", "sh", "-c",
      "echo $GREETING $(id -u) $(pwd)")
    assert.equal(0, code)
    assert.equal("hi 65534 /tmp\n", out)
    -- A missing command: 127 as for containers.
    local _, c3, _, e3 = hcs("exec", "va", "/no/such")
    assert.equal(127, c3)
    assert.matches("/no/such", e3, 1, true)
    -- A tty (-t) through script(1), which gives hcs a terminal: stty sees one.
    local _, c4, o4 = u.run(("script -qec %s /dev/null </dev/null"):format(u.quote(
      ("HCS_ROOT=%s %s exec -t va sh -c 'tty; exit 3'"):format(u.quote(root), u.quote(u.hcs_bin)))))
    assert.equal(3, c4, o4)
    assert.matches("/dev/pts/", o4, 1, true)
    -- The agent answered the monitor: properties say so.
    local ins = json.decode(select(3, hcs("inspect", "va")))
    ins = ins[1] or ins
    assert.is_true(ins.VirtualMachine.AgentReady)
    -- Its monitor is the small hcs-monitor program (exec'd once QEMU ran),
    -- which relayed the execs above and, idle, stays under half of conmon's
    -- resident size (2052 kB measured beside it, docs/PERFORMANCE.md).
    local mon = ins.MonitorPid
    local _, _, exe = u.run("readlink /proc/" .. mon .. "/exe")
    local _, _, want = u.run("readlink -f " .. u.quote(os.getenv("HCS_MONITOR")))
    assert.equal(want, exe)
    assert.equal("hcs-vm-monitor\n", u.read_file("/proc/" .. mon .. "/comm"))
    if os.getenv("HCS_SANITIZE") ~= "ON" then
      local rss
      assert.is_true(wait_until(function()
        rss = tonumber((u.read_file("/proc/" .. mon .. "/smaps_rollup") or ""):match("\nRss:%s+(%d+) kB"))
        return rss and rss < 1026
      end), "idle VM monitor RSS " .. tostring(rss) .. " kB")
    end
    -- The Lua API as the workflows' author step System:run calls it: pipes
    -- for stdin, stdout and stderr, read to the end, then wait.
    u.write_file(root .. "/run.lua", [[
      local hcs = require "hcs"
      local cs = assert(hcs.compute.open(arg[1]))
      local p = assert(cs:create_process({ CommandArgs = { "/bin/sh", "-c", "cat; echo e >&2; exit 5" },
        Environment = { PATH = "/bin:/sbin" }, CreateStdInPipe = true, CreateStdOutPipe = true,
        CreateStdErrPipe = true }))
      assert(p:pid() > 1)
      p.stdin:write("from lua")
      p:close_stdin()
      local out, err = hcs.core.fs.read_all(p.stdout, p.stderr)
      local done, code = p:wait()
      p:close()
      io.write(("%s|%s|%s|%s"):format(tostring(done), code, out, err))
      -- signals reach the guest process: SIGTERM gives 128 + 15
      local q = assert(cs:create_process({ CommandArgs = { "sleep", "100" } }))
      assert(q:signal(15))
      local _, c2 = q:wait()
      q:close()
      io.write("|" .. c2)
      -- a console: its size, then resized
      local t = assert(cs:create_process({ CommandArgs = { "sh", "-c", "stty size; read x; stty size" },
        EmulateConsole = true, ConsoleSize = { 24, 80 } }))
      local first = t.stdout:read("l")
      assert(t:resize(40, 100))
      t.stdin:write("\n")
      t.stdin:flush()
      local rest = t.stdout:read("a")
      local _, c3 = t:wait()
      t:close()
      io.write(("|%s|%s|%s"):format(first:gsub("%s+$", ""), rest:match("%d+ %d+") or rest, c3))
      cs:close()
    ]])
    local okl, cl, ol, el = u.hcs({ root .. "/run.lua", "va" }, env)
    assert.is_true(okl and cl == 0, el)
    assert.equal("true|5|from lua|e\n|143|24 80|40 100|0", ol)
    -- Two execs at once from two processes: each sees the other's file.
    local both = ("(%s exec va sh -c 'touch /tmp/a; while [ ! -e /tmp/b ]; do sleep 0.1; done; echo A' &) ; " ..
      "%s exec va sh -c 'touch /tmp/b; while [ ! -e /tmp/a ]; do sleep 0.1; done; echo B'; wait"):format(
      "HCS_ROOT=" .. u.quote(root) .. " timeout 120 " .. u.quote(u.hcs_bin),
      "HCS_ROOT=" .. u.quote(root) .. " timeout 120 " .. u.quote(u.hcs_bin))
    local okb, cb, ob, eb = u.run(both .. "; sleep 0.5")
    assert.is_true(okb and cb == 0, eb)
    assert.matches("B", ob, 1, true)
    -- A hot-added network adapter gets its endpoint's address from the
    -- agent (no ip= names it: this VM booted without adapters), and the
    -- guest reaches the network's gateway through it.
    local netname = "vmxn" .. root:match("hcs%-test%.(.*)$")
    local addnic = ([[
      local hcs = require "hcs"
      local n = assert(hcs.net.network.create{ Name = %q, Type = "NAT" })
      local ep = assert(hcs.net.endpoint.create{ Name = %q, HostComputeNetwork = %q })
      local cs = assert(hcs.compute.open("va"))
      local add = { ResourcePath = "VirtualMachine/Devices/NetworkAdapters/nic1", RequestType = "Add",
        Settings = { EndpointId = ep.Id } }
      -- Paused, its agent could not answer: refused rather than waiting.
      assert(cs:pause())
      local ok, err = cs:modify(add)
      assert(not ok and err:find("the VM is paused and its agent configures the adapter (resume it first)", 1, true), err)
      assert(cs:resume())
      assert(cs:modify(add))
      local ipc = ep.IpConfigurations[1]
      io.write(ipc.IpAddress, "/", ipc.PrefixLength, " ", n.Linux.Gateway)]]):format(netname, netname .. "ep", netname)
    local nok, _, nout, nerr = u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin), u.quote(addnic)))
    assert.is_true(nok, nerr)
    local cidr, gw = nout:match("^(%S+) (%S+)$")
    assert.is_truthy(cidr, nout)
    _, code, out = hcs("exec", "va", "ip", "-4", "addr")
    assert.equal(0, code)
    assert.matches("inet " .. cidr, out, 1, true)
    _, code, out = hcs("exec", "va", "ip", "route")
    assert.equal(0, code)
    assert.matches("default via " .. gw, out, 1, true)
    local _, pcode, pout, perr = hcs("exec", "va", "ping", "-c", "1", "-W", "10", gw)
    assert.equal(0, pcode, pout .. perr)
    local rmnic = [[
      local hcs = require "hcs"
      assert(assert(hcs.compute.open("va")):modify{ ResourcePath = "VirtualMachine/Devices/NetworkAdapters/nic1",
        RequestType = "Remove" })]]
    nok, _, _, nerr = u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin), u.quote(rmnic)))
    assert.is_true(nok, nerr)
    assert.equal(0, select(2, hcs("network", "rm", "--force", netname)))
    -- exec -d: the VM's monitor owns the process; it outlives its creator,
    -- another process reopens it by pid, signals and waits it, and learns
    -- its exit code (the monitor keeps it, also after the exit).
    local okd, cd, od, ed = hcs("exec", "-d", "va", "sh", "-c", "sleep 2; echo detached > /tmp/d1; exit 4")
    assert.is_true(okd and cd == 0, ed)
    local pid1 = assert(tonumber(od:match("^(%d+)\n$")), od)
    okd, cd, od, ed = hcs("exec", "-d", "va", "sleep", "1000")
    assert.is_true(okd and cd == 0, ed)
    local pid2 = assert(tonumber(od:match("^(%d+)\n$")), od)
    local reopen = ([[
      local hcs = require "hcs"
      local cs = assert(hcs.compute.open("va"))
      local p = assert(hcs.process.open(cs, %d))
      local done, code = p:wait(120000)
      assert(done, "not exited")
      io.write(code)
      local q = assert(hcs.process.open(cs, %d))
      assert(q:properties().Exited == false)
      assert(q:signal("TERM"))
      done, code = q:wait(60000)
      assert(done, "sleep not exited")
      io.write(" ", code, " ", q:properties().ExitSignal)
      local r, err = hcs.process.open(cs, 99999)
      assert(r == nil and err:match("no such process"), err)]]):format(pid1, pid2)
    local rok, _, rout, rerr = u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin), u.quote(reopen)))
    assert.is_true(rok, rerr)
    assert.equal("4 143 15", rout)
    _, code, out = hcs("exec", "va", "cat", "/tmp/d1")
    assert.equal(0, code)
    assert.equal("detached\n", out)
    -- Opened again after its exit, from yet another process: the monitor
    -- remembers the code.
    local again = ([[
      local hcs = require "hcs"
      local p = assert(hcs.process.open(assert(hcs.compute.open("va")), %d))
      local done, code = p:wait(0)
      io.write(tostring(done), " ", code)]]):format(pid1)
    rok, _, rout, rerr = u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin), u.quote(again)))
    assert.is_true(rok, rerr)
    assert.equal("true 4", rout)
    -- ... and its exit is in the event journal, as a container's exec -d.
    local _, _, ev = hcs("events", "--no-stream", "--filter", "type=process", "--json")
    assert.matches('"ExitCode":4', ev, 1, true)
    -- A detached process still running at shutdown does not hold the VM up.
    okd, cd, od, ed = hcs("exec", "-d", "va", "sleep", "1000")
    assert.is_true(okd and cd == 0, ed)
    -- Shutdown through ACPI: the agent powers the guest off; an exec still
    -- running ends with it (its process killed: 143, or the agent gone: 125).
    assert(u.run(("(HCS_ROOT=%s timeout 300 %s exec va sleep 1000; echo $? > %s) >/dev/null 2>%s &"):format(
      u.quote(root), u.quote(u.hcs_bin), u.quote(root .. "/bg.code"), u.quote(root .. "/bg.err"))))
    assert.is_true(wait_until(function()
      return select(3, hcs("exec", "va", "sh", "-c", "pidof sleep || true")) ~= ""
    end), "the background exec runs")
    assert.equal(0, select(2, hcs("stop", "-t", "60", "va")))
    assert.is_true(wait_until(function() return (u.read_file(root .. "/bg.code") or "") ~= "" end), "the exec ended")
    local bg = u.read_file(root .. "/bg.code"):gsub("%s+$", "")
    assert.is_true(bg == "143" or bg == "125", bg .. ": " .. (u.read_file(root .. "/bg.err") or ""))
    if bg == "125" then assert.matches("agent gone", u.read_file(root .. "/bg.err"), 1, true) end
    local insp = json.decode(select(3, hcs("inspect", "va")))
    insp = insp[1] or insp
    assert.equal("Stopped", insp.State)
    assert.equal("Shutdown", insp.ExitType)
    local _, c5, _, e5 = hcs("exec", "va", "/bin/true")
    assert.equal(125, c5)
    assert.matches("not Running", e5, 1, true)
    assert.equal(0, select(2, hcs("rm", "va")))
  end)

  it("info and vm accel say which accelerator VMs use", function()
    local _, code, out = hcs("vm", "accel")
    assert.equal(0, code)
    assert.matches("^tcg: HCS_VM_ACCEL", out)
    _, code, out = hcs("info")
    assert.equal(0, code)
    assert.matches("vm accel:%s+tcg", out)
  end)
end)
