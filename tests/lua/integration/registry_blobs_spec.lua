-- The compressed blobs the image store keeps (src/image/blobs.c): a pull
-- keeps the blobs it received, a push uploads them unchanged to another
-- registry (the same digests), a captured layer's export is kept for the
-- next push, the blobs go with the last image using them, and a killed pull
-- leaves no half blob.  Real docker-registry 2.8 on loopback, skopeo as the peer.
local su = require "spec_util"
local ru = require "registry_util"
local json = require("hcs").json

local sh = ru.sh

local function hcs_ok(argv)
  local ok, code, out, err = su.hcs(argv)
  assert(ok, ("hcs %s failed (%s):\n%s%s"):format(table.concat(argv, " "), tostring(code), out, err))
  return out
end

-- The files under a root's blob store: name -> sha256 of the content.
local function blobs(root)
  local out = {}
  local list = sh(("cd %s/images 2>/dev/null && find blobs -type f -printf '%%P\\n' || true"):format(root))
  for name in list:gmatch("[^\n]+") do
    local path = ("%s/images/blobs/%s"):format(root, name)
    out[name] = sh("sha256sum " .. su.quote(path)):match("^(%x+)")
  end
  return out
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function manifest(ref)
  return json.decode(sh(("skopeo inspect --raw --tls-verify=false docker://%s"):format(ref)))
end

describe("kept layer blobs #root", function()
  local T, base, gz1, gz2, src, dst
  setup(function()
    T = su.tmpdir()
    base = T .. "/busybox.tar.gz"
    sh(("%s/scripts/make-base-image --tar-only %s"):format(su.source_dir, base))
    sh(("mkdir -p %s/a %s/b && head -c 3000000 /dev/urandom > %s/a/data && echo b > %s/b/file"):format(T, T, T, T))
    gz1 = ru.tar(T .. "/a", T .. "/a.tar.gz")
    gz2 = ru.tar(T .. "/b", T .. "/b.tar.gz")
    src = ru.start(T .. "/src")
    dst = ru.start(T .. "/dst")
  end)
  teardown(function()
    if src then src.stop() end
    if dst then dst.stop() end
    su.rmtree(T)
  end)

  it("pushes a pulled image to another registry as the very blobs it pulled; skopeo copies it back", function()
    ru.layout(T .. "/layout", { base, gz1, gz2 }, "v1")
    local ref = src.addr .. "/kept/img:v1"
    ru.copy_in(T .. "/layout", "v1", ref)
    local root = T .. "/root"
    hcs_ok({ "--root", root, "image", "pull", ref })
    local want = manifest(ref)
    -- every layer blob is kept under its digest, complete, with its mapping
    local kept = blobs(root)
    for _, l in ipairs(want.layers) do
      local hex = l.digest:sub(8)
      assert.equal(hex, kept["sha256/" .. hex])
    end
    assert.equal(2 * #want.layers, count(kept)) -- blobs + one gzip mapping each
    -- a fresh registry: nothing to skip or mount, the kept blobs are uploaded
    local dest = dst.addr .. "/kept/pushed:v1"
    hcs_ok({ "--root", root, "image", "push", ref, dest })
    local got = manifest(dest)
    assert.equal(#want.layers, #got.layers)
    for i, l in ipairs(want.layers) do
      assert.equal(l.digest, got.layers[i].digest)
      assert.equal(l.size, got.layers[i].size)
    end
    assert.equal(want.config.digest, got.config.digest) -- same diff ids: the same config bytes
    sh(("skopeo copy --tls-verify=false docker://%s oci:%s/back:v1 2>&1"):format(dest, T))
    local back = json.decode(su.read_file(T .. "/back/index.json"))
    local bm = json.decode(su.read_file(T .. "/back/blobs/sha256/" .. back.manifests[1].digest:sub(8)))
    assert.equal(want.layers[2].digest, bm.layers[2].digest)
    -- save copies the kept blobs: the archive holds the pulled digests
    local archive = T .. "/saved.tar"
    hcs_ok({ "--root", root, "image", "save", ref, "-o", archive })
    sh(("mkdir -p %s/saved && tar -C %s/saved -xf %s"):format(T, T, archive))
    for _, l in ipairs(want.layers) do
      assert.equal(l.digest:sub(8), sh(("sha256sum %s/saved/blobs/sha256/%s"):format(T, l.digest:sub(8))):match("^%x+"))
    end
    -- the last image using them goes: its blobs and mappings go too
    hcs_ok({ "--root", root, "image", "rm", ref })
    assert.same({}, blobs(root))
    -- an imported archive's gzip layers are kept as well
    local iroot = T .. "/iroot"
    hcs_ok({ "--root", iroot, "image", "import", T .. "/layout", "--name", "imported" })
    local ikept = blobs(iroot)
    for _, l in ipairs(want.layers) do
      assert.equal(l.digest:sub(8), ikept["sha256/" .. l.digest:sub(8)])
    end
  end)

  it("keeps the export of a layer without a blob for the next push", function()
    -- an image imported from an archive of plain tars: no compressed blob
    ru.layout(T .. "/plain", { ru.tar(T .. "/b", T .. "/b.tar", true) }, "p")
    local root = T .. "/proot"
    hcs_ok({ "--root", root, "image", "import", T .. "/plain", "--name", "plain", "--tag", "p" })
    assert.same({}, blobs(root))
    local first = dst.addr .. "/kept/plain:1"
    hcs_ok({ "--root", root, "image", "push", "plain:p", first })
    local kept = blobs(root)
    local layer = manifest(first).layers[1]
    assert.equal(layer.digest:sub(8), kept["sha256/" .. layer.digest:sub(8)])
    local second = src.addr .. "/kept/plain:2"
    hcs_ok({ "--root", root, "image", "push", "plain:p", second })
    assert.equal(layer.digest, manifest(second).layers[1].digest)
    hcs_ok({ "--root", root, "image", "rm", "plain:p" })
    assert.same({}, blobs(root))
  end)

  it("leaves no half blob when a pull is killed", function()
    sh(("mkdir -p %s/k1 %s/k2 && head -c 8000000 /dev/urandom > %s/k1/a && head -c 8000000 /dev/urandom > %s/k2/b")
      :format(T, T, T, T))
    ru.layout(T .. "/kill", { base, ru.tar(T .. "/k1", T .. "/k1.tar.gz"), ru.tar(T .. "/k2", T .. "/k2.tar.gz") }, "k")
    local kref = src.addr .. "/kept/kill:k"
    ru.copy_in(T .. "/kill", "k", kref)
    local root = T .. "/kroot"
    -- killed once the base layer's blob is kept and the others wait to
    -- commit (the layers commit in order after the pull's one syncfs)
    local pid = tonumber(sh(("HCS_PAUSE_AT='pull: layer committed' setsid %s --root %s image pull -q %s >/dev/null "
      .. "2>&1 </dev/null & echo $!"):format(su.hcs_bin, root, kref)))
    ru.wait_for(function()
      return sh(("cat /proc/%d/stat 2>/dev/null || true"):format(pid)):match("^%d+ %b() T") ~= nil
    end, 600, "the pull to stop after a layer committed")
    assert.is_true(su.run(("ls %s/layers/.tmp | grep -q '^import-'"):format(root)))
    sh("kill -9 " .. pid)
    ru.wait_for(function() return not ru.alive(pid) end, 100, "the pull to die")
    -- what is visible is whole: every blob hashes to its name, nothing else
    local seen = 0
    for name, hex in pairs(blobs(root)) do
      if name:match("^sha256/") then
        assert.equal(name:sub(8), hex)
        seen = seen + 1
      else
        assert.matches("^layers/%x+%.gzip$", name)
      end
    end
    assert.equal(1, seen)
    -- the next store open collects the dead pull's layers, and their blobs with them
    assert.same({}, json.decode(hcs_ok({ "--root", root, "image", "ls", "--json" })))
    assert.same({}, blobs(root))
    hcs_ok({ "--root", root, "image", "pull", "-q", kref })
    assert.equal(6, count(blobs(root)))
  end)
end)
