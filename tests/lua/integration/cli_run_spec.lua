-- The command line a docker/podman user expects (issue #14): options end at
-- IMAGE/ID, combined short flags, Entrypoint + arguments, exit statuses
-- 125/126/127, unknown images with close matches, a bare word is always an
-- image, `create IMAGE`, `hcs --help/-h/--version`.  Real images in a
-- private state root, real systems under a private cgroup parent.
local u = require "spec_util"
local hcs = require "hcs"
local wf = hcs.workflow

describe("hcs run/exec/create as docker users expect #root", function()
  local dir, root, env, CG

  local function hcs_cli(...)
    return u.hcs({ ... }, env)
  end
  -- run in `cwd` (a working directory holding what a test needs)
  local function hcs_in(cwd, ...)
    local parts = { "cd", u.quote(cwd), "&&", "HCS_ROOT=" .. u.quote(root), u.quote(u.hcs_bin) }
    for _, a in ipairs({ ... }) do parts[#parts + 1] = u.quote(a) end
    return u.run(table.concat(parts, " "))
  end

  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    env = { HCS_ROOT = root }
    CG = "hcs-test-clirun-" .. dir:match("hcs%-test%.(.*)$")
    assert(u.run(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, u.quote(root))))
    -- An image with an Entrypoint and a Cmd, as many published images have.
    local plan = wf.plan { image = "busybox", name = "ep-author", root = root }
    local sys = wf.realize(plan, { idle = true })
    sys:config { Entrypoint = { "/bin/echo", "ep" }, Cmd = { "default" } }
    wf.capture(sys, { name = "ux/ep", version = "1" })
    assert(wf.destroy(sys))
  end)

  teardown(function()
    for _, name in ipairs(wf.plans.list(root)) do
      local ok, sys = pcall(wf.open, name, root)
      if ok then wf.destroy(sys) else wf.plans.remove(name, root) end
    end
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. CG .. "' -exec rmdir {} + 2>/dev/null")
    u.rmtree(dir)
  end)

  describe("options end at IMAGE or ID", function()
    it("gives the command its own options (-n is head's, not --name)", function()
      local ok, code, out, err = hcs_cli("run", "--rm", "--cgroup-parent", CG, "busybox", "head", "-n", "1",
        "/etc/passwd")
      assert.is_true(ok, err)
      assert.equal(0, code)
      assert.equal("root:x:0:0:root:/root:/bin/sh\n", out)
    end)

    it("keeps `--` after IMAGE working", function()
      local _, code, out = hcs_cli("run", "--rm", "--cgroup-parent", CG, "busybox", "--", "echo", "-n", "x")
      assert.equal(0, code)
      assert.equal("x", out)
    end)

    it("combines short flags (-it, -dit) and takes -p8080:80 attached", function()
      local args = require "hcs.util.args"
      local spec = { interactive = { kind = "flag", short = "i" }, tty = { kind = "flag", short = "t" },
        detach = { kind = "flag", short = "d" }, publish = { kind = "list", short = "p" } }
      local o, p = args.parse(spec, { "-dit", "-p8080:80", "-dp", "9090:90", "img", "-x" }, { stop_at_positional = true })
      assert.is_true(o.detach and o.interactive and o.tty)
      assert.same({ "8080:80", "9090:90" }, o.publish)
      assert.same({ "img", "-x" }, p)
      local _, code, out = hcs_cli("run", "-i", "--rm", "--cgroup-parent", CG, "busybox", "cat")
      assert.equal(0, code)
      assert.equal("", out)
    end)

    it("gives exec's command its options", function()
      local ok, code, out = hcs_cli("run", "-d", "--name", "ex1", "--cgroup-parent", CG, "busybox", "sleep", "600")
      assert.is_true(ok)
      assert.equal("ex1\n", out)
      local _, code1, out1 = hcs_cli("exec", "ex1", "ls", "-d", "/etc")
      assert.equal(0, code1)
      assert.equal("/etc\n", out1)
      local _, code2 = hcs_cli("exec", "ex1", "sh", "-c", "exit 4")
      assert.equal(4, code2)
      local _, code3, _, err3 = hcs_cli("exec", "ex1", "no-such-binary")
      assert.equal(127, code3)
      assert.matches("exec `no%-such%-binary`: No such file or directory", err3)
      local _, code4 = hcs_cli("exec", "ex1", "/etc/passwd")
      assert.equal(126, code4)
      assert.is_true((hcs_cli("destroy", "ex1")))
      code = code
    end)
  end)

  it("starts exec'd processes from init's environment, user and directory, with HOSTNAME, as docker exec", function()
    local ok, _, out, err = hcs_cli("run", "-d", "--name", "ex2", "--hostname", "box2", "-e", "A=1", "-e", "B=2",
      "-w", "/tmp", "-u", "1:1", "--cgroup-parent", CG, "busybox", "sleep", "600")
    assert.is_true(ok, err)
    assert.equal("ex2\n", out)
    local _, code, env = hcs_cli("exec", "-e", "B=3", "ex2", "env")
    assert.equal(0, code)
    assert.matches("\nA=1\n", "\n" .. env)
    assert.matches("\nB=3\n", "\n" .. env)
    assert.not_matches("\nB=2\n", "\n" .. env)
    assert.matches("\nHOSTNAME=box2\n", "\n" .. env)
    local _, _, who = hcs_cli("exec", "ex2", "sh", "-c", "id -u; pwd")
    assert.equal("1\n/tmp\n", who)
    local _, _, who2 = hcs_cli("exec", "-u", "0", "-w", "/", "ex2", "sh", "-c", "id -u; pwd")
    assert.equal("0\n/\n", who2)
    assert.is_true((hcs_cli("destroy", "ex2")))
  end)

  describe("Entrypoint and arguments", function()
    it("runs Entrypoint + Cmd without arguments", function()
      local _, code, out = hcs_cli("run", "--rm", "--cgroup-parent", CG, "ux/ep:1")
      assert.equal(0, code)
      assert.equal("ep default\n", out)
    end)
    it("appends arguments to the Entrypoint, replacing Cmd", function()
      local _, code, out = hcs_cli("run", "--rm", "--cgroup-parent", CG, "ux/ep:1", "42")
      assert.equal(0, code)
      assert.equal("ep 42\n", out)
    end)
    it("--entrypoint replaces it and drops the image's Cmd; '' clears it", function()
      local _, code, out = hcs_cli("run", "--rm", "--cgroup-parent", CG, "--entrypoint", "/bin/echo", "ux/ep:1")
      assert.equal(0, code)
      assert.equal("\n", out)
      _, code, out = hcs_cli("run", "--rm", "--cgroup-parent", CG, "--entrypoint", "/bin/echo", "ux/ep:1", "a", "b")
      assert.equal(0, code)
      assert.equal("a b\n", out)
      _, code, out = hcs_cli("run", "--rm", "--cgroup-parent", CG, "--entrypoint", "", "ux/ep:1", "echo", "cleared")
      assert.equal(0, code)
      assert.equal("cleared\n", out)
    end)
    it("keeps them apart in the plan", function()
      local plan = wf.plan { image = "ux/ep:1", name = "ep-plan", root = root, command = { "x" } }
      assert.same({ "/bin/echo", "ep" }, plan.Entrypoint)
      assert.same({ "x" }, plan.Command)
      assert(wf.plans.remove("ep-plan", root))
    end)
  end)

  describe("exit statuses", function()
    it("are the command's own, 127 not found, 126 not executable, 125 hcs failed", function()
      local _, code = hcs_cli("run", "--rm", "--cgroup-parent", CG, "busybox", "sh", "-c", "exit 3")
      assert.equal(3, code)
      local _, code127, _, err127 = hcs_cli("run", "--rm", "--cgroup-parent", CG, "busybox", "no-such-binary")
      assert.equal(127, code127)
      assert.matches("exec `no%-such%-binary`: No such file or directory\n$", err127)
      local _, code126 = hcs_cli("run", "--rm", "--cgroup-parent", CG, "busybox", "/etc/passwd")
      assert.equal(126, code126)
      local _, code125, _, err125 = hcs_cli("run", "--rm", "--cgroup-parent", CG, "-u", "nosuchuser", "busybox", "true")
      assert.equal(125, code125)
      -- an ordinary failure is one line: what failed and why, no traceback
      assert.matches("^hcs run: [^\n]*unknown user in `nosuchuser`[^\n]*\n$", err125)
      local _, code_mem, _, err_mem = hcs_cli("run", "--rm", "--cgroup-parent", CG, "-m", "1", "busybox", "true")
      assert.equal(125, code_mem)
      assert.matches("^hcs run: [^\n]*Memory.SizeInMB must be an integer >= 4, got 1\n$", err_mem)
      local _, _, _, err_dbg = hcs_cli("--log-level", "debug", "run", "--rm", "--cgroup-parent", CG, "-u", "nosuchuser",
        "busybox", "true")
      assert.matches("stack traceback", err_dbg)
      local _, code2 = hcs_cli("run", "--bogus", "busybox")
      assert.equal(125, code2)
      assert.same({}, wf.plans.list(root))
      assert.same({}, u.mounts_under(root .. "/layers"))
    end)
  end)

  describe("hcs.compute", function()
    it("reports a failed exec with its errno (ENOENT, EACCES) as the error's status", function()
      local rootfs = dir .. "/errno-rootfs"
      assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, u.quote(rootfs))))
      for _, case in ipairs({ { "no-such-binary", 2 }, { "/etc/passwd", 13 } }) do
        local doc = assert(hcs.compute.config { rootfs = rootfs, command = { case[1] }, cgroup_parent = CG })
        local cs = assert(hcs.compute.create("errno-" .. case[2], doc, { root = root }))
        local ok, msg, errno = cs:start()
        assert.is_nil(ok)
        assert.matches("exec `" .. case[1]:gsub("%-", "%%-") .. "`", msg)
        assert.equal(case[2], errno)
        assert(cs:delete(true))
      end
      local doc = assert(hcs.compute.config { rootfs = rootfs, command = { "sleep", "600" }, cgroup_parent = CG })
      local cs = assert(hcs.compute.create("errno-exec", doc, { root = root }))
      assert(cs:start())
      local p, msg, errno = cs:create_process { CommandArgs = { "no-such-binary" } }
      assert.is_nil(p)
      assert.matches("exec `no%-such%-binary`: No such file or directory", msg)
      assert.equal(2, errno)
      cs:terminate()
      cs:wait()
      assert(cs:delete(true))
    end)
  end)

  describe("image references", function()
    it("says an image is unknown and lists close matches", function()
      local ok, code, _, err = hcs_cli("run", "--rm", "busybx", "true")
      assert.is_false(ok)
      assert.equal(125, code)
      assert.equal("hcs run: unknown image 'busybx' (did you mean busybox?)\n", err)
      local _, _, _, err2 = hcs_cli("run", "--rm", "ux/ep:2")
      assert.matches("unknown image 'ux/ep:2' %(did you mean ux/ep:1", err2)
    end)

    it("never lets a directory named as an image win; a path runs the directory", function()
      local cwd = dir .. "/cwd"
      assert(u.run(("mkdir -p %s/busybox %s/rootonly && %s/tests/fixtures/make-busybox-rootfs.sh %s/rootonly")
        :format(cwd, cwd, u.source_dir, cwd)))
      -- An empty ./busybox would fail to run anything: the image runs.
      local _, code, out = hcs_in(cwd, "run", "--rm", "--cgroup-parent", CG, "busybox", "echo", "from-image")
      assert.equal(0, code)
      assert.equal("from-image\n", out)
      -- A bare word that only names a directory is an unknown image, with the way to run the directory.
      local _, code2, _, err2 = hcs_in(cwd, "run", "--rm", "rootonly", "true")
      assert.equal(125, code2)
      assert.matches("unknown image 'rootonly'.*give it as a path: %./rootonly", err2)
      local _, code3, out3 = hcs_in(cwd, "run", "--rm", "--cgroup-parent", CG, "./rootonly", "echo", "from-dir")
      assert.equal(0, code3)
      assert.equal("from-dir\n", out3)
    end)
  end)

  describe("create IMAGE", function()
    it("realizes without starting; start runs it", function()
      local ok, _, out, err = hcs_cli("create", "--name", "cr1", "--cgroup-parent", CG, "busybox", "sleep", "600")
      assert.is_true(ok, err)
      assert.equal("cr1\n", out)
      local _, _, props = hcs_cli("inspect", "cr1")
      assert.equal("Created", hcs.json.decode(props).State)
      assert.is_true((hcs_cli("start", "cr1")))
      _, _, props = hcs_cli("inspect", "cr1")
      assert.equal("Running", hcs.json.decode(props).State)
      assert.is_true((hcs_cli("destroy", "cr1")))
      assert.same({}, wf.plans.list(root))
    end)
  end)

  describe("images, listings and builds", function()
    it("commit --name repo:tag tags the image; image ls has one row per tag; -q prints ids", function()
      assert.is_true((hcs_cli("run", "-d", "--name", "cm1", "--cgroup-parent", CG, "busybox", "sleep", "600")))
      assert.is_true((hcs_cli("exec", "cm1", "sh", "-c", "echo v1 > /marker")))
      local ok, _, out, err = hcs_cli("commit", "cm1", "--name", "ux/app:v1", "--json")
      assert.is_true(ok, err)
      local img = hcs.json.decode(out)
      assert.equal("ux/app", img.Name)
      assert.equal("v1", img.Version)
      local _, _, ambiguous_err = select(2, hcs_cli("commit", "cm1", "--name", "ux/app:v2", "--version", "v3"))
      assert.matches("already has the tag v2", ambiguous_err)
      assert.is_true((hcs_cli("image", "tag", "ux/app:v1", "ux/app:stable")))
      local _, _, ls = hcs_cli("image", "ls")
      assert.matches("\nux/app%s+stable%s", ls)
      assert.matches("\nux/app%s+v1%s", ls)
      local _, _, q = hcs_cli("image", "ls", "-q")
      assert.matches(img.Id, q, 1, true)
      for line in q:gmatch("[^\n]+") do assert.matches("^%x+$", line) end
      local _, _, lq = hcs_cli("list", "-q")
      assert.matches("^cm1\n", lq)
      local _, _, pq = hcs_cli("plan", "ls", "-q")
      assert.equal("cm1\n", pq)
      local _, _, psq = hcs_cli("ps", "-q")
      assert.equal("cm1\n", psq)
      local _, _, layerq = hcs_cli("layer", "ls", "-q")
      for line in layerq:gmatch("[^\n]+") do assert.matches("^[%w_.-]+$", line) end
      assert.is_true((hcs_cli("destroy", "cm1")))
      local _, code, run_out = hcs_cli("run", "--rm", "--cgroup-parent", CG, "ux/app:stable", "cat", "/marker")
      assert.equal(0, code)
      assert.equal("v1\n", run_out)
    end)

    it("builds a recipe from any working directory, copying from the recipe's folder", function()
      local rdir = dir .. "/recipe"
      assert(u.run("mkdir -p " .. u.quote(rdir .. "/files")))
      u.write_file(rdir .. "/files/hello.txt", "hello from the recipe folder\n")
      u.write_file(rdir .. "/r.lua", [[
return { from = "busybox", name = "ux/built", version = "1",
  author = function(sys) sys:copy("files/hello.txt", "/hello.txt") end }]])
      local ok, code, _, err = hcs_in("/", "build", rdir .. "/r.lua")
      assert.is_true(ok, err)
      assert.equal(0, code)
      local _, rc, out = hcs_cli("run", "--rm", "--cgroup-parent", CG, "ux/built:1", "cat", "/hello.txt")
      assert.equal(0, rc)
      assert.equal("hello from the recipe folder\n", out)
    end)

    it("exposes building and the compute handle in the Lua API", function()
      local img = wf.build({ from = "busybox", name = "ux/api", version = "1", dir = dir .. "/recipe",
        author = function(sys) sys:copy("files/hello.txt", "/api.txt") end }, { root = root })
      assert.equal("ux/api", img.Name)
      local sys = wf.define { image = "ux/api:1", name = "api1", root = root, command = { "sleep", "600" } }
      local cs = sys:compute()
      assert.equal("Running", cs:properties().State)
      local p = assert(cs:create_process { CommandArgs = { "cat", "/api.txt" }, CreateStdOutPipe = true })
      assert.equal("hello from the recipe folder\n", p.stdout:read("a"))
      p:wait()
      p:close()
      assert(wf.destroy(sys))
    end)
  end)

  describe("-t", function()
    local function ptyrun(size, input, ...)
      local parts = { "HCS_ROOT=" .. u.quote(root), u.quote(u.build_dir .. "/tests/ptyrun"), "-s", size, u.quote(input),
        "--", u.quote(u.hcs_bin) }
      for _, a in ipairs({ ... }) do parts[#parts + 1] = u.quote(a) end
      local ok, code, out = u.run(table.concat(parts, " "))
      return ok, code, (out:gsub("\r", ""))
    end

    it("gives the console the terminal's size and follows resizes", function()
      local ok, code, out = ptyrun("30x100", "\\o\\wgo\\n", "run", "-t", "-i", "--rm", "--cgroup-parent", CG, "busybox",
        "sh", "-c", "stty size; read x; stty size")
      assert.is_true(ok, out)
      assert.equal(0, code)
      assert.matches("^30 100\n.*40 120\n", out)
    end)

    it("sets TERM, HOME and HOSTNAME as docker does", function()
      local _, code, out = ptyrun("24x80", "", "run", "-t", "--rm", "--name", "envtest", "--cgroup-parent", CG, "busybox",
        "sh", "-c", "echo \"[$TERM][$HOME][$HOSTNAME]\"")
      assert.equal(0, code)
      assert.matches("%[xterm%]%[/root%]%[envtest%]", out)
      local _, _, out2 = hcs_cli("run", "--rm", "-u", "nobody", "--cgroup-parent", CG, "-e", "HOSTNAME=mine", "busybox",
        "sh", "-c", "echo \"[${TERM-unset}][$HOME][$HOSTNAME]\"")
      assert.matches("%[unset%]%[/nonexistent%]%[mine%]", out2)
      local _, _, out3 = hcs_cli("run", "--rm", "-u", "4321", "--cgroup-parent", CG, "busybox", "sh", "-c", "echo [$HOME]")
      assert.equal("[/]\n", out3)
    end)
  end)

  describe("the REPL", function()
    it("interrupts a blocking wait with Ctrl-C and goes on", function()
      assert.is_true((hcs_cli("run", "-d", "--name", "w1", "--cgroup-parent", CG, "busybox", "sleep", "600")))
      local ok, code, out = u.run(("HCS_ROOT=%s HCS_HISTORY=%s/history %s/tests/ptyrun %s -- %s"):format(
        u.quote(root), u.quote(dir), u.build_dir,
        u.quote("cs = hcs.compute.open('w1')\\ncs:wait()\\n\\cprint('after', cs:properties().State)\\n"),
        u.quote(u.hcs_bin)))
      assert.is_true(ok, out)
      assert.equal(0, code)
      assert.matches("interrupted!", out)
      assert.matches("after\tRunning", out)
      assert.is_true((hcs_cli("destroy", "w1")))
    end)
  end)

  describe("the host's own flags", function()
    it("answers --help, -h and --version", function()
      for _, flag in ipairs({ "--help", "-h" }) do
        local ok, code, out = hcs_cli(flag)
        assert.is_true(ok, flag)
        assert.equal(0, code)
        assert.matches("usage: hcs", out)
        assert.matches("commands:", out)
      end
      local ok, _, out = hcs_cli("--version")
      assert.is_true(ok)
      assert.matches("^hcs %d+%.%d+%.%d+", out)
    end)
  end)
end)
