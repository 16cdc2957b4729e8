-- hcs.image against hostile archives and layouts: nothing an image import
-- unpacks may land outside its private directory, and no special file in a
-- layout may hang or feed the import.  Archives are crafted with Python's
-- tarfile (pax headers set by hand), as an attacker would.
local u = require "spec_util"
local hcs = require "hcs"

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

-- Write a Python script to a file and run it (the archive builder).
local function python(dir, code)
  local path = dir .. "/craft.py"
  u.write_file(path, code)
  return sh("python3 " .. u.quote(path))
end

local LAYOUT = [[
import tarfile, io, sys
def add(t, name, data=b"", **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items(): setattr(ti, k, v)
    if "size" not in kw: ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
]]

describe("hcs.image import of a hostile archive", function()
  local dir, host, store

  before_each(function()
    dir = u.tmpdir()
    host = dir .. "/host.txt"
    u.write_file(host, "host secret\n")
    store = assert(hcs.image.open(dir .. "/root"))
  end)

  after_each(function()
    if store then store:close() end
    u.rmtree(dir)
  end)

  local function no_tmp_left()
    local _, _, out = u.run(("ls -A %s/root/images | grep '^\\.tmp' || true"):format(dir))
    assert.equal("", out)
  end

  it("never writes through a pax hard link with data to a host file", function()
    python(dir, LAYOUT .. ([[
t = tarfile.open("%s/evil.tar", "w", format=tarfile.PAX_FORMAT)
add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
data = b"PWNED\n"
add(t, "evil", data, type=tarfile.LNKTYPE, linkname="%s", size=len(data), pax_headers={"size": str(len(data))})
t.close()
]]):format(dir, host))
    local r, err = store:import(dir .. "/evil.tar")
    assert.is_nil(r)
    assert.equal("host secret\n", u.read_file(host))
    assert.matches("hard link target `" .. host:gsub("%p", "%%%0") .. "` escapes the archive root", err)
    no_tmp_left()
  end)

  it("never writes through a hard link that climbs out with `..`", function()
    python(dir, LAYOUT .. ([[
t = tarfile.open("%s/evil.tar", "w", format=tarfile.PAX_FORMAT)
add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
data = b"PWNED\n"
add(t, "evil", data, type=tarfile.LNKTYPE, linkname="../../../../../../../../%s", size=len(data),
    pax_headers={"size": str(len(data))})
t.close()
]]):format(dir, host:sub(2)))
    local r, err = store:import(dir .. "/evil.tar")
    assert.is_nil(r)
    assert.equal("host secret\n", u.read_file(host))
    assert.matches("escapes the archive root", err)
    no_tmp_left()
  end)

  it("never writes through a symlink planted by an earlier entry", function()
    python(dir, LAYOUT .. ([[
t = tarfile.open("%s/evil.tar", "w", format=tarfile.PAX_FORMAT)
add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
add(t, "d", type=tarfile.SYMTYPE, linkname="%s")
add(t, "d/host.txt", b"PWNED\n")
add(t, "f", type=tarfile.SYMTYPE, linkname="%s")
add(t, "f", b"PWNED\n")
t.close()
]]):format(dir, dir, host))
    local r, err = store:import(dir .. "/evil.tar")
    assert.is_nil(r)
    assert.equal("host secret\n", u.read_file(host))
    assert.matches("extract `d/host.txt`", err)
    no_tmp_left()
  end)

  it("copies a hard link to a file inside the archive, and still imports", function()
    -- Only the link's use is checked here: a layout whose index.json is a
    -- hard link to another member unpacks as a copy and reads as JSON.
    python(dir, LAYOUT .. ([[
t = tarfile.open("%s/links.tar", "w", format=tarfile.PAX_FORMAT)
add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
add(t, "index-real.json", b'{"schemaVersion":2,"manifests":[]}')
add(t, "index.json", type=tarfile.LNKTYPE, linkname="index-real.json")
t.close()
]]):format(dir))
    local r, err = store:import(dir .. "/links.tar")
    assert.is_nil(r)
    assert.matches("lists no linux image manifest", err)
    no_tmp_left()
  end)

  it("refuses a FIFO as a layout blob without hanging", function()
    local layout = dir .. "/layout"
    local digest = ("a"):rep(64)
    sh(("mkdir -p %s/blobs/sha256 && echo '{\"imageLayoutVersion\":\"1.0.0\"}' > %s/oci-layout && mkfifo %s/blobs/sha256/%s")
      :format(layout, layout, layout, digest))
    u.write_file(layout .. "/index.json", ([[{"schemaVersion":2,"manifests":[{"mediaType":
      "application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":10}]}]]):format(digest))
    -- Through the CLI under a timeout: before the fix the open blocked forever.
    local ok, code, _, err = u.run(("timeout 30 %s --root %s/root image import %s"):format(u.hcs_bin, dir, layout))
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("blobs/sha256/" .. digest .. "` in `[^`]+`: not a regular file", err)
  end)

  it("refuses a FIFO given as the archive without hanging", function()
    sh(("mkfifo %s/archive.tar"):format(dir))
    local ok, code, _, err = u.run(("timeout 30 %s --root %s/root image import %s/archive.tar")
      :format(u.hcs_bin, dir, dir))
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("not a regular file or directory", err)
  end)

  it("refuses a layout blob that is a symlink out of the layout", function()
    local layout = dir .. "/layout"
    local digest = ("b"):rep(64)
    sh(("mkdir -p %s/blobs/sha256 && echo '{\"imageLayoutVersion\":\"1.0.0\"}' > %s/oci-layout && ln -s %s %s/blobs/sha256/%s")
      :format(layout, layout, host, layout, digest))
    u.write_file(layout .. "/index.json", ([[{"schemaVersion":2,"manifests":[{"mediaType":
      "application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":10}]}]]):format(digest))
    local r, err = store:import(layout)
    assert.is_nil(r)
    assert.matches("blobs/sha256/" .. digest .. "` in `[^`]+`: a symlink", err)
  end)
end)
