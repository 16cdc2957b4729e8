-- Garbage collection of layers: a failed import leaves no layer owned by
-- nothing, and prune (Lua, CLI) collects the layers no image uses while
-- keeping images' layers, scratch layers and their parents.
local u = require "spec_util"
local hcs = require "hcs"
local cjson = require "cjson"

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

local function ids(list)
  local t = {}
  for _, l in ipairs(list) do t[#t + 1] = l.Id end
  table.sort(t)
  return t
end

describe("hcs.image garbage collection", function()
  local dir, archive, seed_layers

  setup(function()
    dir = u.tmpdir()
    sh(("%s/scripts/make-base-image --tar-only %s/base.tar.gz"):format(u.source_dir, dir))
    sh(("mkdir -p %s/l2/srv && echo two > %s/l2/srv/two && tar -C %s/l2 -cf %s/l2.tar srv"):format(dir, dir, dir, dir))
    local seed = dir .. "/seed"
    local images <close> = assert(hcs.image.open(seed))
    local layers <close> = assert(hcs.layer.open(seed))
    assert(images:install_os(dir .. "/base.tar.gz", { name = "base", version = "1" }))
    local base = assert(images:inspect("base:1"))
    local l = assert(layers:import(dir .. "/l2.tar", { parents = { base.Layers[1] } }))
    assert(images:create { parent = "base:1", layer = l.Id, name = "app", version = "2" })
    archive = dir .. "/app.tar"
    assert(images:save({ "app:2" }, archive))
    seed_layers = assert(images:inspect("app:2")).Layers
  end)

  teardown(function() u.rmtree(dir) end)

  it("leaves no layer behind when an import fails half-way", function()
    -- corrupt the second layer's blob: the first is imported, then the import fails
    local bad = dir .. "/bad-layout"
    sh(("mkdir -p %s && tar -xf %s -C %s"):format(bad, archive, bad))
    local index = cjson.decode(u.read_file(bad .. "/index.json"))
    local manifest = cjson.decode(u.read_file(bad .. "/blobs/sha256/" .. index.manifests[1].digest:sub(8)))
    local blob = bad .. "/blobs/sha256/" .. manifest.layers[2].digest:sub(8)
    sh(("printf 'X' | dd of=%s bs=1 seek=20 conv=notrunc status=none"):format(blob))
    local root = dir .. "/root-fail"
    local images <close> = assert(hcs.image.open(root))
    local r, err = images:import(bad)
    assert.is_nil(r)
    assert.matches("layer 2 blob `" .. manifest.layers[2].digest .. "` is corrupt", err)
    local layers <close> = assert(hcs.layer.open(root))
    assert.same({}, assert(layers:list()))
    assert.same({}, assert(images:list()))
    -- and the same import, whole, works afterwards
    assert(images:import(archive))
    assert.equal(#seed_layers, #assert(images:inspect("app:2")).Layers)
    assert.equal(#seed_layers, #assert(layers:list()))
  end)

  it("prunes the layers no image uses, keeping images' layers and scratch parents", function()
    local root = dir .. "/root-prune"
    local images <close> = assert(hcs.image.open(root))
    local layers <close> = assert(hcs.layer.open(root))
    assert(images:import(archive))
    local app = assert(images:inspect("app:2"))
    -- an orphan chain of two layers on the base, and a layer a scratch is built on
    local o1 = assert(layers:import(dir .. "/l2.tar", { id = "orphan1", parents = { app.Layers[2] } }))
    local o2 = assert(layers:import(dir .. "/l2.tar", { id = "orphan2", parents = { o1.Id } }))
    local kept = assert(layers:import(dir .. "/l2.tar", { id = "under-scratch", parents = { app.Layers[1] } }))
    assert(layers:create_scratch("scr", { kept.Id }))

    local dry = assert(images:prune { dry_run = true })
    assert.same({ "orphan1", "orphan2" }, (function() table.sort(dry.Layers) return dry.Layers end)())
    assert.truthy(layers:exists("orphan2"), "a dry run removes nothing")

    local res = assert(images:prune())
    table.sort(res.Layers)
    assert.same({ "orphan1", "orphan2" }, res.Layers)
    local want = { app.Layers[1], app.Layers[2], "scr", "under-scratch" }
    table.sort(want)
    assert.same(want, ids(assert(layers:list())))
    assert.same({}, assert(images:prune()).Layers)
    assert.equal(o2.Id, "orphan2")

    -- removing the image collects its layers except the one under the scratch's chain
    assert(images:remove("app:2"))
    assert(layers:destroy("scr"))
    res = assert(images:prune())
    assert.same({}, ids(assert(layers:list())))
    assert.truthy(#res.Layers >= 1)
  end)

  it("prunes from the command line, with --dry-run and --json", function()
    local root = dir .. "/root-cli"
    sh(("%s --root %s image import %s >/dev/null"):format(u.hcs_bin, root, archive))
    sh(("%s --root %s layer import %s --id stray >/dev/null"):format(u.hcs_bin, root, dir .. "/l2.tar"))
    local out = sh(("%s --root %s image prune --dry-run --json"):format(u.hcs_bin, root))
    assert.same({ "stray" }, cjson.decode(out).Layers)
    out = sh(("%s --root %s image gc"):format(u.hcs_bin, root))
    assert.equal("stray\n", out)
    local layers <close> = assert(hcs.layer.open(root))
    assert.is_false(layers:exists("stray"))
    assert.equal(2, #assert(layers:list()))
  end)
end)
