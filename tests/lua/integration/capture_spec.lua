-- Capture by copy in one pass (hcs_layer_capture_scratch) against the former
-- path (the scratch exported as a tar piped into an import, still reachable
-- with HCS_CAPTURE=reimport): the changes of a running system (deletions,
-- a replaced directory, files, links, a fifo, a device node, owners, modes)
-- give the same layer id, the same files and the same exported bytes both
-- ways, and the system runs again after its (paused) capture.
local u = require "spec_util"
local hcs = require "hcs"
local wf = hcs.workflow

local id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
local CG = "hcs-test-capture-" .. id

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

describe("capture by copy #root", function()
  local dir, root, sys

  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    sh(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, root))
    sys = wf.define({ image = "busybox", name = "changer", root = root }, { idle = true, cgroup_parent = CG })
    local code, out, err = sys:run({ "sh", "-c", table.concat({
      "rm /etc/hosts /bin/ls", "rm -rf /home && mkdir /home && echo me > /home/note",
      "mkdir -p /app/sub && echo hello > /app/hello && chown 1000:1001 /app/hello && chmod 0640 /app/hello",
      "dd if=/dev/urandom of=/app/big bs=1M count=3 2>/dev/null", "ln /app/hello /app/sub/hello.link",
      "ln -s ../etc/passwd /app/pw", "mkfifo /app/fifo", "mknod /app/null c 1 3", "echo ok" }, " && ") },
      { check = false })
    assert.equal(0, code, "changes in the container: " .. tostring(out) .. tostring(err))
  end)

  teardown(function()
    if sys then pcall(wf.destroy, sys) end
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. CG .. "' -exec rmdir {} + 2>/dev/null")
    u.rmtree(dir)
  end)

  -- Types, modes, owners, mtimes, sizes, link targets, hardlink counts and
  -- content digests of a layer's files, one line each, sorted.  Whole
  -- seconds: a tar header without pax records carries no fraction, so the
  -- former path dropped it where the copy keeps it (the exports are equal).
  local function listing(layer)
    local d = ("%s/layers/%s/diff"):format(root, layer)
    return sh(("cd %s && find . -mindepth 1 -printf '%%p %%y %%m %%U:%%G %%Ts %%s %%n %%l\\n' | sort && " ..
      "find . -type f -exec sha256sum {} + | sort"):format(u.quote(d)))
  end

  local function export_digest(layer, n)
    local layers <close> = assert(hcs.layer.open(root))
    return assert(layers:export(layer, ("%s/out-%d.tar"):format(dir, n), { compression = "none" })).DiffID
  end

  it("gives the former path's layer, files and exported bytes", function()
    local img = wf.capture(sys, { name = "one" })
    assert.equal("Running", sys:properties().State)
    local top = img.Layers[#img.Layers]
    local files, digest = listing(top), export_digest(top, 1)
    local layers <close> = assert(hcs.layer.open(root))
    assert.equal(digest, layers:inspect(top).DiffID)
    assert.truthy(files:find("./etc/hosts c 0 ", 1, true), "a deletion is a whiteout")
    assert.truthy(files:find("./app/fifo p 644 ", 1, true))
    -- the former path, on a store without the layer
    local images <close> = assert(hcs.image.open(root))
    assert(images:remove("one:latest"))
    assert(images:prune())
    assert.is_false(layers:exists(top))
    sh(("HCS_CAPTURE=reimport %s --root %s -e %s"):format(u.hcs_bin, root, u.quote(([[
      local s = assert(require("hcs").image.open("%s"))
      assert(s:capture("%s", { parent = "%s", name = "two" }))
    ]]):format(root, sys.plan.Realized.ScratchLayer, sys.plan.ImageId))))
    local two = assert(images:inspect("two:latest"))
    assert.equal(top, two.Layers[#two.Layers])
    assert.equal(files, listing(top))
    assert.equal(digest, export_digest(top, 2))
  end)

  it("is store:capture_scratch in hcs.layer", function()
    local layers <close> = assert(hcs.layer.open(root))
    local images <close> = assert(hcs.image.open(root))
    local two = assert(images:inspect("two:latest"))
    assert.equal(two.Layers[#two.Layers], assert(layers:capture_scratch(sys.plan.Realized.ScratchLayer,
      { threads = 1 })))
    local id, msg = layers:capture_scratch("nope")
    assert.is_nil(id)
    assert.truthy(msg:find("layer `nope` not found", 1, true), msg)
  end)

  it("pauses the system given as `pause` for the pass alone", function()
    local images <close> = assert(hcs.image.open(root))
    local states = {}
    assert(images:capture(sys.plan.Realized.ScratchLayer, { parent = sys.plan.ImageId, name = "paused",
      pause = sys.cs, progress = function() states[#states + 1] = sys:properties().State end }))
    assert.is_true(#states > 0)
    for _, st in ipairs(states) do assert.equal("Paused", st) end
    assert.equal("Running", sys:properties().State)
    -- a system that cannot be paused fails the capture, and nothing is left
    assert(sys.cs:pause())
    local id, msg = images:capture(sys.plan.Realized.ScratchLayer, { parent = sys.plan.ImageId, name = "twice",
      pause = sys.cs })
    assert(sys.cs:resume())
    assert.is_nil(id)
    assert.truthy(msg:find("pause the system", 1, true), msg)
    assert.is_nil(images:inspect("twice:latest"))
  end)
end)
