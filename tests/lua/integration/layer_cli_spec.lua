-- `hcs layer ...`: import, export, ls, inspect, rm, create-scratch,
-- activate, mount-path, deactivate; --json output; errors and exit codes.
local su = require "spec_util"
local json = require("hcs.core").json

describe("hcs layer", function()
  local T, root
  local function hcs(...)
    return su.hcs({ "layer", ... })
  end
  before_each(function()
    T = su.tmpdir()
    root = T .. "/root"
    assert(su.run(("mkdir -p %s/src/d && printf 'x\\n' > %s/src/d/x && tar -C %s/src -czf %s/l.tgz ."):format(T, T, T, T)))
  end)
  after_each(function()
    assert.same({}, su.mounts_under(T))
    su.rmtree(T)
  end)

  it("imports, lists, inspects, exports and removes with --json", function()
    local ok, code, out, err = hcs("import", "--root", root, "--json", "--id", "base", T .. "/l.tgz")
    assert.is_true(ok, err)
    assert.equal(0, code)
    local l = json.decode(out)
    assert.equal("base", l.Id)
    assert.equal("", err) -- no progress bar when stderr is not a terminal

    ok, _, out = hcs("ls", "--root", root, "--json")
    assert.is_true(ok)
    local list = json.decode(out)
    assert.equal(1, #list)
    assert.equal(l.DiffID, list[1].DiffID)

    ok, _, out = hcs("ls", "--root", root)
    assert.is_true(ok)
    assert.matches("ID%s+KIND%s+SIZE", out)
    assert.matches("base%s+layer", out)

    ok, _, out = hcs("inspect", "--root", root, "base")
    assert.is_true(ok)
    assert.equal("base", json.decode(out).Id)

    ok, _, out = hcs("export", "--root", root, "--json", "-c", "zstd", "--mtime", "0", "base", T .. "/out.zst")
    assert.is_true(ok)
    local r = json.decode(out)
    assert.equal(l.DiffID == r.DiffID, false) -- GNU tar and hcs write different tar streams
    assert.matches("^sha256:", r.Digest)
    local _, _, sum = su.run("sha256sum " .. T .. "/out.zst")
    assert.equal(r.Digest, "sha256:" .. sum:match("^(%x+)"))

    ok, _, out = hcs("rm", "--root", root, "--json", "base")
    assert.is_true(ok)
    assert.same({ "base" }, json.decode(out))
  end)

  it("caps what an import may expand to with --max-size and --max-file-size", function()
    assert(su.run(("mkdir -p %s/sp && truncate -s 64M %s/sp/holes && printf 'x' > %s/sp/x"
      .. " && tar --sparse --format=pax -C %s/sp -cf %s/sp.tar holes x"):format(T, T, T, T, T)))
    local ok, code, _, err = hcs("import", "--root", root, "--max-file-size", "1M", T .. "/sp.tar")
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("entry `holes`: file of 64.0 MiB exceeds the import limit of 1.0 MiB per file", err, 1, true)
    ok, code, _, err = hcs("import", "--root", root, "--max-size", "64M", T .. "/sp.tar")
    assert.equal(1, code)
    assert.matches("entry `x`: the layer's files reach 64.0 MiB, over the import limit of 64.0 MiB (max_size)", err, 1,
      true)
    ok, code, _, err = hcs("import", "--root", root, "--max-size", "12Q", T .. "/sp.tar")
    assert.equal(2, code)
    assert.matches("'12Q' is not a size", err, 1, true)
    ok, _, _, err = hcs("ls", "--root", root, "--json")
    local _, _, out = hcs("ls", "--root", root, "--json")
    assert.same({}, json.decode(out))
    ok, code, _, err = hcs("import", "--root", root, "--max-size", "65M", "--max-file-size", "none", "--id", "sp",
      T .. "/sp.tar")
    assert.is_true(ok, err)
    assert.equal(0, code)
  end)

  it("draws a progress bar when stderr is a terminal", function()
    assert(su.run(("mkdir -p %s/big && head -c 6000000 /dev/urandom > %s/big/f && tar -C %s/big -czf %s/big.tgz ."):format(T, T, T, T)))
    local cmd = ("%s layer import --root %s --id big %s/big.tgz"):format(su.hcs_bin, root, T)
    local ok, _, out = su.run("script -qec " .. su.quote(cmd) .. " /dev/null")
    assert.is_true(ok)
    assert.matches("import %[#+%.*%] +%d+%% [%d.]+ MiB / [%d.]+ MiB", out)
    assert.matches("\r\27%[K", out) -- the bar is cleared at the end
    local _, _, _, err = hcs("import", "--root", root, "--id", "big2", T .. "/big.tgz")
    assert.equal("", err) -- not a terminal: no bar
  end)

  it("exports to stdout", function()
    assert.is_true((hcs("import", "--root", root, "--id", "base", T .. "/l.tgz")))
    local ok, _, _, err = su.run(("%s layer export --root %s -c none base - > %s/out.tar"):format(su.hcs_bin, root, T))
    assert.is_true(ok)
    local _, _, list = su.run("tar -tf " .. T .. "/out.tar")
    assert.matches("d/x", list)
    assert.matches("^sha256:%x+ sha256:%x+", err)
  end)

  it("creates, activates and deactivates a scratch layer", function()
    assert.is_true((hcs("import", "--root", root, "--id", "base", T .. "/l.tgz")))
    assert.is_true((hcs("create-scratch", "--root", root, "-p", "base", "c1")))
    local ok, _, out = hcs("activate", "--root", root, "--json", "c1")
    assert.is_true(ok)
    local mp = json.decode(out).MountPath
    assert.equal("x\n", su.read_file(mp .. "/d/x"))
    ok, _, out = hcs("mount-path", "--root", root, "c1")
    assert.is_true(ok)
    assert.equal(mp .. "\n", out)
    local _, code, _, err = hcs("rm", "--root", root, "base")
    assert.equal(1, code)
    assert.matches("layer `c1` depends on it", err)
    assert.is_true((hcs("deactivate", "--root", root, "c1")))
    assert.is_true((hcs("rm", "--root", root, "c1", "base")))
  end)

  it("fails with a clear message and status 1, usage errors with 2", function()
    local ok, code, _, err = hcs("import", "--root", root, T .. "/missing.tgz")
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("^hcs layer import: import layer: open `.*missing.tgz`", err)
    _, code, _, err = hcs("inspect", "--root", root, "nope")
    assert.equal(1, code)
    assert.matches("layer `nope` not found", err)
    _, code = hcs("import", "--root", root)
    assert.equal(2, code)
    _, code = hcs("bogus")
    assert.equal(2, code)
    local corrupt = T .. "/corrupt.tgz"
    su.write_file(corrupt, "\31\139\8\0garbage garbage garbage")
    _, code, _, err = hcs("import", "--root", root, corrupt)
    assert.equal(1, code)
    assert.matches("gzip", err)
    _, code, _, err = hcs("export", "--root", root, "-c", "lz4", "x", T .. "/o")
    assert.equal(2, code)
    assert.matches("%-%-compression must be gzip, zstd or none, not 'lz4'", err)
  end)
end)
