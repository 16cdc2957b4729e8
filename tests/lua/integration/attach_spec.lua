-- Attach: the monitor's attach socket (<run root>/compute/<id>/attach), a
-- console kept by the monitor and logged, detach keys, resize, several
-- clients; through the real `hcs` binary on a pseudo-terminal (ptyrun).
local u = require "spec_util"

describe("hcs attach #root", function()
  local root, rootfs, parent, env

  local function hcs(...)
    return u.hcs({ ... }, env)
  end

  -- `hcs ARGS` on a new terminal of `size`, typing `input` (ptyrun escapes:
  -- \n, \eTEXT\e waits for TEXT, \w grows the terminal, \p \q ctrl-p ctrl-q).
  local function ptyrun(size, input, ...)
    local parts = { "HCS_ROOT=" .. u.quote(root), u.quote(u.build_dir .. "/tests/ptyrun"), "-s", size, u.quote(input),
      "--", u.quote(u.hcs_bin) }
    for _, a in ipairs({ ... }) do parts[#parts + 1] = u.quote(a) end
    local _, code, out = u.run(table.concat(parts, " "))
    return code, (out:gsub("\r", ""))
  end

  local function inspect_state(id)
    local _, _, out = hcs("list", "--json")
    for _, s in ipairs(require("hcs").json.decode(out ~= "" and out or "[]")) do
      if s.Id == id then return s.State end
    end
  end

  setup(function()
    root = u.tmpdir()
    rootfs = root .. "/rootfs"
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, rootfs)))
    parent = "hcs-test-attach-" .. root:match("hcs%-test%.(.*)$")
    env = { HCS_ROOT = root }
    assert(u.run("mkdir -p " .. root .. "/sync"))
  end)

  teardown(function()
    local _, _, out = hcs("list", "-q")
    for id in out:gmatch("%S+") do hcs("rm", "-f", id) end
    u.rmtree(root)
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
  end)

  it("attaches to a shell on a console, detaches, re-attaches, follows resizes and ends with its status", function()
    assert.is_true((hcs("run", "-dit", "--name", "a1", "--cgroup-parent", parent, rootfs, "/bin/sh")))
    local sock = root .. "/run/compute/a1/attach"
    local _, _, mode = u.run("stat -c '%F %a' " .. u.quote(sock))
    assert.equal("socket 600\n", mode)
    -- First client: a command, the size of its terminal, then ctrl-p ctrl-q.
    local code, out = ptyrun("30x100", "echo one-$((40+2))\\nstty size\\n\\e30 100\\e\\p\\q", "attach", "a1")
    assert.equal(0, code)
    assert.matches("one%-42\n", out)
    assert.matches("30 100\n", out)
    assert.equal("Running", inspect_state("a1"))
    -- Again, on a terminal that grows while attached (SIGWINCH -> resize).
    code, out = ptyrun("24x80", "stty size\\n\\e24 80\\e\\wstty size\\n\\e34 100\\e\\p\\q", "attach", "a1")
    assert.equal(0, code)
    assert.matches("24 80\n.*34 100\n", out)
    assert.equal("Running", inspect_state("a1"))
    -- The shell's exit ends the attach with its status.
    code, out = ptyrun("24x80", "echo bye\\nexit 3\\n", "attach", "a1")
    assert.equal(3, code)
    assert.matches("bye\n", out)
    assert.equal("Stopped", inspect_state("a1"))
    -- The console was logged as stdout, lines without their "\r".
    local lines = u.read_lines(root .. "/run/compute/a1/ctr.log")
    local text = table.concat(lines, "\n")
    -- (the record of the echo's line ends without the console's "\r")
    assert.matches(" stdout F one%-42\n", text)
    local _, lcode, lout = hcs("logs", "a1")
    assert.equal(0, lcode)
    assert.matches("one%-42\n", lout)
    assert.matches("bye\n", lout)
    -- Attaching to a stopped system says so.
    local _, acode, _, aerr = hcs("attach", "a1")
    assert.equal(1, acode)
    assert.matches("attach `a1`: the system is Stopped", aerr, 1, true)
    assert.is_nil(io.open(sock, "r"))
    assert.is_true((hcs("rm", "a1")))
  end)

  it("takes --detach-keys as docker does and passes a broken sequence on", function()
    assert.is_true((hcs("run", "-dit", "--name", "a2", "--cgroup-parent", parent, rootfs, "/bin/sh")))
    -- "q" then "a" is not the sequence: both reach the shell; "qz" detaches.
    local code, out = ptyrun("24x80", "echo qa-$((1+1))\\n\\eqa-2\\eqz", "attach", "--detach-keys", "q,z", "a2")
    assert.equal(0, code)
    assert.matches("qa%-2\n", out)
    assert.equal("Running", inspect_state("a2"))
    local _, bcode, _, berr = hcs("attach", "--detach-keys", "ctrl-4", "a2")
    assert.equal(2, bcode)
    assert.matches("--detach-keys: 'ctrl-4' is not a key", berr, 1, true)
    assert.is_true((hcs("rm", "-f", "a2")))
  end)

  it("serves two clients at once: both see the output, stdin reaches init", function()
    local sync = root .. "/sync"
    local cfg = root .. "/a3.json"
    u.write_file(cfg, require("hcs").json.encode {
      SchemaVersion = { Major = 2, Minor = 1 },
      Container = { Storage = { Path = rootfs }, MappedDirectories = { { HostPath = sync, ContainerPath = "/sync" } } },
      Linux = { CgroupParent = parent, Init = { CommandArgs = { "/bin/sh", "-c",
        "while [ ! -e /sync/go ]; do sleep 0.02; done; echo marker; read x; echo got-$x; exit 7" } } },
    })
    assert.is_true((hcs("create", "-i", "--name", "a3", cfg)))
    assert.is_true((hcs("start", "a3")))
    -- Client B: output only, in the background; connected once its process
    -- holds a socket.
    local bout = root .. "/b.out"
    local _, _, bpid = u.run(("HCS_ROOT=%s %s attach --no-stdin a3 >%s 2>&1 & echo $!"):format(u.quote(root),
      u.quote(u.hcs_bin), bout))
    bpid = bpid:match("%d+")
    local connected = false
    for _ = 1, 500 do
      local _, _, fds = u.run("ls -l /proc/" .. bpid .. "/fd 2>/dev/null | grep -c socket:")
      if tonumber(fds) and tonumber(fds) > 0 then
        connected = true
        break
      end
      u.run("sleep 0.01")
    end
    assert.is_true(connected)
    -- Client A: its stdin ("hello", then end of file) goes to init.
    u.write_file(sync .. "/go", "")
    local _, code, out = u.run(("printf 'hello\\n' | HCS_ROOT=%s %s attach a3"):format(u.quote(root), u.quote(u.hcs_bin)))
    assert.equal(7, code)
    assert.matches("got%-hello\n", out)
    -- B saw everything from its connection on, and ended with the system.
    for _ = 1, 500 do
      local _, _, alive = u.run("kill -0 " .. bpid .. " 2>/dev/null && echo yes")
      if alive == "" then break end
      u.run("sleep 0.01")
    end
    assert.equal("marker\ngot-hello\n", u.read_file(bout))
    assert.is_true((hcs("rm", "a3")))
  end)

  it("says so when a system has no attach socket or no attachable stdin", function()
    -- Created by the API without a log: its output went to its creator.
    assert.is_true((u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin), u.quote(([[
      local hcs = require "hcs"
      local cs = assert(hcs.compute.create("a4", hcs.compute.config{ rootfs = %q, cgroup_parent = %q }))
      assert(cs:start())]]):format(rootfs, parent))))))
    local _, code, _, err = hcs("attach", "a4")
    assert.equal(1, code)
    assert.matches("attach `a4`: the system has no attach socket", err, 1, true)
    assert.is_true((hcs("rm", "-f", "a4")))
    -- Created without -i: start -ai refuses before starting it.
    assert.is_true((hcs("create", "--name", "a5", "--cgroup-parent", parent, rootfs, "/bin/cat")))
    local _, scode, _, serr = hcs("start", "-ai", "a5")
    assert.equal(1, scode)
    assert.matches("the system has no attachable stdin (created without -i)", serr, 1, true)
    assert.equal("Created", inspect_state("a5"))
    assert.is_true((hcs("rm", "-f", "a5")))
  end)

  it("reopens an exec -d process from another process: signal, wait, exit code, output in the log", function()
    assert.is_true((hcs("run", "-d", "--name", "a7", "--cgroup-parent", parent, rootfs, "/bin/sleep", "1000")))
    local ok, _, pid = hcs("exec", "-d", "a7", "--", "/bin/sh", "-c", "echo from-exec; exec sleep 1000")
    assert.is_true(ok)
    pid = assert(tonumber(pid:match("^(%d+)\n$")))
    local script = ([[
      local hcs = require "hcs"
      local cs = assert(hcs.compute.open("a7"))
      local p = assert(hcs.process.open(cs, %d))
      assert(p:properties().Exited == false)
      assert(p:signal("TERM"))
      local done, code = p:wait(10000)
      assert(done, "not exited")
      io.write(code, " ", p:properties().ExitSignal, "\n")
      -- Not a process of this system: init of another one is refused.
      local q, err = hcs.process.open(cs, 1)
      assert(q == nil and err:match("no such process in the system"), err)]]):format(pid)
    local rok, _, out, err = u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin), u.quote(script)))
    assert.is_true(rok, err)
    assert.equal("143 15\n", out)
    -- The monitor relays the output to the log as it comes: wait for it.
    local lout
    for _ = 1, 250 do
      lout = select(3, hcs("logs", "a7"))
      if lout ~= "" then break end
      u.run("sleep 0.02")
    end
    assert.equal("from-exec\n", lout)
    assert.is_true((hcs("rm", "-f", "a7")))
  end)

  it("runs -it --rm of an image as docker: once detached, the system is removed as soon as it stops", function()
    assert(u.run(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, u.quote(root))))
    local code, out = ptyrun("24x80", "echo rm-$((1+1))\\n\\erm-2\\e\\p\\q", "run", "-it", "--rm", "--name", "a8",
      "--cgroup-parent", parent, "busybox", "/bin/sh")
    assert.equal(0, code)
    assert.matches("rm%-2\n", out)
    assert.equal("Running", inspect_state("a8"))
    -- The monitor removes it once it stops; attach still gets its status.
    code = ptyrun("24x80", "exit 3\\n", "attach", "a8")
    assert.equal(3, code)
    local gone = false
    for _ = 1, 500 do
      local _, _, plans = hcs("plan", "ls", "-q")
      if inspect_state("a8") == nil and not plans:find("a8", 1, true) then
        gone = true
        break
      end
      u.run("sleep 0.02")
    end
    assert.is_true(gone)
    -- Its scratch layer went with it; the image's layer stays.
    local _, _, layers = hcs("layer", "ls", "-q")
    assert.equal(1, select(2, layers:gsub("%S+", "")))
    assert.is_true((hcs("image", "rm", "busybox")))
  end)

  it("runs -it attached as docker: attach before start, detach leaves it running", function()
    local code, out = ptyrun("24x80", "echo first-$((1+1))\\n\\efirst-2\\e\\p\\q", "run", "-it", "--name", "a6", "--cgroup-parent", parent,
      rootfs, "/bin/sh")
    assert.equal(0, code)
    assert.matches("first%-2\n", out)
    assert.equal("Running", inspect_state("a6"))
    code = ptyrun("24x80", "exit 5\\n", "attach", "a6")
    assert.equal(5, code)
    assert.is_true((hcs("rm", "a6")))
  end)
end)
