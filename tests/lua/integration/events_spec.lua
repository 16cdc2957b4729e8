-- Events and the event loop against real systems in a test root: the
-- journal in the run root, `hcs events`, hcs.events subscriptions, and
-- hcs.loop driving many systems from one coroutine loop.
local u = require "spec_util"
local hcs = require "hcs"
local json = hcs.json
local loop = hcs.loop

describe("hcs events #root", function()
  local root, rootfs, parent

  local function config(cmd)
    return hcs.compute.config { rootfs = rootfs, cgroup_parent = parent, command = cmd, owner = "evspec" }
  end

  -- Every event of these ids up to their `deleted`, from a subscription.
  local function collect(sub, ids)
    local left, seen = {}, {}
    for _, id in ipairs(ids) do left[id], seen[id] = true, {} end
    local n = #ids
    while n > 0 do
      -- The time-out only guards against a hang; nothing is timed.
      local e = assert(sub:next(60000), "no event within a minute")
      if seen[e.Id] then
        table.insert(seen[e.Id], e)
        if e.Action == "deleted" and e.Type == "system" and left[e.Id] then
          left[e.Id] = nil
          n = n - 1
        end
      end
    end
    return seen
  end

  -- Until pid has exited (a zombie, or gone): kill(2) returns before.
  local function wait_dead(pid)
    for _ = 1, 1000 do
      local f = io.open("/proc/" .. pid .. "/stat")
      local stat = f and f:read("a") or ""
      if f then f:close() end
      if stat == "" or stat:match("%) [ZX] ") then return true end
      u.run("sleep 0.01")
    end
    return false
  end

  local function actions(list)
    local out = {}
    for _, e in ipairs(list) do out[#out + 1] = e.Action end
    return out
  end

  setup(function()
    root = u.tmpdir()
    rootfs = root .. "/rootfs"
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, rootfs)))
    parent = "hcs-test-ev-" .. root:match("hcs%-test%.(.*)$")
  end)

  teardown(function()
    for _, s in ipairs(hcs.compute.enumerate(nil, root) or {}) do
      local cs = hcs.compute.open(s.Id, root)
      if cs then cs:delete(true) end
    end
    u.rmtree(root)
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
  end)

  it("delivers every event of 20 systems started and stopped at once, each system's in order", function()
    local sub <close> = assert(hcs.events.open({ Types = { "system" } }, root))
    local ids, tasks = {}, {}
    for i = 1, 20 do
      ids[i] = "ev" .. i
      tasks[i] = loop.spawn(function()
        local cs = assert(hcs.compute.create(ids[i], config { "/bin/sh", "-c", "exit " .. (i % 5) }, { root = root }))
        assert(cs:start())
        local props = assert(loop.wait_system(cs))
        assert(cs:delete())
        return props.ExitCode
      end)
    end
    loop.run()
    for i = 1, 20 do assert.equal(i % 5, tasks[i]:wait()) end
    local seen = collect(sub, ids)
    for i, id in ipairs(ids) do
      assert.same({ "created", "started", "exited", "deleted" }, actions(seen[id]))
      local exited = seen[id][3]
      assert.equal(i % 5, exited.Attributes.ExitCode)
      assert.equal("Exited", exited.Attributes.ExitType)
      assert.equal("evspec", exited.Owner)
    end
    -- The same through the CLI, filtered.
    local _, code, out = u.hcs({ "events", "--no-stream", "--since", "1h", "--json", "--filter", "id=ev7",
      "--filter", "event=exited", "--filter", "event=started" }, { HCS_ROOT = root })
    assert.equal(0, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = json.decode(l) end
    assert.equal(2, #lines)
    assert.equal("started", lines[1].Action)
    assert.equal("exited", lines[2].Action)
    assert.equal(2, lines[2].Attributes.ExitCode)
    local _, _, text = u.hcs({ "events", "--no-stream", "--since", "1h", "--filter", "id=ev7", "--filter",
      "event=exited" }, { HCS_ROOT = root })
    assert.matches("^%S+Z system exited ev7 %(owner=evspec, ExitCode=2, ExitType=Exited", text)
    local _, bad, _, berr = u.hcs({ "events", "--filter", "colour=red" }, { HCS_ROOT = root })
    assert.equal(2, bad)
    assert.matches("--filter: expected KEY=VALUE", berr, 1, true)
  end)

  it("ends a system whose monitor was killed with SIGKILL in one exited event", function()
    local sub <close> = assert(hcs.events.open({ Ids = { "evk" } }, root))
    local cs = assert(hcs.compute.create("evk", config { "/bin/sleep", "1000" }, { root = root }))
    assert(cs:start())
    local props = assert(cs:properties())
    assert(u.run("kill -KILL " .. props.MonitorPid))
    assert.is_true(wait_dead(props.MonitorPid))
    -- Another process observes first (wait on init, then properties).
    local ok, _, _, err = u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin), u.quote([[
      local cs = assert(require("hcs").compute.open("evk"))
      assert(cs:terminate())
      assert(cs:properties().State == "Stopped")]])))
    assert.is_true(ok, err)
    local again = assert(hcs.compute.open("evk", root))
    assert.equal("Unknown", again:properties().ExitType)
    assert(again:delete())
    local seen = collect(sub, { "evk" })
    assert.same({ "created", "started", "exited", "deleted" }, actions(seen.evk))
    assert.equal("Unknown", seen.evk[3].Attributes.ExitType)
    cs:close()
  end)

  it("leaves the exited event to a live monitor still recording the exit", function()
    local sub <close> = assert(hcs.events.open({ Ids = { "evr" } }, root))
    local cs = assert(hcs.compute.create("evr", config { "/bin/sleep", "1000" }, { root = root }))
    assert(cs:start())
    local props = assert(cs:properties())
    -- The monitor is held (stopped) while init dies: an observer now finds
    -- init gone and no exit.json, but the monitor is alive.
    assert(u.run("kill -STOP " .. props.MonitorPid))
    assert(u.run("kill -KILL " .. props.Pid))
    -- Until init is a zombie (the stopped monitor cannot reap it).
    assert.is_true(wait_dead(props.Pid))
    local other = assert(hcs.compute.open("evr", root))
    assert.equal("Stopped", other:properties().State)
    other:close()
    assert(u.run("kill -CONT " .. props.MonitorPid))
    assert(cs:wait())
    assert.equal("Killed", cs:properties().ExitType)
    assert(cs:delete())
    local seen = collect(sub, { "evr" })
    assert.same({ "created", "started", "exited", "deleted" }, actions(seen.evr))
    assert.equal("Killed", seen.evr[3].Attributes.ExitType)
    assert.equal(137, seen.evr[3].Attributes.ExitCode)
  end)

  it("runs 200 systems from one coroutine loop, each reporting its exit", function()
    local codes, tasks = {}, {}
    for i = 1, 200 do
      tasks[i] = loop.spawn(function()
        local id = "many" .. i
        local cs = assert(hcs.compute.create(id, config { "/bin/sh", "-c", "exit " .. (i % 7) }, { root = root }))
        assert(cs:start())
        local props = assert(loop.wait_system(cs))
        assert(cs:delete())
        codes[i] = props.ExitCode
      end)
    end
    -- wait_any hands back the tasks as they finish, until all are done.
    local left, finished = {}, 0
    for i = 1, 200 do left[i] = tasks[i] end
    loop.run(function()
      while #left > 0 do
        local i = loop.wait_any(left)
        table.remove(left, i)
        finished = finished + 1
      end
    end)
    assert.equal(200, finished)
    for i = 1, 200 do assert.equal(i % 7, codes[i]) end
    assert.same({}, hcs.compute.enumerate(nil, root))
  end)

  it("reports networks and endpoints created and deleted", function()
    local sub <close> = assert(hcs.events.open({ Types = { "network", "endpoint" } }, root))
    local net = assert(hcs.net.network.create({ Name = "evnet", Type = "None" }, { root = root }))
    assert(hcs.net.network.delete(net.Id, { root = root }))
    local a = assert(sub:next(60000))
    local b = assert(sub:next(60000))
    assert.equal("network created " .. net.Id, a.Type .. " " .. a.Action .. " " .. a.Id)
    assert.equal("evnet", a.Attributes.Name)
    assert.equal("network deleted " .. net.Id, b.Type .. " " .. b.Action .. " " .. b.Id)
  end)

  it("calls subscribe's function from the loop and stops when it returns false", function()
    local got = {}
    assert(hcs.events.subscribe({ Ids = { "evs" }, Types = { "system" } }, function(e)
      got[#got + 1] = e.Action
      return e.Action ~= "deleted"
    end, root))
    loop.run(function()
      local cs = assert(hcs.compute.create("evs", config { "/bin/true" }, { root = root }))
      assert(cs:start())
      loop.wait_system(cs)
      assert(cs:delete())
    end)
    -- run() returned: the subscription's task ended at `deleted`.
    assert.same({ "created", "started", "exited", "deleted" }, got)
  end)

  it("runs examples/many-systems.lua: 20 systems, outputs and exit codes", function()
    local ok, _, out, err = u.run(("HCS_ROOT=%s %s %s/examples/many-systems.lua %s 20"):format(u.quote(root),
      u.quote(u.hcs_bin), u.source_dir, u.quote(rootfs)))
    assert.is_true(ok, err)
    local seen = 0
    for i, code, n in out:gmatch("system +(%d+) exited (%d+): system (%d+) says hello\n") do
      assert.equal(i, n)
      assert.equal(tonumber(i) % 4, tonumber(code))
      seen = seen + 1
    end
    assert.equal(20, seen)
    assert.matches("20 systems done, 20 exited events seen", out, 1, true)
  end)

  it("runs start_async and shutdown_async as operations that tasks wait for", function()
    local systems, tasks = {}, {}
    for i = 1, 5 do
      -- sleep as init ignores SIGTERM (pid 1 without a handler): a shutdown
      -- waits until it is cancelled.
      systems[i] = assert(hcs.compute.create("op" .. i, config { "/bin/sleep", "1000" }, { root = root }))
      tasks[i] = loop.spawn(function()
        local op <close> = assert(systems[i]:start_async())
        assert.is_true(op:wait())
        assert.equal("Running", systems[i]:properties().State)
        local stop <close> = assert(systems[i]:shutdown_async(-1))
        assert.is_true(stop:cancel())
        local ok, err, code = stop:wait()
        assert.is_nil(ok)
        assert.matches("cancelled", err)
        assert.equal(125, code) -- ECANCELED
        return true
      end)
    end
    loop.run()
    for i = 1, 5 do
      assert.is_true(tasks[i]:wait())
      assert.equal("Running", systems[i]:properties().State) -- SIGTERM ignored, the wait cancelled
      assert(systems[i]:terminate())
      assert(systems[i]:delete())
    end
  end)

  it("refuses a bad filter naming the field", function()
    local sub, err = hcs.events.open({ Colour = { "red" } }, root)
    assert.is_nil(sub)
    assert.matches("event filter: `Colour`: unknown field", err, 1, true)
  end)
end)
