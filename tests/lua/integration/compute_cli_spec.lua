-- The compute CLI commands (run, create, start, exec, ps, list, stats,
-- pause, resume, inspect, stop, kill, rm) through the real `hcs` binary.
local u = require "spec_util"
local json = require("hcs").json

describe("hcs compute CLI #root", function()
  local root, rootfs, parent, env

  local function hcs(...)
    return u.hcs({ ... }, env)
  end

  setup(function()
    root = u.tmpdir()
    rootfs = root .. "/rootfs"
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, rootfs)))
    parent = "hcs-test-cli-" .. root:match("hcs%-test%.(.*)$")
    env = { HCS_ROOT = root }
  end)

  teardown(function()
    local _, _, out = hcs("list", "--json")
    for _, s in ipairs(json.decode(out ~= "" and out or "[]")) do hcs("rm", "-f", s.Id) end
    u.rmtree(root)
    -- rmdir only removes an empty parent: nothing of a system may be left.
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
  end)

  it("run takes a rootfs relative to the working directory", function()
    local ok, code, out, err = u.run(("cd %s && HCS_ROOT=%s %s run --rm --cgroup-parent %s ./rootfs -- /bin/echo rel")
      :format(u.quote(root), u.quote(root), u.quote(u.hcs_bin), parent))
    assert.is_true(ok, err)
    assert.equal(0, code)
    assert.equal("rel\n", out)
  end)

  it("run passes init's exit status and output, and --rm removes the system", function()
    local ok, code, out = hcs("run", "--rm", "--cgroup-parent", parent, "--name", "r1", rootfs, "--", "/bin/sh", "-c",
      "echo out; exit 3")
    assert.is_false(ok)
    assert.equal(3, code)
    assert.equal("out\n", out)
    local _, _, list = hcs("list", "--json")
    assert.same({}, json.decode(list))
  end)

  it("run --json prints the final properties", function()
    local _, code, out = hcs("run", "--json", "--rm", "--cgroup-parent", parent, "-m", "32", "--rootfs", rootfs, "--",
      "/bin/true")
    assert.equal(0, code)
    local p = json.decode(out)
    assert.equal("Stopped", p.State)
    assert.equal("Exited", p.ExitType)
  end)

  it("drives a detached system through exec, ps, stats, pause, resume, stop and rm", function()
    local ok, _, out = hcs("run", "-d", "--name", "d1", "--cgroup-parent", parent, rootfs)
    assert.is_true(ok)
    assert.equal("d1\n", out)
    local _, code, eout = hcs("exec", "-e", "X=42", "d1", "--", "/bin/sh", "-c", "echo $X; exit 5")
    assert.equal(5, code)
    assert.equal("42\n", eout)
    local _, _, ps = hcs("ps", "--json", "d1")
    local procs = json.decode(ps)
    assert.equal("hcs-init", procs[1].ImageName)
    local _, _, stats = hcs("stats", "--json", "d1")
    assert.is_true(json.decode(stats)[1].Statistics.Memory.UsageBytes > 0)
    assert.is_true((hcs("pause", "d1")))
    local _, _, insp = hcs("inspect", "d1")
    assert.equal("Paused", json.decode(insp).State)
    local _, _, list = hcs("list", "--json", "--state", "Paused")
    assert.equal("d1", json.decode(list)[1].Id)
    assert.is_true((hcs("resume", "d1")))
    local rmok, rmcode, _, rmerr = hcs("rm", "d1")
    assert.is_false(rmok)
    assert.equal(1, rmcode)
    assert.matches("Running", rmerr)
    assert.is_true((hcs("stop", "-t", "2", "d1")))
    _, _, insp = hcs("inspect", "d1")
    assert.equal("Shutdown", json.decode(insp).ExitType)
    assert.is_true((hcs("rm", "d1")))
  end)

  it("create then start, and kill", function()
    assert.is_true((hcs("create", "--name", "c1", "--cgroup-parent", parent, rootfs, "--", "/bin/sleep", "1000")))
    local _, _, insp = hcs("inspect", "c1")
    assert.equal("Created", json.decode(insp).State)
    assert.is_true((hcs("start", "c1")))
    assert.is_true((hcs("kill", "c1")))
    _, _, insp = hcs("inspect", "c1")
    assert.equal("Terminated", json.decode(insp).ExitType)
    assert.is_true((hcs("rm", "c1")))
  end)

  it("rejects bad input with a message", function()
    local ok, code, _, err = hcs("run", "--rm", "-m", "1", "--cgroup-parent", parent, rootfs, "--", "/bin/true")
    assert.is_false(ok)
    assert.equal(125, code) -- docker's status for a failure of hcs itself
    assert.matches("`Container.Memory.SizeInMB`: expected an integer in %[4,", err)
    ok, code, _, err = hcs("inspect", "nosuch")
    assert.is_false(ok)
    assert.matches("compute system `nosuch` not found", err, 1, true)
    ok, code = hcs("exec", "onlyid")
    assert.equal(125, code)
  end)
end)
