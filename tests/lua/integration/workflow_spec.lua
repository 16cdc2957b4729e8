-- hcs.workflow end to end: plan, customize, validate, realize, author,
-- capture, destroy, rollback, user workflows, `hcs build`, networking.
-- Real overlay mounts, namespaces and cgroups; a private state root; the
-- network cases run inside a "host" netns of their own.
local u = require "spec_util"
local hcs = require "hcs"
local wf = hcs.workflow

local id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
local CG = "hcs-test-wf-" .. id
local dir, root

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

local function cgroup_dirs()
  local _, _, out = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -path '*" .. CG .. "/*' 2>/dev/null")
  return out
end

describe("hcs.workflow #root", function()
  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    sh(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, root))
  end)

  teardown(function()
    for _, name in ipairs(wf.plans.list(root)) do
      local ok, sys = pcall(wf.open, name, root)
      if ok then wf.destroy(sys) else wf.plans.remove(name, root) end
    end
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. CG .. "' -exec rmdir {} + 2>/dev/null")
    u.rmtree(dir)
  end)

  describe("plan()", function()
    it("makes a persisted planned system with the image's defaults", function()
      local plan = wf.plan { image = "busybox", name = "p1", root = root }
      assert.equal("Planned", plan.State)
      assert.same({ "/bin/sh" }, plan.Command)
      assert.matches("PATH=", "PATH=" .. plan.Environment.PATH)
      local saved = assert(wf.plans.load("p1", root))
      assert.equal(plan.ImageId, saved.ImageId)
      assert.is_nil(saved._root)
    end)

    it("refuses a missing image, a taken name and a bad name", function()
      assert.has_error(function() wf.plan { image = "nosuch:1", name = "x", root = root } end,
        "image `nosuch:1`: No such file or directory")
      assert.has_error(function() wf.plan { image = "busybox", name = "p1", root = root } end,
        'plan: a system named "p1" is already planned')
      local ok, err = pcall(wf.plan, { image = "busybox", name = "../evil", root = root })
      assert.is_false(ok)
      assert.matches("invalid system name", err)
      assert.has_error(function() wf.plan { name = "x" } end)
    end)
  end)

  describe("customize()", function()
    it("changes resources, environment, mounts, command and the name", function()
      local plan = assert(wf.plans.load("p1", root))
      plan._root = root
      wf.customize(plan, { memory = 64, cpus = 1, env = { "MODE=test" }, mounts = { dir .. ":/host:ro" },
        command = "echo hi", name = "p2" })
      assert.is_nil(wf.plans.load("p1", root))
      local saved = assert(wf.plans.load("p2", root))
      assert.equal(64, saved.Memory.SizeInMB)
      assert.equal(1, saved.Processor.Count)
      assert.equal("test", saved.Environment.MODE)
      assert.same({ HostPath = dir, ContainerPath = "/host", ReadOnly = true }, saved.MappedDirectories[1])
      assert.same({ "/bin/sh", "-c", "echo hi" }, saved.Command)
      assert.equal("p2", saved.HostName)
    end)

    it("names the unknown field", function()
      local plan = assert(wf.plans.load("p2", root))
      plan._root = root
      local ok, err = pcall(wf.customize, plan, { memroy = 5 })
      assert.is_false(ok)
      assert.matches('unknown field "memroy"', err)
    end)
  end)

  describe("validate()", function()
    it("accepts a good plan", function()
      local plan = assert(wf.plans.load("p2", root))
      plan._root = root
      assert.is_true(wf.validate(plan))
    end)

    it("reports every problem at once", function()
      local plan = assert(wf.plans.load("p2", root))
      plan._root = root
      plan.ImageId, plan.Image = "0000000000000000000000000000000000000000000000000000000000000000", "gone:1"
      plan.Memory.SizeInMB = 1024 * 1024 * 64
      plan.Processor.Count = 4096
      plan.MappedDirectories[1].HostPath = dir .. "/does-not-exist"
      plan.Network = { Name = "no-such-network", PortMappings = { { ExternalPort = 80, InternalPort = 80 },
        { ExternalPort = 80, InternalPort = 81 } } }
      local ok, problems = wf.validate(plan)
      assert.is_nil(ok)
      local text = table.concat(problems, "\n")
      assert.matches('image "gone:1" is not in the image store', text)
      assert.matches("exceeds the host's", text)
      assert.matches("Processor.Count 4096 exceeds", text)
      assert.matches("does not exist", text)
      assert.matches('network "no%-such%-network" does not exist', text)
      assert.matches("mapped twice", text)
      assert.truthy(#problems >= 6)
    end)
  end)

  describe("realize(), authoring and capture()", function()
    local sys

    it("realizes a plan into a running system with its limits", function()
      local plan = assert(wf.plans.load("p2", root))
      plan._root = root
      sys = wf.realize(plan, { idle = true, cgroup_parent = CG })
      assert.equal("Running", sys:properties().State)
      assert.equal("Realized", wf.plans.load("p2", root).State)
      local limit = u.read_file(("/sys/fs/cgroup/memory/%s/p2/memory.limit_in_bytes"):format(CG))
        or u.read_file(("/sys/fs/cgroup/unified/%s/p2/memory.max"):format(CG))
      assert.equal(64 * 1024 * 1024, tonumber(limit))
      local images <close> = assert(hcs.image.open(root))
      assert.same({ "p2" }, images:inspect("busybox").Users)
    end)

    it("runs commands with the plan's environment and the mapped directory", function()
      local code, out = sys:run "echo $MODE; hostname; ls /host/root >/dev/null && echo mapped"
      assert.equal(0, code)
      assert.equal("test\np2\nmapped\n", out)
      local c2, _, err = sys:run({ "sh", "-c", "echo oops >&2; exit 3" }, { check = false })
      assert.equal(3, c2)
      assert.equal("oops\n", err)
      local ok, e = pcall(sys.run, sys, "exit 5")
      assert.is_false(ok)
      assert.matches("exit code 5", e)
      local _, echoed = sys:run({ "cat" }, { input = "through stdin" })
      assert.equal("through stdin", echoed)
    end)

    it("keeps a read-only mapping read-only", function()
      local code = sys:run("touch /host/x", { check = false })
      assert.are_not.equal(0, code)
    end)

    it("refuses to remove the image while the system uses it", function()
      local images <close> = assert(hcs.image.open(root))
      local ok, err = images:remove("busybox")
      assert.is_nil(ok)
      assert.matches("in use by container p2", err)
    end)

    it("captures added, changed and deleted files into a new image", function()
      sys:run "mkdir -p /app && echo v1 > /app/data && rm -rf /home && echo changed >> /etc/hosts"
      u.write_file(dir .. "/app.sh", "#!/bin/sh\necho \"app says $GREETING\"\n")
      os.execute("chmod 755 " .. dir .. "/app.sh")
      sys:copy(dir .. "/app.sh", "/app/app.sh")
      sys:config { Cmd = { "/app/app.sh" }, Env = { "GREETING=hello" }, Labels = { stage = "test" } }
      local img = wf.capture(sys, { name = "captured", version = "1", publisher = "Tests" })
      assert.equal("captured", img.Name)
      assert.equal(2, #img.Layers)
      assert.same({ "/app/app.sh" }, img.Config.config.Cmd)
      assert.equal("test", img.Config.config.Labels.stage)
      local env = table.concat(img.Config.config.Env, " ")
      assert.matches("GREETING=hello", env)
      assert.matches("PATH=", env)
      assert.equal("Running", sys:properties().State) -- capture does not stop the container
      -- Capturing the same changes again shares the layer (content-addressed).
      local again = wf.capture(sys, { name = "captured-again", version = "1" })
      assert.equal(img.Layers[2], again.Layers[2])
      local images <close> = assert(hcs.image.open(root))
      assert(images:remove("captured-again:1"))
      local layers <close> = assert(hcs.layer.open(root))
      assert.is_true(layers:exists(img.Layers[2])) -- still used by "captured"
    end)

    it("destroys the system and everything it used", function()
      assert(wf.destroy(sys))
      local layers <close> = assert(hcs.layer.open(root))
      assert.is_false(layers:exists("p2"))
      assert.is_nil(wf.plans.load("p2", root))
      assert.same({}, u.mounts_under(root))
      assert.equal("", cgroup_dirs())
      local images <close> = assert(hcs.image.open(root))
      assert.same({}, images:inspect("busybox").Users)
    end)

    it("runs the captured image anywhere the base runs, with the changes", function()
      local run = wf.define({ image = "captured:1", name = "from-captured", root = root },
        { idle = true, cgroup_parent = CG })
      local _, out = run:run "/app/app.sh; cat /app/data; test -e /home || echo no-home; tail -1 /etc/hosts"
      assert.equal("app says hello\nv1\nno-home\nchanged\n", out)
      assert(wf.destroy(run))
    end)
  end)

  describe("capture{stop = true}", function()
    it("moves the changes into the layer (no copy) with the same result as a copy", function()
      local change = "mkdir -p /srv && echo moved > /srv/f && rm -rf /home && echo changed >> /etc/hosts"
      local a = wf.define({ image = "busybox", name = "mover", root = root }, { idle = true, cgroup_parent = CG })
      local b = wf.define({ image = "busybox", name = "copier", root = root }, { idle = true, cgroup_parent = CG })
      a:run(change)
      b:run(change)
      local layers <close> = assert(hcs.layer.open(root))
      -- The same times too: export records mtimes (of the whiteout and the
      -- mount points as well), and the two systems may be made in different seconds.
      for _, name in ipairs { "mover", "copier" } do
        assert(u.run("find " .. u.quote(layers:inspect(name).Path .. "/diff") .. " -exec touch -h -d @1577836800 {} +"))
      end
      local ok, err = layers:commit_scratch("mover")
      assert.is_nil(ok)
      assert.matches("activated", err) -- refused while the system runs on it
      local moved = wf.capture(a, { name = "moved", version = "1", stop = true })
      assert.equal("Stopped", a:properties().State)
      local _, _, left = u.run("ls -A " .. u.quote(layers:inspect("mover").Path .. "/diff"))
      assert.equal("", left) -- the files left the scratch layer: moved, not copied
      local copied = wf.capture(b, { name = "copied", version = "1" })
      -- Same content, same canonical diff id, hence the same layer.
      assert.equal(copied.Config.rootfs.diff_ids[2], moved.Config.rootfs.diff_ids[2])
      assert.equal(copied.Layers[2], moved.Layers[2])
      assert(wf.destroy(a))
      assert(wf.destroy(b))
      local images <close> = assert(hcs.image.open(root))
      assert(images:remove("copied:1"))
      local layer = assert(layers:inspect(moved.Layers[2]))
      local r = assert(layers:export(layer.Id, dir .. "/moved.tar", { compression = "none" }))
      assert.equal(layer.DiffID, r.DiffID)
      local run = wf.define({ image = "moved:1", name = "from-moved", root = root }, { idle = true, cgroup_parent = CG })
      local _, out = run:run "cat /srv/f; test -e /home || echo no-home; tail -1 /etc/hosts"
      assert.equal("moved\nno-home\nchanged\n", out)
      assert(wf.destroy(run))
      assert(images:remove("moved:1"))
      assert.same({}, u.mounts_under(root))
    end)
  end)

  describe("rollback", function()
    it("undoes every step when a late step fails", function()
      local plan = wf.plan { image = "busybox", name = "doomed", root = root }
      local ok, err = pcall(wf.realize, plan, { idle = true, cgroup_parent = "../escape" })
      assert.is_false(ok)
      assert.matches("create the compute system", err)
      local layers <close> = assert(hcs.layer.open(root))
      assert.is_false(layers:exists("doomed"))
      assert.same({}, u.mounts_under(root))
      local images <close> = assert(hcs.image.open(root))
      assert.same({}, images:inspect("busybox").Users)
      assert.equal("Planned", wf.plans.load("doomed", root).State)
      assert(wf.plans.remove("doomed", root))
    end)

    it("txn runs undo actions newest first and keeps the first error", function()
      local txn = require "hcs.workflow.txn"
      local order = {}
      local ok, err = pcall(txn.run, "t", function(tx)
        tx:step("a", function() return "A" end, function(v) order[#order + 1] = v end)
        tx:step("b", function() return "B" end, function(v) order[#order + 1] = v end)
        tx:step("c", function() return nil, "c broke" end, function() order[#order + 1] = "C" end)
      end)
      assert.is_false(ok)
      assert.matches("c: c broke", err)
      assert.same({ "B", "A" }, order)
    end)
  end)

  describe("user workflows", function()
    it("loads workflows from HCS_WORKFLOW_PATH and names a bad field", function()
      local wdir = dir .. "/workflows"
      sh("mkdir -p " .. wdir)
      u.write_file(wdir .. "/good.lua", 'return { description = "adds", run = function(wf, a, b) return a + b end }')
      u.write_file(wdir .. "/bad.lua", 'return { description = "no run" }')
      local out = sh(("HCS_WORKFLOW_PATH=%s %s -e %s"):format(wdir, u.quote(u.hcs_bin), u.quote(
        'local wf = require("hcs").workflow; print(table.concat(wf.list(), ",")); print(wf.run("good", 2, 3)); ' ..
        'print(select(2, wf.load("bad")))')))
      assert.matches("^bad,good\n5\n", out)
      assert.matches("field 'run' must be a function, got nil", out)
    end)
  end)

  describe("hcs build", function()
    it("builds an image from a recipe and rolls back a failing one", function()
      local env = "HCS_ROOT=" .. u.quote(root)
      local out = sh(("%s %s build --json %s/examples/build-hello.lua"):format(env, u.quote(u.hcs_bin), u.source_dir))
      local img = require("cjson").decode(out)
      assert.equal("demo/hello", img.Name)
      assert.equal("1.0", img.Version)
      assert.same({ "/app/hello.sh" }, img.Config.config.Cmd)
      u.write_file(dir .. "/fails.lua", 'return { from = "busybox", name = "nope", author = function(s) s:run "exit 9" end }')
      local ok, code, _, err = u.run(("%s %s build %s/fails.lua"):format(env, u.quote(u.hcs_bin), dir))
      assert.is_false(ok)
      assert.equal(1, code)
      assert.matches("exit code 9", err)
      assert.same({}, wf.plans.list(root))
      assert.same({}, u.mounts_under(root))
      u.write_file(dir .. "/badrecipe.lua", 'return { from = "busybox", author = 1 }')
      ok, _, _, err = u.run(("%s %s build %s/badrecipe.lua"):format(env, u.quote(u.hcs_bin), dir))
      assert.is_false(ok)
      assert.matches("field '%a+' must be a", err)
    end)
  end)

  describe("examples", function()
    it("plan-and-realize.lua and the hello user workflow run and leave nothing", function()
      local env = "HCS_ROOT=" .. u.quote(root)
      local out = sh(("cd %s && %s %s examples/plan-and-realize.lua"):format(u.quote(u.source_dir), env,
        u.quote(u.hcs_bin)))
      assert.matches("mode=example host=example%-web init=sleep 3600", out)
      assert.matches("example%-web: Running", out)
      out = sh(("cd %s && %s HCS_WORKFLOW_PATH=examples/workflows %s workflow run hello"):format(
        u.quote(u.source_dir), env, u.quote(u.hcs_bin)))
      assert.matches("^hello from hello%-%d+\n$", out)
      assert.same({}, wf.plans.list(root))
      assert.same({}, u.mounts_under(root .. "/layers"))
    end)
  end)

  describe("hcs run IMAGE", function()
    it("realizes the image, passes the exit code and with --rm leaves nothing", function()
      local env = "HCS_ROOT=" .. u.quote(root)
      local ok, code, out = u.run(("%s %s run --rm --cgroup-parent %s -m 32 -e WHO=me busybox -- sh -c %s")
        :format(env, u.quote(u.hcs_bin), CG, u.quote("echo $WHO on $(hostname); exit 7")))
      assert.is_false(ok)
      assert.equal(7, code)
      assert.matches("^me on run%-%x+\n$", out)
      assert.same({}, wf.plans.list(root))
      assert.same({}, u.mounts_under(root .. "/layers"))
    end)
  end)

  describe("networking", function()
    local HOST = "hcs-test-wfhost-" .. id

    setup(function()
      sh("ip netns add " .. HOST)
      sh(("ip -n %s link set lo up"):format(HOST))
    end)
    teardown(function() u.run("ip netns del " .. HOST) end)

    it("realizes a system on a NAT network with a port mapping and cleans it all up", function()
      local script = dir .. "/net.lua"
      u.write_file(script, ([[
        local hcs = require "hcs"
        local wf = hcs.workflow
        local root = %q
        assert(hcs.net.network.create({ Name = "wfnat", Type = "NAT", Subnet = "10.77.0.0/24",
          Gateway = "10.77.0.1" }, { root = root }))
        local sys = wf.define({ image = "captured:1", name = "netsys", root = root, network = "wfnat",
          ports = { "18080:80" } }, { idle = true, cgroup_parent = %q })
        local _, out = sys:run "ip -4 -o addr show eth0 | awk '{print $4}'; cat /etc/resolv.conf | grep -c nameserver"
        io.write(out)
        assert(wf.destroy(sys))
        assert(hcs.net.network.delete("wfnat", { root = root }))
      ]]):format(root, CG))
      local out = sh(("nsenter --net=/run/netns/%s %s %s"):format(HOST, u.quote(u.hcs_bin), script))
      assert.matches("^10%.77%.0%.%d+/24\n", out)
      local _, _, links = u.run(("ip -n %s -o link show"):format(HOST))
      assert.is_nil(links:find("vh", 1, true))
      assert.same({}, u.mounts_under(root .. "/run/netns/")) -- no compartment left
    end)

    it("puts `hcs run -p` without --network on the default network, made on first use", function()
      local hcs_in_host = ("HCS_ROOT=%s nsenter --net=/run/netns/%s %s"):format(u.quote(root), HOST, u.quote(u.hcs_bin))
      -- A host route the pick must steer clear of.
      sh(("ip -n %s route add blackhole 10.88.0.0/16"):format(HOST))
      local out = sh(("%s run --rm --cgroup-parent %s -p 18081:80 busybox -- ip -4 -o addr show eth0"):format(
        hcs_in_host, CG))
      assert.matches("10%.89%.0%.%d+/16", out)
      local nets = hcs.json.decode(sh(hcs_in_host .. " network ls --json"))
      assert.equal(1, #nets)
      assert.same({ "nat", "NAT", "10.89.0.0/16" }, { nets[1].Name, nets[1].Type, nets[1].Ipams[1].Subnets[1].IpAddressPrefix })
      -- The next run uses the same network.
      out = sh(("%s run --rm --cgroup-parent %s -p 18081:80 busybox -- ip -4 -o addr show eth0"):format(
        hcs_in_host, CG))
      assert.matches("10%.89%.0%.%d+/16", out)
      assert.equal(1, #hcs.json.decode(sh(hcs_in_host .. " network ls --json")))
      sh(hcs_in_host .. " network rm nat")
      sh(("ip -n %s route del blackhole 10.88.0.0/16"):format(HOST))
      assert.same({}, wf.plans.list(root))
    end)

    it("runs the main job (examples/demo.lua) end to end, fetching the page through the port mapping", function()
      local demo_root = dir .. "/demo-root"
      sh(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, demo_root))
      local out = sh(("cd %s && HCS_ROOT=%s nsenter --net=/run/netns/%s %s examples/demo.lua"):format(
        u.quote(u.source_dir), u.quote(demo_root), HOST, u.quote(u.hcs_bin)))
      assert.matches("captured %x+ %(2 layers%)", out)
      assert.matches("GET http://127%.0%.0%.1:18080/ %-> <h1>Hello from demo%-run</h1>", out)
      assert.matches("demo complete", out)
      assert.same({}, wf.plans.list(demo_root))
      assert.same({}, u.mounts_under(demo_root))
      local _, _, links = u.run(("ip -n %s -o link show"):format(HOST))
      assert.is_nil(links:find("vh", 1, true))
      assert.is_nil(links:find("hcs", 1, true)) -- the demo's bridge is gone too
    end)
  end)
end)
