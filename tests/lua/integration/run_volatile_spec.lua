-- `hcs run --rm` keeps what it makes as runtime state (issue #14 item 16):
-- its plan and image reference live in the run root, its scratch layer is
-- written without fsync and marked with the boot id, and what a reboot
-- leaves of such a layer on disk is collected by the first store open of
-- the next boot, never anything else.  Real overlay mounts, namespaces and
-- cgroups in a private state root.
local u = require "spec_util"
local hcs = require "hcs"
local wf = hcs.workflow

local id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
local CG = "hcs-test-vol-" .. id
local dir, root, env

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

local function hcs_cli(...) return u.hcs({ ... }, env) end

local function exists(path) return u.run("test -e " .. u.quote(path)) end

local function boot_id()
  local f = assert(io.open("/proc/sys/kernel/random/boot_id"))
  local b = f:read("l")
  f:close()
  return b
end

describe("hcs run --rm keeps runtime state #root", function()
  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    env = { HCS_ROOT = root }
    sh(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, root))
  end)

  teardown(function()
    for _, name in ipairs(wf.plans.list(root)) do wf.destroy_named(name, root, { kill = true }) end
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. CG .. "' -exec rmdir {} + 2>/dev/null")
    u.rmtree(dir)
  end)

  it("puts the plan and the image reference in the run root and marks the scratch layer volatile", function()
    local ok, _, out, err = hcs_cli("run", "--rm", "-d", "--name", "v1", "--cgroup-parent", CG, "busybox", "--",
      "sleep", "100")
    assert.is_true(ok, err)
    assert.equal("v1\n", out)
    -- the plan: in <run root>/plans, not in the state root
    assert.is_false(exists(root .. "/plans/v1.json"))
    local plan = assert(hcs.json.decode(assert(u.read_file(root .. "/run/plans/v1.json"))))
    assert.is_true(plan.Volatile)
    assert.equal("Realized", assert(wf.plans.load("v1", root)).State)
    assert.same({ "v1" }, wf.plans.list(root))
    -- the image reference: shown and honoured, but not written to image.json
    local images <close> = assert(hcs.image.open(root))
    local img = assert(images:inspect("busybox"))
    assert.same({ "v1" }, img.Users)
    local disk = assert(hcs.json.decode(assert(u.read_file(root .. "/images/" .. img.Id .. "/image.json"))))
    assert.same({}, disk.Users)
    local rm_ok, _, _, rm_err = hcs_cli("image", "rm", "busybox")
    assert.is_false(rm_ok)
    assert.matches("in use by container v1", rm_err, 1, true)
    -- the scratch layer: marked with this boot's id
    local meta = assert(hcs.json.decode(assert(u.read_file(root .. "/layers/v1/layer.json"))))
    assert.equal(boot_id(), meta.Volatile)
    -- and all of it goes with the system
    assert.is_true((hcs_cli("rm", "-f", "v1")))
    assert.is_nil(wf.plans.load("v1", root))
    assert.is_false(exists(root .. "/run/plans/v1.json"))
    assert.is_false(exists(root .. "/layers/v1"))
    local again <close> = assert(hcs.image.open(root))
    assert.same({}, again:inspect("busybox").Users)
  end)

  it("makes no fsync on the whole run", function()
    if not u.run("command -v strace >/dev/null") then pending("strace is not installed") return end
    -- LeakSanitizer cannot run under ptrace: off for this one command
    local cmd = ("HCS_ROOT=%s ASAN_OPTIONS=detect_leaks=0 strace -f -qq -e trace=fsync,fdatasync,syncfs -o %s %s run --rm --name v2 "
      .. "--cgroup-parent %s busybox -- /bin/true"):format(u.quote(root), u.quote(dir .. "/strace.txt"),
      u.quote(u.hcs_bin), CG)
    sh(cmd)
    local trace = assert(u.read_file(dir .. "/strace.txt"))
    assert.is_nil(trace:match("fsync") or trace:match("syncfs"), trace)
    assert.is_nil(wf.plans.load("v2", root))
    assert.is_false(exists(root .. "/layers/v2"))
  end)

  it("collects a volatile scratch layer of an earlier boot on the next boot's first open, and nothing else", function()
    local top = sh(("%s -e %s"):format(u.quote(u.hcs_bin), u.quote(([[
      local h = require "hcs"
      local i = assert(h.image.open(%q))
      local l = i:inspect("busybox").Layers
      io.write(l[#l])]]):format(root)))):gsub("%s+$", "")
    local function make(boot, name, volatile)
      sh(("HCS_BOOT_ID=%s %s -e %s"):format(boot, u.quote(u.hcs_bin), u.quote(([[
        local h = require "hcs"
        local s = assert(h.layer.open(%q))
        assert(s:create_scratch(%q, { %q }, %s))]]):format(root, name, top, tostring(volatile)))))
    end
    make("earlier-boot", "old1", true)   -- a volatile layer of an earlier boot: debris
    make(boot_id(), "cur1", true)        -- one of this boot: a container may be using it
    make("earlier-boot", "keep1", false) -- a durable scratch layer: kept whatever the boot
    -- what a host crash leaves of a volatile layer whose files were never synced
    sh(("mkdir -p %s/layers/junk1/diff %s/layers/junk1/work && : > %s/layers/junk1/layer.json"):format(root, root, root))
    -- a directory that is not a layer's, and one with a file a layer never has
    sh(("mkdir -p %s/layers/foreign1 && echo notes > %s/layers/foreign1/notes.txt"):format(root, root))
    sh(("mkdir -p %s/layers/foreign2/diff %s/layers/foreign2/work && echo x > %s/layers/foreign2/README"):format(
      root, root, root))
    -- a reboot empties the run root: the first open of the new boot checks
    sh(("rm -f %s/run/layers/.volatile-checked-*"):format(root))
    local layers <close> = assert(hcs.layer.open(root))
    assert.is_false(exists(root .. "/layers/old1"))
    assert.is_false(exists(root .. "/layers/junk1"))
    assert.is_true(layers:exists("cur1"))
    assert.is_true(layers:exists("keep1"))
    assert.is_true(exists(root .. "/layers/foreign1/notes.txt"))
    assert.is_true(exists(root .. "/layers/foreign2/README"))
    assert(layers:destroy("cur1", true))
    assert(layers:destroy("keep1", true))
    sh(("rm -rf %s/layers/foreign1 %s/layers/foreign2"):format(root, root))
  end)
  -- last: it removes the image
  it("drops the runtime reference even when the image was force-removed meanwhile", function()
    assert.is_true((hcs_cli("run", "--rm", "-d", "--name", "v3", "--cgroup-parent", CG, "busybox", "--", "sleep", "100")))
    local images <close> = assert(hcs.image.open(root))
    local img = assert(images:inspect("busybox"))
    assert.is_true(exists(root .. "/run/images/" .. img.Id .. "/v3"))
    local ok, _, _, err = hcs_cli("image", "rm", "-f", "busybox")
    assert.is_true(ok, err)
    local rm_ok, _, _, rm_err = hcs_cli("rm", "-f", "v3")
    assert.is_true(rm_ok, rm_err)
    assert.is_false(exists(root .. "/run/images/" .. img.Id))
    assert.is_nil(wf.plans.load("v3", root))
    assert.is_false(exists(root .. "/layers/v3"))
  end)
end)
