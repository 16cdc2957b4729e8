-- hcs.layer from Lua: the store handle, its verbs, errors and progress.
local su = require "spec_util"
local hcs = require "hcs"

local function sh(cmd)
  local ok, code, out, err = su.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s"):format(tostring(code), cmd, err))
  return out
end

describe("hcs.layer", function()
  local T, store
  before_each(function()
    T = su.tmpdir()
    sh(("mkdir -p %s/src/etc && printf 'hi\\n' > %s/src/etc/hi && head -c 3000000 /dev/urandom > %s/src/big"):format(T, T, T))
    sh(("tar -C %s/src -czf %s/l.tgz ."):format(T, T))
    store = assert(hcs.layer.open(T .. "/root"))
  end)
  after_each(function()
    store:close()
    assert.same({}, su.mounts_under(T))
    su.rmtree(T)
  end)

  describe("open()", function()
    it("gives a handle that prints its path and closes idempotently", function()
      assert.matches("hcs.layer.store %(" .. T:gsub("%p", "%%%0") .. "/root/layers%)", tostring(store))
      assert.equal(T .. "/root/layers", store:path())
      local s2 = assert(hcs.layer.open(T .. "/root"))
      s2:close()
      s2:close()
      assert.matches("closed", tostring(s2))
      assert.has_error(function() s2:list() end, "attempt to use a closed layer store")
    end)
  end)

  describe("import()", function()
    it("imports a gzip layer, reports progress and returns the inspect document", function()
      local calls, last = 0, 0
      local l = assert(store:import(T .. "/l.tgz", {
        id = "base",
        progress = function(done, total)
          calls = calls + 1
          assert.is_true(done >= last)
          last = done
          assert.is_true(total > 0)
        end,
      }))
      assert.equal("base", l.Id)
      assert.equal("gzip", l.Compression)
      assert.matches("^sha256:%x+$", l.DiffID)
      local blob = sh("sha256sum " .. T .. "/l.tgz"):match("^(%x+)")
      assert.equal("sha256:" .. blob, l.Digest)
      assert.equal(0, #l.Parents)
      assert.is_true(calls >= 1)
      assert.equal(l.CompressedSize, last)
    end)

    it("returns nil, message, errno for environmental failures", function()
      local v, msg, code = store:import(T .. "/missing.tar")
      assert.is_nil(v)
      assert.matches("missing.tar", msg)
      assert.equal(2, code)
      v, msg = store:import(T .. "/l.tgz", { parents = { "nope" } })
      assert.is_nil(v)
      assert.matches("unknown parent layer `nope`", msg)
    end)

    it("raises on misuse", function()
      assert.has_error(function() store:import(42, "x") end)
      assert.has_error(function() store:import(T .. "/l.tgz", { parents = { 1 } }) end)
      assert.has_error(function() store:import(T .. "/l.tgz", { progress = 3 }) end)
    end)
  end)

  describe("export()", function()
    it("exports with digests and re-imports to the same diff id", function()
      local l = assert(store:import(T .. "/l.tgz", { id = "base" }))
      for _, c in ipairs { "gzip", "zstd", "none" } do
        local r = assert(store:export("base", T .. "/out." .. c, { compression = c }))
        assert.equal(c, r.Compression)
        assert.equal("sha256:" .. sh("sha256sum " .. T .. "/out." .. c):match("^(%x+)"), r.Digest)
        local again = assert(store:import(T .. "/out." .. c, { id = "again-" .. c }))
        assert.equal(r.DiffID, again.DiffID)
        assert.equal(r.Digest, again.Digest)
        assert.equal(l.Size > 0, true)
      end
    end)

    it("writes into a device or fifo in place instead of replacing it", function()
      assert(store:import(T .. "/l.tgz", { id = "base" }))
      local null = T .. "/null" -- a private /dev/null: the real one must never be at risk in a test
      sh(("mknod -m 666 %s c 1 3"):format(null))
      local r = assert(store:export("base", null, { compression = "none" }))
      assert.truthy(r.DiffID)
      assert.equal("character special file\n", sh("stat -c %F " .. null))
      local fifo = T .. "/fifo"
      sh("mkfifo " .. fifo)
      os.execute(("cat %s > %s/from-fifo.tar &"):format(fifo, T))
      assert(store:export("base", fifo, { compression = "none" }))
      assert.equal("fifo\n", sh("stat -c %F " .. fifo))
      for _ = 1, 100 do -- the reader drains the fifo after the writer closed it
        if not su.run("pgrep -f " .. su.quote("cat " .. fifo) .. " >/dev/null") then break end
        os.execute("sleep 0.05")
      end
      local again = assert(store:import(T .. "/from-fifo.tar", { id = "via-fifo" }))
      assert.equal(r.DiffID, again.DiffID)
    end)

    it("exports a tree thousands of directories deep (the walk recurses once per level)", function()
      -- an empty layer whose diff/ is then filled as a container could fill
      -- an upper directory: 3,000 levels, deeper than PATH_MAX
      sh(("tar -cf %s/empty.tar -T /dev/null"):format(T))
      local l = assert(store:import(T .. "/empty.tar", { id = "deep" }))
      sh(("python3 -c \"import os\nos.chdir('%s/root/layers/deep/diff')\nfor i in range(3000):\n"
        .. " os.mkdir('d')\n os.chdir('d')\nopen('f', 'w').write('x')\nos.symlink('f', 'l')\""):format(T))
      -- one fd per level: room for them, so the stack is what is tested
      local ok, _, out, err = su.run(("ulimit -n 8192 && %s -e %s"):format(su.quote(su.hcs_bin), su.quote(
        ("local r = assert(require('hcs').layer.open(%q):export(%q, %q, { compression = 'gzip' })) print(r.Size > 0)")
          :format(T .. "/root", l.Id, T .. "/deep.tar.gz"))))
      assert.is_true(ok, err)
      assert.equal("true\n", out)
      local entries = sh(("tar -tzf %s | wc -l"):format(T .. "/deep.tar.gz"))
      assert.equal(3002, tonumber(entries))
    end)

    it("refuses an unknown compression", function()
      assert(store:import(T .. "/l.tgz", { id = "base" }))
      assert.has_error(function() store:export("base", T .. "/x", { compression = "lzma" }) end)
    end)
  end)

  describe("scratch layers", function()
    it("create, activate, prepare, mount_path, deactivate, destroy", function()
      local base = assert(store:import(T .. "/l.tgz"))
      local s = assert(store:create_scratch("c1", { base.Id }))
      assert.equal("scratch", s.Kind)
      assert.same({ base.Id }, s.Parents)
      assert.equal(T .. "/root/layers/" .. base.Id, s.LayerChain[1])
      local mp = assert(store:activate("c1"))
      assert.equal(mp, store:mount_path("c1"))
      assert.equal("hi\n", su.read_file(mp .. "/etc/hi"))
      assert.is_true(store:inspect("c1").Active)
      assert(store:prepare("c1", { { HostPath = T, ContainerPath = "/mnt/host" } }))
      assert.is_true(store:inspect("c1").Prepared)
      assert.is_true((su.run("test -d " .. mp .. "/proc && test -d " .. mp .. "/dev/pts && test -d " .. mp .. "/mnt/host")))
      local v, msg = store:destroy("c1")
      assert.is_nil(v)
      assert.matches("activated", msg)
      v, msg = store:destroy(base.Id)
      assert.is_nil(v)
      assert.matches("depends on it", msg)
      assert(store:unprepare("c1"))
      assert(store:deactivate("c1"))
      assert(store:deactivate("c1"))
      assert.same({}, su.mounts_under(T))
      v, msg = store:mount_path("c1")
      assert.is_nil(v)
      assert.matches("not activated", msg)
      assert(store:destroy("c1"))
      assert.is_false(store:exists("c1"))
      assert.is_true(store:exists(base.Id))
    end)

    it("names the missing parent when a chain cannot be mounted (new mount API and mount(2))", function()
      local base = assert(store:import(T .. "/l.tgz"))
      assert(store:create_scratch("c2", { base.Id }))
      local diff = T .. "/root/layers/" .. base.Id .. "/diff"
      assert(os.rename(diff, diff .. ".away"))
      finally(function() os.rename(diff .. ".away", diff) end)
      local v, msg = store:activate("c2")
      assert.is_nil(v)
      assert.matches("activate layer `c2`: overlay lowerdir `" .. diff:gsub("%p", "%%%0") .. "`: No such file", msg)
      local ok, _, out, err = su.run(("HCS_LAYER_MOUNT=legacy %s -e %s"):format(su.quote(su.hcs_bin), su.quote(
        ("print(select(2, require('hcs').layer.open(%q):activate('c2')))"):format(T .. "/root"))))
      assert.is_true(ok, err)
      assert.matches("activate layer `c2`: overlay lowerdir `" .. diff:gsub("%p", "%%%0") .. "`: No such file", out)
      assert.same({}, su.mounts_under(T))
    end)
  end)

  describe("refcounts", function()
    it("block destroy until released", function()
      assert(store:import(T .. "/l.tgz", { id = "base" }))
      assert.equal(1, store:acquire("base"))
      local v, msg = store:destroy("base")
      assert.is_nil(v)
      assert.matches("in use", msg)
      assert.equal(0, store:release("base"))
      assert(store:destroy("base"))
      assert.equal(0, #store:list())
    end)
  end)

  describe("chain_id()", function()
    it("names layers imported without an id", function()
      local base = assert(store:import(T .. "/l.tgz"))
      assert.equal(base.DiffID, hcs.layer.chain_id(nil, base.DiffID))
      assert.equal(base.Id, base.DiffID:sub(8))
      assert(su.run(("mkdir -p %s/s2 && printf 2 > %s/s2/two && tar -C %s/s2 -cf %s/two.tar ."):format(T, T, T, T)))
      local child = assert(store:import(T .. "/two.tar", { parents = { base.Id } }))
      local want = hcs.layer.chain_id(base.ChainID, child.DiffID)
      assert.equal(want, child.ChainID)
      assert.equal(want:sub(8), child.Id)
    end)
  end)

  describe("module functions", function()
    it("work on the store under hcs.layer.root", function()
      local saved = hcs.layer.root
      hcs.layer.root = T .. "/root2"
      local l = assert(hcs.layer.import(T .. "/l.tgz", { id = "m" }))
      assert.equal("m", l.Id)
      assert.equal(1, #hcs.layer.list())
      assert(hcs.layer.destroy("m"))
      hcs.layer.root = saved
    end)
  end)
end)
