-- Removing realized systems through the real CLI (rm, destroy, run --rm,
-- run --rm -d, signals during run --rm) and crash-safe realize: a realize
-- killed (SIGKILL) after each of its steps is cleaned up by the next
-- command, and one interrupted (SIGTERM) rolls itself back.  Real overlay
-- mounts, namespaces and cgroups in a private state root.
local u = require "spec_util"
local hcs = require "hcs"
local wf = hcs.workflow

local id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
local CG = "hcs-test-wfc-" .. id
local dir, root, env

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

--- hcs ARGS... in the test root; ok, code, stdout, stderr.
local function hcs_cli(...)
  return u.hcs({ ... }, env)
end

local function cgroup_dirs()
  local _, _, out = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -path '*" .. CG .. "/*' 2>/dev/null")
  return out
end

--- Nothing of system `name` is left: plan, compute system, scratch layer,
-- mounts, image reference, cgroups.
local function assert_gone(name)
  assert.is_nil(wf.plans.load(name, root))
  assert.is_nil(hcs.compute.open(name, root))
  assert.is_nil(u.read_file(root .. "/run/compute/" .. name .. "/state.json"))
  local layers <close> = assert(hcs.layer.open(root))
  assert.is_false(layers:exists(name))
  assert.same({}, u.mounts_under(root .. "/layers"))
  local images <close> = assert(hcs.image.open(root))
  assert.same({}, images:inspect("busybox").Users)
  assert.equal("", cgroup_dirs())
end

--- Wait until a system's monitor is gone (it may be gone already): with
-- an exit command, that is once the clean-up it runs is over.
local function wait_monitor(name)
  local cs = hcs.compute.open(name, root)
  if cs then
    assert(cs:wait())
    cs:close()
  end
end

describe("removing realized systems #root", function()
  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    env = { HCS_ROOT = root }
    sh(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, root))
    sh(("%s/tests/fixtures/make-busybox-rootfs.sh %s/rootfs"):format(u.source_dir, dir))
  end)

  teardown(function()
    for _, name in ipairs(wf.plans.list(root)) do wf.destroy_named(name, root, { kill = true }) end
    local _, _, out = hcs_cli("list", "--json")
    for _, s in ipairs(hcs.json.decode(out ~= "" and out or "[]") or {}) do hcs_cli("rm", "-f", s.Id) end
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. CG .. "' -exec rmdir {} + 2>/dev/null")
    u.rmtree(dir)
  end)

  describe("hcs rm", function()
    it("of a running realized system refuses without -f, and with -f destroys it whole", function()
      local ok, _, out, err = hcs_cli("run", "-d", "--name", "rm1", "--cgroup-parent", CG, "busybox", "--", "sleep", "100")
      assert.is_true(ok, err)
      assert.equal("rm1\n", out)
      local ok2, code, _, err2 = hcs_cli("rm", "rm1")
      assert.is_false(ok2)
      assert.equal(1, code)
      assert.matches("the system is Running %(stop it first or force%)", err2)
      assert.equal("Realized", wf.plans.load("rm1", root).State)
      ok, _, out, err = hcs_cli("rm", "-f", "rm1")
      assert.is_true(ok, err)
      assert.equal("rm1\n", out)
      assert_gone("rm1")
    end)

    it("of a stopped realized system destroys it whole", function()
      assert(hcs_cli("run", "-d", "--name", "rm2", "--cgroup-parent", CG, "busybox", "--", "true"))
      wait_monitor("rm2")
      local ok, _, _, err = hcs_cli("rm", "rm2")
      assert.is_true(ok, err)
      assert_gone("rm2")
    end)

    it("still deletes a plain compute system", function()
      assert(hcs_cli("run", "-d", "--name", "rm3", "--cgroup-parent", CG, "--rootfs", dir .. "/rootfs", "/bin/true"))
      wait_monitor("rm3")
      local ok, _, _, err = hcs_cli("rm", "rm3")
      assert.is_true(ok, err)
      assert.is_nil(hcs.compute.open("rm3", root))
    end)
  end)

  describe("hcs destroy", function()
    it("finishes when the compute system is already gone", function()
      assert(hcs_cli("run", "-d", "--name", "d1", "--cgroup-parent", CG, "busybox", "--", "sleep", "100"))
      -- What `hcs rm` did before: only the compute system goes.
      local cs = assert(hcs.compute.open("d1", root))
      assert(cs:delete(true))
      cs:close()
      local ok, _, _, err = hcs_cli("destroy", "d1")
      assert.is_true(ok, err)
      assert_gone("d1")
      local ok2, _, _, err2 = hcs_cli("destroy", "d1")
      assert.is_false(ok2)
      assert.matches('no planned system named "d1"', err2)
    end)

    it("finishes what an earlier destroy left (scratch layer already gone)", function()
      assert(hcs_cli("run", "-d", "--name", "d2", "--cgroup-parent", CG, "busybox", "--", "sleep", "100"))
      local cs = assert(hcs.compute.open("d2", root))
      assert(cs:delete(true))
      cs:close()
      local layers <close> = assert(hcs.layer.open(root))
      assert(layers:unprepare("d2"))
      assert(layers:deactivate("d2"))
      assert(layers:destroy("d2", true))
      local ok, _, _, err = hcs_cli("destroy", "d2")
      assert.is_true(ok, err)
      assert_gone("d2")
    end)
  end)

  describe("hcs run --rm", function()
    -- The system waits for a file in a mapped directory, so the test holds
    -- a handle on it (hence on its monitor) before it can exit.
    local function gate(name)
      local g = dir .. "/gate-" .. name
      sh("mkdir -p " .. g)
      return g, "while [ ! -e /gate/go ]; do sleep 0.02; done; exit 3"
    end

    local function open_then_release(name, g)
      local cs = assert(hcs.compute.open(name, root))
      u.write_file(g .. "/go", "")
      assert(cs:wait()) -- the monitor exits after the `hcs destroy --auto` it runs
      cs:close()
    end

    it("with -d destroys the system once it exits, with no CLI left", function()
      local g, script = gate("a1")
      local ok, _, out, err = hcs_cli("run", "--rm", "-d", "--name", "a1", "--cgroup-parent", CG, "-v", g .. ":/gate",
        "busybox", "--", "sh", "-c", script)
      assert.is_true(ok, err)
      assert.equal("a1\n", out)
      open_then_release("a1", g)
      assert_gone("a1")
    end)

    it("with -d deletes a rootfs system once it exits", function()
      local g, script = gate("a2")
      assert(hcs_cli("run", "--rm", "-d", "--name", "a2", "--cgroup-parent", CG, "-v", g .. ":/gate", "--rootfs",
        dir .. "/rootfs", "--", "/bin/sh", "-c", script))
      open_then_release("a2", g)
      assert.is_nil(u.read_file(root .. "/run/compute/a2/config.json"))
      local _, _, list = hcs_cli("list", "--json")
      assert.same({}, hcs.json.decode(list))
    end)

    it("survives a double Ctrl-C: the system is killed and destroyed, nothing is left", function()
      local out = dir .. "/int.out"
      local script = ([[
        HCS_ROOT=%s %s run --rm --name a3 --cgroup-parent %s busybox -- \
          sh -c 'echo up; exec sleep 100' >%s 2>%s.err &
        p=$!
        n=0
        until grep -q up %s; do n=$((n+1)); [ $n -lt 600 ] || { kill -KILL $p; exit 99; }; sleep 0.05; done
        kill -INT $p; kill -INT $p
        wait $p
        echo "status=$?"
      ]]):format(u.quote(root), u.quote(u.hcs_bin), CG, out, out, out)
      local _, _, res = u.run(script)
      assert.equal("status=130\n", res) -- 128 + SIGINT, as a shell reports it
      assert.matches("interrupted!", u.read_file(out .. ".err"))
      assert_gone("a3")
    end)

    it("destroys the system when the CLI gets SIGTERM", function()
      local out = dir .. "/term.out"
      local script = ([[
        HCS_ROOT=%s %s run --rm --name a4 --cgroup-parent %s busybox -- sh -c 'echo up; exec sleep 100' >%s 2>%s.err &
        p=$!
        n=0
        until grep -q up %s; do n=$((n+1)); [ $n -lt 600 ] || { kill -KILL $p; exit 99; }; sleep 0.05; done
        kill -TERM $p
        wait $p
        echo "status=$?"
      ]]):format(u.quote(root), u.quote(u.hcs_bin), CG, out, out, out)
      local _, _, res = u.run(script)
      assert.equal("status=143\n", res) -- 128 + SIGTERM
      assert.matches("interrupted by SIGTERM", u.read_file(out .. ".err"))
      assert_gone("a4")
    end)
  end)

  describe("a realize killed half-way", function()
    local points = { "journal", "take a reference on the image", "create the scratch layer", "activate the layers",
      "prepare the root file system", "create the compute system", "save the plan", "start the compute system" }

    for i, point in ipairs(points) do
      it("by SIGKILL after '" .. point .. "' is cleaned up by hcs destroy", function()
        local name = "k" .. i
        local ok, code = u.hcs({ "run", "-d", "--name", name, "--cgroup-parent", CG, "busybox", "--", "sleep", "100" },
          { HCS_ROOT = root, HCS_WF_KILL_AT = point })
        assert.is_false(ok)
        assert.equal(137, code) -- 128 + SIGKILL: the realize really died there
        assert.is_not_nil(wf.plans.load(name, root))
        local ok2, _, _, err = hcs_cli("destroy", name)
        assert.is_true(ok2, err)
        assert_gone(name)
      end)
    end

    it("by SIGKILL is rolled back by hcs plan ls (a run's plan goes, a plan's is Planned again)", function()
      local _, code = u.hcs({ "run", "-d", "--name", "l1", "--cgroup-parent", CG, "busybox", "--", "sleep", "100" },
        { HCS_ROOT = root, HCS_WF_KILL_AT = "create the compute system" })
      assert.equal(137, code)
      assert(hcs_cli("plan", "create", "busybox", "--name", "l2"))
      local _, code2 = u.hcs({ "realize", "l2", "--idle" }, { HCS_ROOT = root, HCS_WF_KILL_AT = "activate the layers" })
      assert.equal(137, code2)
      assert.equal("Realizing", wf.plans.load("l2", root).State)
      local ok, _, out, err = hcs_cli("plan", "ls")
      assert.is_true(ok, err)
      assert.is_nil(out:find("l1", 1, true))
      assert.matches("l2%s+Planned", out)
      assert_gone("l1")
      -- The plan realizes again, and destroys.
      local ok2, _, out2, err2 = hcs_cli("realize", "l2", "--idle")
      assert.is_true(ok2, err2)
      assert.matches("l2: Running", out2)
      assert(hcs_cli("destroy", "l2"))
      assert_gone("l2")
    end)

    it("by SIGTERM rolls itself back", function()
      for i, point in ipairs({ "journal", "activate the layers", "create the compute system", "save the plan" }) do
        local name = "t" .. i
        local ok, code, _, err = u.hcs({ "run", "-d", "--name", name, "--cgroup-parent", CG, "busybox", "--", "sleep",
          "100" }, { HCS_ROOT = root, HCS_WF_KILL_AT = point .. ":TERM" })
        assert.is_false(ok)
        assert.equal(143, code)
        assert.matches("interrupted by SIGTERM", err)
        assert_gone(name)
      end
    end)

    it("is never run twice at once on one name (the plan's lock)", function()
      assert(hcs_cli("plan", "create", "busybox", "--name", "lk"))
      local lock = assert(wf.plans.lock("lk", root)) -- as a realize in another process would hold it
      local ok, _, _, err = hcs_cli("realize", "lk", "--idle")
      assert.is_false(ok)
      assert.matches('"lk" is being realized or destroyed by another process', err)
      assert.equal("Planned", wf.plans.load("lk", root).State)
      wf.plans.unlock(lock)
      local ok2, _, _, err2 = hcs_cli("realize", "lk", "--idle")
      assert.is_true(ok2, err2)
      assert(hcs_cli("destroy", "lk"))
      assert_gone("lk")
      local _, _, names = u.run("ls -A " .. u.quote(root .. "/plans"))
      assert.equal("", names) -- no lock or temporary file left behind
    end)

    it("refuses to destroy a realize still in progress", function()
      -- A plan journaled by a live process (this one) is not debris.
      local plan = wf.plan { image = "busybox", name = "live", root = root }
      plan.State = "Realizing"
      plan.Owner = require("hcs.workflow.journal").owner()
      plan.Realized = { SystemId = "live", ScratchLayer = "live" }
      assert(wf.plans.save(plan, root))
      local ok, _, _, err = hcs_cli("destroy", "live")
      assert.is_false(ok)
      assert.matches('"live" is being realized by process %d+', err)
      assert(wf.plans.remove("live", root))
    end)
  end)

  describe("a realize on a network killed half-way", function()
    local HOST = "hcs-test-wfchost-" .. id

    setup(function()
      sh("ip netns add " .. HOST)
      sh(("ip -n %s link set lo up"):format(HOST))
    end)
    teardown(function() u.run("ip netns del " .. HOST) end)

    --- hcs ARGS... inside the "host" network namespace.
    local function in_host(...)
      local argv = { "nsenter", "--net=/run/netns/" .. HOST, "env", "HCS_ROOT=" .. root }
      for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
      local parts = {}
      for _, a in ipairs(argv) do parts[#parts + 1] = u.quote(a) end
      return u.run(table.concat(parts, " "))
    end

    it("leaves an endpoint and a compartment that hcs destroy removes", function()
      local ok, _, _, err = in_host(u.hcs_bin, "network", "create", "wfcnat", "--subnet", "10.78.0.0/24")
      assert.is_true(ok, err)
      for i, point in ipairs({ "create the network compartment", "create the network endpoint" }) do
        local name = "n" .. i
        local _, code = in_host("env", "HCS_WF_KILL_AT=" .. point, u.hcs_bin, "run", "-d", "--name", name,
          "--cgroup-parent", CG, "--network", "wfcnat", "-p", "18090:80", "busybox", "--", "sleep", "100")
        assert.equal(137, code)
        local ok2, _, _, err2 = in_host(u.hcs_bin, "destroy", name)
        assert.is_true(ok2, err2)
        assert_gone(name)
        local _, _, eps = in_host(u.hcs_bin, "endpoint", "ls", "--json")
        assert.same({}, hcs.json.decode(eps))
        assert.same({}, u.mounts_under(root .. "/run/netns/"))
        local _, _, links = u.run(("ip -n %s -o link show"):format(HOST))
        assert.is_nil(links:find("vh", 1, true))
      end
      -- A compartment that merely has the name is someone else's: realize
      -- refuses (it would take the name), destroy never deletes it.
      assert(hcs.net.namespace.create({ Id = "n3", ContainerId = "someone-else" }, { root = root }))
      local ok3, _, _, err3 = in_host(u.hcs_bin, "run", "-d", "--name", "n3", "--cgroup-parent", CG, "--network",
        "wfcnat", "busybox", "--", "sleep", "100")
      assert.is_false(ok3)
      assert.matches('a compartment named "n3" already exists', err3)
      assert.truthy(hcs.net.namespace.inspect("n3", { root = root }))
      assert(hcs.net.namespace.delete("n3", { root = root }))
      assert(in_host(u.hcs_bin, "network", "rm", "wfcnat"))
    end)
  end)
end)
