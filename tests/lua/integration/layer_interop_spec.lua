-- Interop with umoci (and GNU tar): layers umoci wrote import correctly and
-- stack to the same rootfs umoci unpacks; a layer hcs exported, wrapped in a
-- minimal OCI layout, is unpacked by umoci into the original tree.
local su = require "spec_util"
local hcs = require "hcs"
local json = hcs.json

local function sh(cmd)
  local ok, code, out, err = su.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s"):format(tostring(code), cmd, err))
  return out
end

-- A listing of a tree: path, type, mode, owner, size, link target and a
-- digest of each regular file; sorted.
local function listing(dir)
  local meta = sh(("cd %s && find . -mindepth 1 -printf '%%P %%y %%m %%U:%%G %%s %%l\\n' | sed 's/ [0-9]* \\(.*\\)$/ \\1/;' | sort")
    :format(su.quote(dir)))
  -- directory sizes differ between filesystems: drop the size column for dirs
  meta = meta:gsub("(%S+ d %d+ %d+:%d+) %d+", "%1")
  local sums = sh(("cd %s && find . -type f -exec sha256sum {} + | sort -k2"):format(su.quote(dir)))
  return meta .. sums
end

local function sha256(path)
  return sh("sha256sum " .. su.quote(path)):match("^(%x+)")
end

local function write_blob(layout, text)
  local tmp = layout .. "/blob.tmp"
  su.write_file(tmp, text)
  local d = sha256(tmp)
  sh(("mv %s %s/blobs/sha256/%s"):format(tmp, layout, d))
  return "sha256:" .. d, #text
end

describe("layer interop", function()
  local T, store
  before_each(function()
    T = su.tmpdir()
    store = assert(hcs.layer.open(T .. "/root"))
  end)
  after_each(function()
    store:close()
    assert.same({}, su.mounts_under(T))
    su.rmtree(T)
  end)

  it("imports layers written by umoci repack, whiteouts included", function()
    sh(("cd %s && umoci init --layout oci && umoci new --image oci:img && umoci unpack --image oci:img b"):format(T))
    sh(("cd %s/b/rootfs && mkdir -p etc dir/sub && printf 'a\\n' > etc/a && printf 'b\\n' > etc/b && printf 'x' > dir/x"
      .. " && printf 'y' > dir/sub/y && ln etc/a etc/a.link && ln -s ../etc/a dir/rel && chmod 0700 dir/sub"
      .. " && chown 123:456 etc/b"):format(T))
    sh(("cd %s && umoci repack --image oci:img b"):format(T))
    -- a second layer (umoci repacks against the bundle's own base: unpack again)
    sh(("cd %s && umoci unpack --image oci:img b2"):format(T))
    sh(("cd %s/b2/rootfs && rm etc/b && rm -r dir && mkdir dir && printf 'z' > dir/z"):format(T))
    sh(("cd %s && umoci repack --image oci:img b2 && umoci unpack --image oci:img ref"):format(T))

    local index = json.decode(su.read_file(T .. "/oci/index.json"))
    local mdigest = index.manifests[1].digest:match("sha256:(%x+)")
    local manifest = json.decode(su.read_file(T .. "/oci/blobs/sha256/" .. mdigest))
    local parent
    local ids = {}
    for i, layer in ipairs(manifest.layers) do
      local blob = T .. "/oci/blobs/sha256/" .. layer.digest:match("sha256:(%x+)")
      local l = assert(store:import(blob, { parents = parent and { parent } or nil }))
      assert.equal(layer.digest, l.Digest)
      ids[i] = l.Id
      parent = l.Id
    end
    assert.is_true(#ids >= 2)
    assert(store:create_scratch("view", { parent }))
    local mp = assert(store:activate("view"))
    finally(function() store:deactivate("view") end)
    assert.equal(listing(T .. "/ref/rootfs"), listing(mp))
    assert.is_nil(su.read_file(mp .. "/etc/b"))
    assert.is_nil(su.read_file(mp .. "/dir/x"))
    assert.equal("z", su.read_file(mp .. "/dir/z"))
  end)

  it("exports a layer that umoci unpacks to the original tree", function()
    local src = T .. "/src"
    sh(("mkdir -p %s/usr/bin %s/etc/empty && printf 'hello\\n' > %s/etc/hello && head -c 2000000 /dev/urandom > %s/usr/bin/big"
      .. " && ln %s/etc/hello %s/etc/hello.link && ln -s /etc/hello %s/usr/bin/abs && chmod 4755 %s/usr/bin/big"
      .. " && chown 1000:1000 %s/etc/hello && python3 -c \"import os; os.setxattr('%s/etc/hello', 'user.k', b'v')\"")
      :gsub("%%s", (src:gsub("%%", "%%%%"))))
    -- small random files between text ones (in tar order): the export stores
    -- the random runs and deflates the rest, many gzip members in a chunk
    su.write_file(T .. "/mix.py", "import os, sys\nos.makedirs(sys.argv[1])\nfor i in range(40):\n"
      .. " open(sys.argv[1] + '/f%02da' % i, 'wb').write(os.urandom(6000))\n"
      .. " open(sys.argv[1] + '/f%02db' % i, 'wb').write(b'some text %d ' % i * 500)\n")
    sh(("python3 %s/mix.py %s/mix"):format(T, src))
    sh(("tar --xattrs --xattrs-include='*' -C %s -cf %s/src.tar ."):format(src, T))
    local l = assert(store:import(T .. "/src.tar", { id = "src" }))
    local layout = T .. "/layout"
    sh(("mkdir -p %s/blobs/sha256"):format(layout))
    local out = T .. "/layer.tar.gz"
    local r = assert(store:export(l.Id, out, { compression = "gzip", mtime = 1700000000 }))
    -- zlib (Python), GNU gzip and Go (skopeo, umoci below) read all the members;
    -- each random file is stored whole in a member of its own (6000 bytes in,
    -- more out), the text around it deflated
    local members = sh(("python3 -c \"import zlib,hashlib\nd=open('%s','rb').read()\nh=hashlib.sha256()\nn=0\ns=0\n"
      .. "while d:\n o=zlib.decompressobj(31)\n x=o.decompress(d)\n h.update(x)\n"
      .. " s+=len(x)==6000 and len(d)-len(o.unused_data)>6000\n d=o.unused_data\n n+=1\n"
      .. "print(n, s, 'sha256:'+h.hexdigest())\""):format(out))
    local n, nstored, zdigest = members:match("^(%d+) (%d+) (%S+)")
    assert.equal(r.DiffID, zdigest)
    assert.is_true(tonumber(n) >= 80, "gzip members: " .. n)
    assert.equal(40, tonumber(nstored), "random files stored in members of their own")
    assert.equal(r.DiffID, "sha256:" .. sh(("gzip -dc %s | sha256sum"):format(out)):match("^(%x+)"))
    sh(("cp %s %s/blobs/sha256/%s"):format(out, layout, r.Digest:match("sha256:(%x+)")))
    local config = json.encode({
      architecture = "amd64", os = "linux", config = {},
      rootfs = { type = "layers", diff_ids = json.array { r.DiffID } },
    })
    local cdigest, csize = write_blob(layout, config)
    local manifest = json.encode({
      schemaVersion = 2,
      mediaType = "application/vnd.oci.image.manifest.v1+json",
      config = { mediaType = "application/vnd.oci.image.config.v1+json", digest = cdigest, size = csize },
      layers = json.array { { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip", digest = r.Digest, size = r.Size } },
    })
    local mdigest, msize = write_blob(layout, manifest)
    su.write_file(layout .. "/index.json", json.encode({
      schemaVersion = 2,
      manifests = json.array { {
        mediaType = "application/vnd.oci.image.manifest.v1+json", digest = mdigest, size = msize,
        annotations = { ["org.opencontainers.image.ref.name"] = "latest" },
      } },
    }))
    su.write_file(layout .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
    sh(("skopeo inspect --raw oci:%s:latest >/dev/null"):format(layout))
    sh(("umoci unpack --image %s:latest %s/bundle"):format(layout, T))
    assert.equal(listing(src), listing(T .. "/bundle/rootfs"))
    local _, _, attr = su.run(("python3 -c \"import os; print(os.getxattr('%s/bundle/rootfs/etc/hello', 'user.k'))\""):format(T))
    assert.matches("b'v'", attr)
  end)

  it("exports gzip at every level class that gzip(1), zlib and our import read back, the same bytes for 1 and 3 threads",
    function()
    -- text, random files between text ones, and a 3 MiB text file across
    -- chunk boundaries: deflated members, stored members, several chunks
    su.write_file(T .. "/gen.py", "import os, sys\nos.makedirs(sys.argv[1])\nfor i in range(30):\n"
      .. " open(sys.argv[1] + '/f%02da' % i, 'wb').write(os.urandom(7000))\n"
      .. " open(sys.argv[1] + '/f%02db' % i, 'wb').write(b'line of text %d\\n' % i * 700)\n"
      .. "open(sys.argv[1] + '/big', 'wb').write(b''.join(b'%08d some words\\n' % i for i in range(140000)))\n")
    sh(("python3 %s/gen.py %s/src && tar -C %s/src -cf %s/src.tar ."):format(T, T, T, T))
    local l = assert(store:import(T .. "/src.tar", { id = "src" }))
    -- every member: gzip magic, deflate, no flags, mtime 0, XFL 4 or 0 (libdeflate
    -- above level 1 writes 0 or 2), OS 255; prints members and the content's digest
    local check = "import zlib,hashlib,sys\nd=open(sys.argv[1],'rb').read()\nh=hashlib.sha256()\nn=0\n"
      .. "while d:\n assert d[:8]==bytes([31,139,8,0,0,0,0,0]) and d[9]==255 and d[8] in (0,2,4), d[:10]\n"
      .. " o=zlib.decompressobj(31)\n h.update(o.decompress(d))\n assert o.eof\n d=o.unused_data\n n+=1\n"
      .. "print(n, 'sha256:'+h.hexdigest())\n"
    su.write_file(T .. "/check.py", check)
    local digests, diff_id = {}, nil
    for _, level in ipairs({ 0, 1, 2, 3, 12 }) do
      local outs = {}
      for _, threads in ipairs({ 1, 3 }) do
        local out = ("%s/l%d-t%d.tar.gz"):format(T, level, threads)
        local r = assert(store:export(l.Id, out, { compression = "gzip", level = level, threads = threads }))
        diff_id = diff_id or r.DiffID -- the tar hcs writes, the same for every level
        assert.equal(diff_id, r.DiffID)
        assert.equal(r.Digest, "sha256:" .. sha256(out))
        outs[threads] = r
      end
      assert.equal(outs[1].Digest, outs[3].Digest, "level " .. level .. ": 1 and 3 threads give the same bytes")
      local out = ("%s/l%d-t3.tar.gz"):format(T, level)
      assert.equal(diff_id, "sha256:" .. sh(("gzip -dc %s | sha256sum"):format(out)):match("^(%x+)"))
      local n, zdigest = sh(("python3 %s/check.py %s"):format(T, out)):match("^(%d+) (%S+)")
      assert.equal(diff_id, zdigest)
      assert.is_true(tonumber(n) >= 60, "level " .. level .. ": " .. n .. " members")
      local back = assert(store:import(out, { id = "back" .. level }))
      assert.equal(diff_id, back.DiffID)
      assert.equal(outs[3].Digest, back.Digest)
      digests[level] = outs[3].Digest
    end
    assert.equal(digests[1], digests[0], "the default is level 1")
    assert.are_not.equal(digests[1], digests[2])
    assert.are_not.equal(digests[2], digests[3], "level 2 is ISA-L's, 3 libdeflate's")
  end)

  it("refuses a compression level out of range, writing nothing", function()
    sh(("mkdir -p %s/src && printf x > %s/src/x && tar -C %s/src -cf %s/src.tar ."):format(T, T, T, T))
    local l = assert(store:import(T .. "/src.tar", { id = "src" }))
    for _, c in ipairs({
      { "gzip", 13, "compression level 13 is out of range for gzip %(1 to 12%)" },
      { "gzip", -1, "compression level %-1 is out of range for gzip %(1 to 12%)" },
      { "zstd", 23, "compression level 23 is out of range for zstd %(1 to 22%)" },
      { "none", 1, "compression level 1 given for an uncompressed layer" },
    }) do
      local r, err = store:export(l.Id, T .. "/out", { compression = c[1], level = c[2] })
      assert.is_nil(r)
      assert.matches("^export layer `src`: " .. c[3] .. "$", tostring(err))
    end
    assert.equal("", sh(("ls -A %s | grep '^out' || true"):format(T)))
  end)

  it("exports sparse files that GNU tar and umoci read back", function()
    local src = T .. "/src"
    -- 64 MiB with data at both ends (umoci writes holes out as zeros: keep it small)
    sh(("mkdir -p @S@ && printf 'head' > @S@/f && truncate -s 64M @S@/f && printf 'tail' >> @S@/f"
      .. " && printf 'plain' > @S@/p && tar --sparse --format=pax -C @S@ -cf @T@/src.tar f p")
      :gsub("@S@", function() return src end):gsub("@T@", function() return T end))
    local l = assert(store:import(T .. "/src.tar", { id = "sp" }))
    local out = T .. "/sp.tar"
    local r = assert(store:export(l.Id, out, { compression = "none", mtime = 1700000000 }))
    assert.is_true(r.Size < 64 * 1024, "export of " .. r.Size .. " bytes")
    -- GNU tar: same content, holes kept
    sh(("mkdir -p %s/gnu && tar -C %s/gnu -xf %s"):format(T, T, out))
    sh(("cmp %s/f %s/gnu/f && cmp %s/p %s/gnu/p"):format(src, T, src, T))
    assert.is_true(tonumber(sh(("stat -c %%b %s/gnu/f"):format(T))) < 1024)
    -- umoci (Go's archive/tar) unpacks the same tree
    local layout = T .. "/layout"
    sh(("mkdir -p %s/blobs/sha256 && cp %s %s/blobs/sha256/%s"):format(layout, out, layout, r.Digest:match("sha256:(%x+)")))
    local cdigest, csize = write_blob(layout, json.encode({
      architecture = "amd64", os = "linux", config = {},
      rootfs = { type = "layers", diff_ids = json.array { r.DiffID } },
    }))
    local mdigest, msize = write_blob(layout, json.encode({
      schemaVersion = 2,
      mediaType = "application/vnd.oci.image.manifest.v1+json",
      config = { mediaType = "application/vnd.oci.image.config.v1+json", digest = cdigest, size = csize },
      layers = json.array { { mediaType = "application/vnd.oci.image.layer.v1.tar", digest = r.Digest, size = r.Size } },
    }))
    su.write_file(layout .. "/index.json", json.encode({
      schemaVersion = 2,
      manifests = json.array { {
        mediaType = "application/vnd.oci.image.manifest.v1+json", digest = mdigest, size = msize,
        annotations = { ["org.opencontainers.image.ref.name"] = "latest" },
      } },
    }))
    su.write_file(layout .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
    sh(("umoci unpack --image %s:latest %s/bundle"):format(layout, T))
    sh(("cmp %s/f %s/bundle/rootfs/f && cmp %s/p %s/bundle/rootfs/p"):format(src, T, src, T))
  end)

  it("imports a layer written by GNU tar (gzip) to the same tree", function()
    local src = T .. "/src"
    local cmd = ("mkdir -p @S@/a/b && printf '1' > @S@/a/one && ln -s b @S@/a/lnk && mkfifo @S@/a/fifo"
      .. " && tar -C @S@ -czf @T@/t.tgz ."):gsub("@S@", function() return src end):gsub("@T@", function() return T end)
    sh(cmd)
    local l = assert(store:import(T .. "/t.tgz"))
    assert.equal(listing(src), listing(l.Path .. "/diff"))
  end)
end)
