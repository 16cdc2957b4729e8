-- hcs image save: the image's own tag goes into the archive (OCI index and
-- the docker-compatible manifest.json, read back by skopeo), and `-o -`
-- streams the archive to standard output.
local u = require "spec_util"
local hcs = require "hcs"
local cjson = require "cjson"

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

local function have(tool) return u.run("command -v " .. tool .. " >/dev/null") end

describe("hcs image save", function()
  local dir, root, store

  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    sh(("%s/scripts/make-base-image --tar-only %s/base.tar.gz"):format(u.source_dir, dir))
    store = assert(hcs.image.open(root))
    assert(store:install_os(dir .. "/base.tar.gz", { name = "ux/worker", version = "1" }))
  end)

  teardown(function()
    if store then store:close() end
    u.rmtree(dir)
  end)

  it("writes the image's own tag when saved by its bare name", function()
    local archive = dir .. "/worker.tar"
    assert(store:save({ "ux/worker" }, archive))
    local index = cjson.decode(sh(("tar -xOf %s index.json"):format(archive)))
    assert.equal(1, #index.manifests)
    assert.equal("ux/worker:1", index.manifests[1].annotations["org.opencontainers.image.ref.name"])
    local docker = cjson.decode(sh(("tar -xOf %s manifest.json"):format(archive)))
    assert.same({ "ux/worker:1" }, docker[1].RepoTags)
    -- and it imports back under the same name and tag
    local other <close> = assert(hcs.image.open(dir .. "/root2"))
    local imported = assert(other:import(archive))
    assert.equal("ux/worker", imported[1].Name)
    assert.equal("1", imported[1].Version)
    if not have("skopeo") then return pending("skopeo not installed") end
    local tags = cjson.decode(sh("skopeo list-tags docker-archive:" .. archive))
    assert.same({ "ux/worker:1" }, tags.Tags)
    local info = cjson.decode(sh(("skopeo inspect --raw oci-archive:%s:ux/worker:1"):format(archive)))
    assert.equal("application/vnd.oci.image.manifest.v1+json", info.mediaType)
  end)

  it("writes to standard output with -o -, not to a file named -", function()
    local work = dir .. "/cwd"
    sh("mkdir -p " .. work)
    local ok, code, _, err = u.run(("cd %s && %s --root %s image save ux/worker:1 -o - > %s/stream.tar")
      :format(work, u.hcs_bin, root, dir))
    assert(ok, ("save failed (%s): %s"):format(tostring(code), err))
    assert.is_nil(u.read_file(work .. "/-"))
    local index = cjson.decode(sh(("tar -xOf %s/stream.tar index.json"):format(dir)))
    assert.equal("ux/worker:1", index.manifests[1].annotations["org.opencontainers.image.ref.name"])
    local other <close> = assert(hcs.image.open(dir .. "/root3"))
    local imported = assert(other:import(dir .. "/stream.tar"))
    assert.equal(store:resolve("ux/worker:1"), imported[1].Id)
  end)

  it("streams to an open Lua file", function()
    local f = assert(io.open(dir .. "/lua-stream.tar", "wb"))
    assert(store:save({ "ux/worker:1" }, f))
    f:close()
    local docker = cjson.decode(sh(("tar -xOf %s/lua-stream.tar manifest.json"):format(dir)))
    assert.same({ "ux/worker:1" }, docker[1].RepoTags)
  end)
end)
