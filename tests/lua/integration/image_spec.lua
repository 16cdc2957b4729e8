-- hcs.image: the image store, with skopeo and umoci as interop peers.
local u = require "spec_util"
local hcs = require "hcs"
local cjson = require "cjson"

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

local function have(tool) return u.run("command -v " .. tool .. " >/dev/null") end

describe("hcs.image", function()
  local dir, root, store, base_tar

  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    base_tar = dir .. "/busybox.tar.gz"
    sh(("%s/scripts/make-base-image --tar-only %s"):format(u.source_dir, base_tar))
    store = assert(hcs.image.open(root))
  end)

  teardown(function()
    if store then store:close() end
    u.rmtree(dir)
  end)

  local function no_tmp_left()
    local _, _, out = u.run(("ls -A %s/images | grep '^\\.tmp' || true"):format(root))
    assert.equal("", out)
  end

  describe("install_os()", function()
    it("installs a rootfs tarball as a one-layer OS image", function()
      local id = assert(store:install_os(base_tar, { name = "busybox", version = "1.35", publisher = "hcs" }))
      assert.matches("^%x+$", id)
      assert.equal(64, #id)
      local list = assert(store:list())
      assert.equal(1, #list)
      local img = list[1]
      assert.equal("busybox", img.Name)
      assert.equal("1.35", img.Version)
      assert.equal("hcs", img.Publisher)
      assert.is_true(img.IsOSImage)
      assert.equal(1, #img.Layers)
      assert.truthy(img.Size > 500000)
      no_tmp_left()
    end)

    it("records an OCI config whose diff ids match the layer", function()
      local info = assert(store:inspect("busybox:1.35"))
      assert.equal("linux", info.Config.os)
      assert.same({ "/bin/sh" }, info.Config.config.Cmd)
      local layer = assert(hcs.layer.open(root)):inspect(info.Layers[1])
      assert.equal(layer.DiffID, info.Config.rootfs.diff_ids[1])
      assert.equal("sha256:" .. info.Id, info.ConfigDigest)
    end)

    it("resolves names, ids and id prefixes", function()
      local id = assert(store:resolve("busybox:1.35"))
      assert.equal(id, store:resolve("busybox"))
      assert.equal(id, store:resolve(id:sub(1, 12)))
      assert.equal(id, store:resolve("sha256:" .. id))
      local none, err = store:resolve("nosuch:1")
      assert.is_nil(none)
      assert.matches("image `nosuch:1`: No such file", err)
    end)

    it("refuses a missing tarball and a bad name", function()
      local id, err = store:install_os(dir .. "/missing.tar", { name = "x" })
      assert.is_nil(id)
      assert.matches("missing%.tar", err)
      id, err = store:install_os(base_tar, { name = "bad name!" })
      assert.is_nil(id)
      assert.matches("invalid image reference `bad name!:latest`", err)
      assert.has_error(function() store:install_os(base_tar) end)
    end)
  end)

  describe("save() and import()", function()
    local archive

    it("saves an OCI archive that skopeo reads and copies", function()
      archive = dir .. "/busybox-oci.tar"
      assert(store:save({ "busybox:1.35" }, archive))
      no_tmp_left()
      if not have("skopeo") then return pending("skopeo not installed") end
      local info = cjson.decode(sh("skopeo inspect --raw oci-archive:" .. archive))
      assert.equal("application/vnd.oci.image.manifest.v1+json", info.mediaType)
      assert.equal("sha256:" .. store:resolve("busybox:1.35"), info.config.digest)
      sh(("skopeo copy -q oci-archive:%s dir:%s/skopeo-dir"):format(archive, dir))
      local manifest = cjson.decode(u.read_file(dir .. "/skopeo-dir/manifest.json"))
      assert.equal(1, #manifest.layers)
    end)

    it("re-imports its own archive as the same image in another root", function()
      local other <close> = assert(hcs.image.open(dir .. "/root2"))
      local calls, last = 0, 0
      local imported = assert(other:import(archive, { progress = function(done) calls, last = calls + 1, done end }))
      assert.truthy(calls > 0, "progress reported")
      assert.truthy(last > 0)
      assert.equal(1, #imported)
      assert.equal(store:resolve("busybox:1.35"), imported[1].Id)
      assert.equal("busybox", imported[1].Name)
      assert.equal("1.35", imported[1].Version)
      assert.equal("hcs", imported[1].Publisher)
      assert.is_true(imported[1].IsOSImage)
    end)

    it("imports a docker-archive written by skopeo", function()
      if not have("skopeo") then return pending("skopeo not installed") end
      local darchive = dir .. "/docker.tar"
      sh(("skopeo copy -q oci-archive:%s docker-archive:%s:demo/box:v2"):format(archive, darchive))
      local other <close> = assert(hcs.image.open(dir .. "/root3"))
      local imported = assert(other:import(darchive))
      assert.equal("demo/box", imported[1].Name)
      assert.equal("v2", imported[1].Version)
      -- skopeo rewrites the config for docker; the layer content is the same.
      local a = store:inspect("busybox:1.35").Config.rootfs.diff_ids
      local b = other:inspect("demo/box:v2").Config.rootfs.diff_ids
      assert.same(a, b)
    end)

    it("imports an image built by umoci, and umoci unpacks an hcs-saved image", function()
      if not have("umoci") then return pending("umoci not installed") end
      local layout = dir .. "/umoci-layout"
      sh(("umoci init --layout %s && umoci new --image %s:app"):format(layout, layout))
      sh(("umoci unpack --rootless --image %s:app %s/bundle"):format(layout, dir))
      sh(("mkdir -p %s/bundle/rootfs/srv && echo from-umoci > %s/bundle/rootfs/srv/hello"):format(dir, dir))
      sh(("umoci repack --image %s:app %s/bundle"):format(layout, dir))
      local imported = assert(store:import(layout, { name = "umoci-app" }))
      assert.equal("umoci-app", imported[1].Name)
      assert.equal("app", imported[1].Version)
      local layers <close> = assert(hcs.layer.open(root))
      local top = imported[1].Layers[#imported[1].Layers]
      local path = assert(layers:inspect(top)).Path
      assert.equal("from-umoci\n", u.read_file(path .. "/diff/srv/hello") or u.read_file(path .. "/srv/hello"))

      local extracted = dir .. "/saved-layout"
      sh(("mkdir -p %s && tar -xf %s -C %s"):format(extracted, archive, extracted))
      sh(("umoci unpack --rootless --image %s:busybox:1.35 %s/unpacked"):format(extracted, dir))
      assert.truthy(u.read_file(dir .. "/unpacked/rootfs/etc/os-release"):find("hcs busybox", 1, true))
    end)

    it("refuses a corrupt blob and names it", function()
      local bad = dir .. "/corrupt"
      sh(("mkdir -p %s && tar -xf %s -C %s"):format(bad, archive, bad))
      local index = cjson.decode(u.read_file(bad .. "/index.json"))
      local mdigest = index.manifests[1].digest:sub(8)
      local manifest = cjson.decode(u.read_file(bad .. "/blobs/sha256/" .. mdigest))
      local layer = bad .. "/blobs/sha256/" .. manifest.layers[1].digest:sub(8)
      sh(("printf 'X' | dd of=%s bs=1 seek=100 conv=notrunc status=none"):format(layer))
      local other <close> = assert(hcs.image.open(dir .. "/root4"))
      local r, err = other:import(bad)
      assert.is_nil(r)
      assert.matches("layer 1 blob `" .. manifest.layers[1].digest .. "` is corrupt", err)
      assert.same({}, assert(other:list()))
      assert.same({}, assert(assert(hcs.layer.open(dir .. "/root4")):list()))
    end)

    it("refuses what is not an image", function()
      local r, err = store:import(base_tar)
      assert.is_nil(r)
      assert.matches("not an OCI layout, OCI archive or docker%-archive", err)
      r, err = store:import(dir .. "/nothing-here")
      assert.is_nil(r)
      assert.matches("No such file", err)
      local empty = dir .. "/empty-layout"
      sh(("mkdir -p %s && echo '{\"imageLayoutVersion\":\"1.0.0\"}' > %s/oci-layout && " ..
        "echo '{\"schemaVersion\":2,\"manifests\":[]}' > %s/index.json"):format(empty, empty, empty))
      r, err = store:import(empty)
      assert.is_nil(r)
      assert.matches("lists no linux image manifest", err)
    end)

    it("never reads outside a layout through a symlink", function()
      local evil = dir .. "/evil"
      sh(("mkdir -p %s && echo '{\"imageLayoutVersion\":\"1.0.0\"}' > %s/oci-layout && ln -s /etc/passwd %s/index.json")
        :format(evil, evil, evil))
      local r, err = store:import(evil)
      assert.is_nil(r)
      assert.matches("index%.json", err)
    end)
  end)

  describe("create(), tag() and remove()", function()
    local layers

    setup(function() layers = assert(hcs.layer.open(root)) end)
    teardown(function() layers:close() end)

    it("creates an image from a parent and a new layer, and guards the parent", function()
      local tarball = dir .. "/app-layer.tar"
      sh(("mkdir -p %s/app/srv && echo hi > %s/app/srv/app.txt && tar -C %s/app -cf %s srv"):format(dir, dir, dir, tarball))
      local parent = store:inspect("busybox:1.35")
      local lid = assert(layers:import(tarball, { parents = { parent.Layers[1] } })).Id
      local id = assert(store:create {
        parent = "busybox:1.35", layer = lid, name = "app", version = "1.0", publisher = "Demo",
        config = { Cmd = { "/bin/cat", "/srv/app.txt" }, Env = { "A=1" } }, created_by = "test",
      })
      local img = store:inspect(id)
      assert.equal("app", img.Name)
      assert.is_false(img.IsOSImage)
      assert.equal(2, #img.Layers)
      assert.same({ "/bin/cat", "/srv/app.txt" }, img.Config.config.Cmd)
      assert.equal(parent.Id, img.Parent)
      assert.equal(#parent.Config.history + 1, #img.Config.history)
      local ok, err = store:remove("busybox:1.35")
      assert.is_nil(ok)
      assert.matches("image " .. id .. " is built on it", err)
    end)

    it("refuses to remove an image a container uses, unless forced", function()
      assert(store:acquire("app:1.0", "container-1"))
      local ok, err, code = store:remove("app:1.0")
      assert.is_nil(ok)
      assert.matches("in use by container container%-1", err)
      assert.equal(16, code) -- EBUSY
      assert(store:release("app:1.0", "container-1"))
    end)

    it("tags, untags, and removes one tag of several without removing the image", function()
      assert(store:tag("app:1.0", "app:latest"))
      assert.equal(store:resolve("app:1.0"), store:resolve("app:latest"))
      assert(store:remove("app:latest"))
      assert.truthy(store:resolve("app:1.0"))
      assert.is_nil(store:resolve("app:latest"))
      local ok, err = store:tag("app:1.0", "Bad Name")
      assert.is_nil(ok)
      assert.matches("invalid image reference", err)
    end)

    it("removes images and their unused layers", function()
      local app = store:inspect("app:1.0")
      assert(store:remove("app:1.0"))
      assert.is_false(layers:exists(app.Layers[2]))
      assert.is_true(layers:exists(app.Layers[1])) -- still the base image's
      assert(store:remove("busybox:1.35"))
      assert.is_false(layers:exists(app.Layers[1]))
      no_tmp_left()
    end)
  end)
end)
