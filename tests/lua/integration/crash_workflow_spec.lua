-- Crash consistency of the workflows: `hcs run -d IMAGE` (plan + realize)
-- and `hcs destroy` are killed at each of their persistence points in turn
-- (HCS_CRASH_AT, see tests/lua/crash_util.lua).  After each kill the next
-- commands (`hcs plan ls`, which rolls back what dead realizes left, then
-- `hcs destroy` of what is still Realized) must leave nothing: no plan,
-- compute system, scratch layer, mount, cgroup or image reference, with
-- both stores opening; and the interrupted operation must then succeed.
-- `hcs run --rm` too, whose plan, image reference and scratch layer are
-- runtime state written without fsync.
local u = require "spec_util"
local crash = require "crash_util"
local hcs = require "hcs"
local wf = hcs.workflow

local id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
local CG = "hcs-test-wfx-" .. id
local dir, root

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

local function hcs_cmd(...)
  local parts = { u.quote(u.hcs_bin), "--root", u.quote(root) }
  for _, a in ipairs({ ... }) do parts[#parts + 1] = u.quote(a) end
  return table.concat(parts, " ")
end

local function cgroup_dirs()
  local _, _, out = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -path '*" .. CG .. "/*' 2>/dev/null")
  return out
end

--- What the next commands make of a killed run: plan ls recovers, destroy
-- removes a system that got as far as Realized; then nothing is left.
local function clean_up_and_check(name)
  sh(hcs_cmd("plan", "ls"))
  if wf.plans.load(name, root) then sh(hcs_cmd("destroy", name)) end
  assert.is_nil(wf.plans.load(name, root))
  assert.is_nil(hcs.compute.open(name, root))
  local layers <close> = assert(hcs.layer.open(root))
  assert.is_false(layers:exists(name))
  assert(layers:list())
  assert.same({}, u.mounts_under(root .. "/layers"))
  local images <close> = assert(hcs.image.open(root))
  assert.same({}, images:inspect("busybox").Users)
  assert.equal("", cgroup_dirs())
end

describe("crash consistency of realize and destroy #root", function()
  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    sh(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, root))
  end)

  teardown(function()
    for _, name in ipairs(wf.plans.list(root)) do wf.destroy_named(name, root, { kill = true }) end
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. CG .. "' -exec rmdir {} + 2>/dev/null")
    u.rmtree(dir)
  end)

  it("hcs run -d IMAGE killed at each persistence point leaves nothing the next commands do not clean", function()
    local points = crash.each_point {
      root = root,
      command = function() return hcs_cmd("run", "-d", "--name", "c1", "--cgroup-parent", CG, "busybox", "--",
          "sleep", "100") end,
      check = function() clean_up_and_check("c1") end,
      done = function()
        assert.equal("Running", assert(hcs.compute.open("c1", root)):properties().State)
        clean_up_and_check("c1")
      end,
    }
    assert.truthy(points >= 6)
  end)

  it("hcs run --rm IMAGE (runtime state, no fsync) killed at each persistence point leaves nothing", function()
    local points = crash.each_point {
      root = root,
      -- stdout to /dev/null: a run killed between create and start leaves
      -- init waiting for start with the run's stdout, which the harness reads to EOF
      command = function() return hcs_cmd("run", "--rm", "--name", "c3", "--cgroup-parent", CG, "busybox", "--",
          "/bin/true") .. " </dev/null >/dev/null" end,
      check = function() clean_up_and_check("c3") end,
      done = function() clean_up_and_check("c3") end,
    }
    assert.truthy(points >= 4)
  end)

  it("hcs destroy killed at each persistence point is finished by the next destroy", function()
    local points = crash.each_point {
      root = root,
      command = function()
        sh(hcs_cmd("run", "-d", "--name", "c2", "--cgroup-parent", CG, "busybox", "--", "sleep", "100"))
        return hcs_cmd("destroy", "c2")
      end,
      check = function() clean_up_and_check("c2") end,
      done = function() clean_up_and_check("c2") end,
    }
    assert.truthy(points >= 2)
  end)
end)
