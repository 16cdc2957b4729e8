-- Crash consistency of the layer and image stores: layer import, image
-- import, capture by copy and capture by move are killed at each of their
-- persistence points in turn (HCS_CRASH_AT, see tests/lua/crash_util.lua);
-- after each kill a fresh process must open the stores and list the same
-- objects as before or the complete result, with nothing half-written, no
-- temporary debris, no dead lease or journal, no mount left, and the
-- container's changes intact; then repeating an interrupted operation must
-- succeed with the complete result.
local u = require "spec_util"
local crash = require "crash_util"
local cjson = require "cjson"

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

-- A fresh process opens both stores (running their recovery) and prints
-- what it sees; it also checks that every listed object is whole.
local PROBE = [[
local hcs = require "hcs"
local root = ...
local images = assert(hcs.image.open(root))
local layers = assert(hcs.layer.open(root))
local out = { images = {}, layers = {} }
for _, l in ipairs(assert(layers:list())) do
  local f = io.open(l.Path .. "/diff", "r")
  assert(f, "layer " .. l.Id .. " has no diff directory")
  f:close()
  out.layers[#out.layers + 1] = l.Id .. ":" .. l.Kind .. ":" .. tostring(l.RefCount)
end
for _, i in ipairs(assert(images:list())) do
  for _, lid in ipairs(i.Layers) do assert(layers:exists(lid), "image " .. i.Id .. " lacks layer " .. lid) end
  -- by tags and layers: a captured image's config holds its creation time,
  -- so its id differs from one run to the next
  out.images[#out.images + 1] = table.concat(i.Tags, ",") .. "@" .. table.concat(i.Layers, ",")
end
table.sort(out.layers)
table.sort(out.images)
-- kept blobs (src/image/blobs.c): every mapping names a layer's diff id,
-- every blob is named by a mapping, no temporary file is left
local diffs, named = {}, {}
for _, l in ipairs(assert(layers:list())) do
  if l.DiffID then diffs[l.DiffID:sub(8)] = true end
end
local function names(dir)
  local p, t = io.popen("ls -A " .. dir .. " 2>/dev/null"), {}
  for n in p:lines() do t[#t + 1] = n end
  p:close()
  return t
end
for _, n in ipairs(names(root .. "/images/blobs/layers")) do
  local hex = n:match("^(%x+)%.%a+$")
  assert(hex and diffs[hex], "the blob mapping " .. n .. " names no layer")
  local f = assert(io.open(root .. "/images/blobs/layers/" .. n))
  named[hcs.json.decode(f:read("a")).Digest:sub(8)] = true
  f:close()
end
for _, n in ipairs(names(root .. "/images/blobs/sha256")) do
  assert(named[n], "the blob " .. n .. " is named by no mapping")
end
io.write(require("hcs").json.encode(out))
]]

describe("crash consistency of the image and layer stores", function()
  local dir, probe, base_tar, archive, layer_tar

  local function state(root)
    local ok, code, out, err = u.run(("%s %s %s"):format(u.hcs_bin, probe, root))
    assert(ok, ("probe of %s failed (%s): %s"):format(root, tostring(code), err))
    return cjson.decode(out)
  end

  local function same(a, b)
    return table.concat(a.images, " ") == table.concat(b.images, " ") and
      table.concat(a.layers, " ") == table.concat(b.layers, " ")
  end

  -- What a store open must have cleaned: temporary entries, leases,
  -- commit journals, and mounts.
  local function no_debris(root)
    local function entries(path)
      local _, _, out = u.run(("ls -A %s 2>/dev/null"):format(u.quote(path)))
      local t = {}
      for name in out:gmatch("[^\n]+") do t[#t + 1] = name end
      return t
    end
    for _, name in ipairs(entries(root .. "/images")) do
      assert(name == ".lock" or name == ".leases" or name == "blobs" or name:match("^%x+$") and #name == 64,
        "debris in images/: " .. name)
    end
    assert.same({}, entries(root .. "/images/.leases"))
    assert.same({}, entries(root .. "/layers/.tmp"))
    assert.same({}, entries(root .. "/layers/.commits"))
    for _, name in ipairs(entries(root .. "/layers")) do
      local staging = u.read_file(("%s/layers/%s/commit/layer.json"):format(root, name))
      assert(staging == nil, "a commit staging directory left in layer " .. name)
    end
    assert.same({}, crash.mounts_under(root))
  end

  setup(function()
    dir = u.tmpdir()
    probe = dir .. "/probe.lua"
    u.write_file(probe, PROBE)
    base_tar = dir .. "/base.tar.gz"
    sh(("%s/scripts/make-base-image --tar-only %s"):format(u.source_dir, base_tar))
    -- a small second layer, and an image of two layers saved as an archive
    sh(("mkdir -p %s/l2/srv && echo two > %s/l2/srv/two && tar -C %s/l2 -cf %s/l2.tar srv")
      :format(dir, dir, dir, dir))
    layer_tar = dir .. "/l2.tar"
    local seed = dir .. "/seed"
    sh(("%s --root %s image install-os %s --name base --version 1 >/dev/null"):format(u.hcs_bin, seed, base_tar))
    sh(("%s --root %s -e %s"):format(u.hcs_bin, seed, u.quote(([[
      local hcs = require "hcs"
      local images = assert(hcs.image.open("%s"))
      local layers = assert(hcs.layer.open("%s"))
      local base = assert(images:inspect("base:1"))
      local l = assert(layers:import("%s", { parents = { base.Layers[#base.Layers] } }))
      assert(images:create { parent = "base:1", layer = l.Id, name = "app", version = "2" })
    ]]):format(seed, seed, layer_tar))))
    archive = dir .. "/app.tar"
    sh(("%s --root %s image save app:2 -o %s"):format(u.hcs_bin, seed, archive))
  end)

  teardown(function() u.rmtree(dir) end)

  -- Kill `command` at every point from a fresh copy of `snap`; after each
  -- kill the stores show `before` or `after` and `extra` holds; repeating
  -- the operation then succeeds and gives `after`.
  local function run_case(name, snap, command, extra)
    local root = dir .. "/" .. name
    local before = state(snap)
    sh(("rm -rf %s && cp -a %s %s"):format(root, snap, root))
    sh(command(root))
    local after = state(root)
    assert.is_false(same(before, after), "the operation changes the stores")
    local points = crash.each_point {
      root = root,
      snapshot = snap,
      command = function() return command(root) end,
      check = function(n)
        local now = state(root)
        assert(same(now, before) or same(now, after),
          ("unexpected state after kill %d:\n%s\nbefore: %s\nafter: %s"):format(n, cjson.encode(now),
            cjson.encode(before), cjson.encode(after)))
        no_debris(root)
        if extra then extra(root, now, before) end
        if same(now, before) then -- killed before its commit point: repeating it succeeds
          sh(command(root))
          assert(same(state(root), after), "the repeated operation gives the complete result")
          no_debris(root)
        end
      end,
    }
    assert.truthy(points >= 3, "the operation has persistence points")
    return points
  end

  it("layer import", function()
    local snap = dir .. "/snap-empty"
    sh("mkdir -p " .. snap)
    sh(("%s --root %s -e 'assert(require(\"hcs\").layer.open(\"%s\"))'"):format(u.hcs_bin, snap, snap))
    local n = run_case("layer-import", snap, function(root)
      return ("%s --root %s layer import %s >/dev/null"):format(u.hcs_bin, root, layer_tar)
    end)
    print(("# layer import: %d crash points"):format(n))
  end)

  it("image import (two layers; a kill leaves no layer owned by nothing)", function()
    local snap = dir .. "/snap-images"
    sh("mkdir -p " .. snap)
    sh(("%s --root %s image ls >/dev/null"):format(u.hcs_bin, snap))
    local n = run_case("image-import", snap, function(root)
      return ("%s --root %s image import %s >/dev/null"):format(u.hcs_bin, root, archive)
    end)
    print(("# image import: %d crash points"):format(n))
  end)

  it("image removal (its layers are collected even when it is killed half-way)", function()
    local snap = dir .. "/snap-remove"
    sh(("%s --root %s image import %s >/dev/null"):format(u.hcs_bin, snap, archive))
    local n = run_case("image-remove", snap, function(root)
      return ("%s --root %s image rm app:2"):format(u.hcs_bin, root)
    end)
    print(("# image removal: %d crash points"):format(n))
  end)

  -- A root with the base image and a scratch layer holding changes.
  local function scratch_snapshot(name)
    local snap = dir .. "/" .. name
    sh(("%s --root %s image install-os %s --name base --version 1 >/dev/null"):format(u.hcs_bin, snap, base_tar))
    sh(("%s --root %s -e %s"):format(u.hcs_bin, snap, u.quote(([[
      local hcs = require "hcs"
      local images = assert(hcs.image.open("%s"))
      local layers = assert(hcs.layer.open("%s"))
      local base = assert(images:inspect("base:1"))
      local s = assert(layers:create_scratch("scr", { base.Layers[#base.Layers] }))
      os.execute("mkdir -p " .. s.Path .. "/diff/app && echo changed > " .. s.Path .. "/diff/app/data")
    ]]):format(snap, snap))))
    return snap
  end

  local function capture_cmd(move)
    return function(root)
      return ("%s --root %s -e %s"):format(u.hcs_bin, root, u.quote(([[
        local s = assert(require("hcs").image.open("%s"))
        assert(s:capture("scr", { parent = "base:1", name = "cap", version = "1", move = %s }))
      ]]):format(root, tostring(move))))
    end
  end

  -- The container's changes are in the scratch or in a layer, whole.
  local function changes_intact(root)
    local _, _, out = u.run(("cat %s/layers/scr/diff/app/data %s/layers/*/diff/app/data 2>/dev/null"):format(root,
      root))
    assert.truthy(out:find("changed\n", 1, true), "the container's changes are gone")
  end

  it("capture by copy", function()
    local n = run_case("capture-copy", scratch_snapshot("snap-copy"), capture_cmd(false), changes_intact)
    print(("# capture by copy: %d crash points"):format(n))
  end)

  it("capture by move (the changes survive every kill)", function()
    local n = run_case("capture-move", scratch_snapshot("snap-move"), capture_cmd(true), function(root, now, before)
      changes_intact(root)
      -- before the commit point the scratch has them, after it the new layer
      local moved = u.read_file(root .. "/layers/scr/diff/app/data") == nil
      if not moved then return end
      local _, _, out = u.run(("ls %s/layers/*/diff/app/data"):format(root))
      assert.truthy(#out > 0)
    end)
    print(("# capture by move: %d crash points"):format(n))
  end)
end)
