-- Registry configuration shared with podman: TLS client certificates from
-- certs.d (NAME.cert + NAME.key) against a docker-registry 2.8 that requires
-- them (http.tls.clientcas), and registries.conf ($CONTAINERS_REGISTRIES_CONF):
-- a blocked registry, an insecure one, mirrors tried first, a malformed file.
local su = require "spec_util"
local ru = require "registry_util"
local json = require("hcs").json

local sh = ru.sh

local function hcs_ok(argv, env)
  local ok, code, out, err = su.hcs(argv, env)
  assert(ok, ("hcs %s failed (%s):\n%s%s"):format(table.concat(argv, " "), tostring(code), out, err))
  return out
end

local function hcs_fails(argv, env)
  local ok, code, out, err = su.hcs(argv, env)
  assert(not ok, ("hcs %s succeeded:\n%s"):format(table.concat(argv, " "), out))
  assert(code == 1, ("hcs %s: exit status %s, want 1:\n%s"):format(table.concat(argv, " "), tostring(code), err))
  assert.not_matches("traceback", err)
  return err
end

describe("registry configuration #root", function()
  local T, base, l2
  setup(function()
    T = su.tmpdir()
    base = T .. "/busybox.tar.gz"
    sh(("%s/scripts/make-base-image --tar-only %s"):format(su.source_dir, base))
    sh(("mkdir -p %s/l2/etc && echo mirrored > %s/l2/etc/which"):format(T, T))
    l2 = ru.tar(T .. "/l2", T .. "/l2.tar.gz")
    ru.layout(T .. "/one", { base }, "v1")
    ru.layout(T .. "/two", { base, l2 }, "v1")
  end)
  teardown(function() su.rmtree(T) end)

  describe("TLS client certificates", function()
    local reg, tls, client
    setup(function()
      tls = ru.make_tls(su.tmpdir())
      client = ru.make_client_cert(tls.ca:match("^(.*)/ca%.crt$"))
      -- filled over plain HTTP, then served on the same storage with client-cert TLS
      local plain = ru.start(T .. "/mtls")
      ru.copy_in(T .. "/one", "v1", plain.addr .. "/hcs/mtls:v1")
      plain.stop()
      reg = ru.start(T .. "/mtls", { tls = tls, client = client, port = plain.port })
    end)
    teardown(function()
      if reg then reg.stop() end
      if tls then su.rmtree(tls.ca:match("^(.*)/ca%.crt$")) end
    end)

    it("presents NAME.cert with NAME.key from certs.d, and fails clearly without them", function()
      local ref = reg.addr .. "/hcs/mtls:v1"
      local certs = T .. "/certs"
      local dir = certs .. "/" .. reg.addr
      sh(("mkdir -p %s && cp %s %s/ca.crt"):format(dir, tls.ca, dir))
      -- the CA alone: the registry ends the handshake
      local err = hcs_fails({ "--root", T .. "/m0", "image", "pull", ref, "--cert-dir", certs })
      assert.matches("reach registry `" .. reg.addr .. "`", err, 1, true)
      -- a certificate without its key
      sh(("cp %s %s/client.cert"):format(client.cert, dir))
      err = hcs_fails({ "--root", T .. "/m0", "image", "pull", ref, "--cert-dir", certs })
      assert.matches(("client certificate `%s/client.cert` has no key `%s/client.key`"):format(dir, dir), err, 1, true)
      sh(("cp %s %s/client.key"):format(client.key, dir))
      local img = json.decode(hcs_ok({ "--root", T .. "/m1", "image", "pull", ref, "--cert-dir", certs, "--json" }))
      assert.equal(1, #img.Layers)
    end)
  end)

  describe("registries.conf", function()
    local primary, mirror, conf
    setup(function()
      primary = ru.start(T .. "/primary")
      mirror = ru.start(T .. "/mirror")
      -- the same name, other content: which one a pull took shows
      ru.copy_in(T .. "/one", "v1", primary.addr .. "/hcs/app:v1")
      ru.copy_in(T .. "/two", "v1", mirror.addr .. "/hcs/app:v1")
      ru.copy_in(T .. "/one", "v1", primary.addr .. "/hcs/only-primary:v1")
      conf = T .. "/registries.conf"
    end)
    teardown(function()
      if primary then primary.stop() end
      if mirror then mirror.stop() end
    end)

    local function env(text)
      su.write_file(conf, text)
      return { CONTAINERS_REGISTRIES_CONF = conf }
    end

    it("pulls from a mirror first, and from the registry when the mirror lacks the image", function()
      local e = env(([=[
# podman's format, version 2
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "%s"   # the primary
insecure = false

[[registry.mirror]]
location = "%s"
]=]):format(primary.addr, mirror.addr))
      local root = T .. "/mroot"
      local img = json.decode(hcs_ok({ "--root", root, "image", "pull", primary.addr .. "/hcs/app:v1", "--json" }, e))
      assert.equal(2, #img.Layers) -- the mirror's image
      assert.equal("mirrored\n", hcs_ok({ "--root", root, "run", "--rm", primary.addr .. "/hcs/app:v1", "--",
        "cat", "/etc/which" }, e))
      -- named and recorded as the reference the user gave
      assert.matches("^" .. primary.addr:gsub("%p", "%%%0") .. "/hcs/app@sha256:", img.RepoDigests[1])
      local other = json.decode(hcs_ok({ "--root", root, "image", "pull", primary.addr .. "/hcs/only-primary:v1",
        "--json" }, e))
      assert.equal(1, #other.Layers)
      -- without the file: the primary's own image
      local own = json.decode(hcs_ok({ "--root", T .. "/mroot2", "image", "pull", primary.addr .. "/hcs/app:v1",
        "--json" }, { CONTAINERS_REGISTRIES_CONF = T .. "/none.conf" }))
      assert.equal(1, #own.Layers)
    end)

    it("resolves an unqualified name through unqualified-search-registries, in order", function()
      local e = env(('unqualified-search-registries = ["%s", "%s"]\n'):format(mirror.addr, primary.addr))
      local root = T .. "/sroot"
      -- the first registry lacks it, the second has it: named after the second
      local img = json.decode(hcs_ok({ "--root", root, "image", "pull", "hcs/only-primary:v1", "--json" }, e))
      assert.equal(1, #img.Layers)
      assert.equal(primary.addr .. "/hcs/only-primary:v1", img.Tags[1])
      -- both have it: the first wins
      img = json.decode(hcs_ok({ "--root", root, "image", "pull", "hcs/app:v1", "--json" }, e))
      assert.equal(2, #img.Layers)
      local err = hcs_fails({ "--root", root, "image", "pull", "hcs/nowhere:v1" }, e)
      assert.matches(("no unqualified-search registry (%s, %s in `%s`) has `hcs/nowhere`"):format(mirror.addr,
        primary.addr, conf), err, 1, true)
    end)

    it("refuses a blocked registry clearly, for pull and push, by prefix", function()
      local e = env(([=[
[[registry]]
prefix = "%s/hcs"
location = "%s"
blocked = true
]=]):format(primary.addr, primary.addr))
      local root = T .. "/broot"
      local want = ("registry `%s` is blocked (prefix `%s/hcs` in `%s`)"):format(primary.addr, primary.addr, conf)
      local err = hcs_fails({ "--root", root, "image", "pull", primary.addr .. "/hcs/app:v1" }, e)
      assert.matches(want, err, 1, true)
      assert.same({}, json.decode(hcs_ok({ "--root", root, "image", "ls", "--json" }, e)))
      hcs_ok({ "--root", root, "image", "pull", mirror.addr .. "/hcs/app:v1" }, e)
      err = hcs_fails({ "--root", root, "image", "push", mirror.addr .. "/hcs/app:v1", primary.addr .. "/hcs/x:1" }, e)
      assert.matches(want, err, 1, true)
      -- outside the prefix: allowed
      hcs_ok({ "--root", root, "image", "push", mirror.addr .. "/hcs/app:v1", primary.addr .. "/other/x:1" }, e)
    end)

    it("trusts an insecure registry without verifying its certificate", function()
      local tls = ru.make_tls(su.tmpdir())
      local reg = ru.start(T .. "/insecure", { tls = tls })
      finally(function()
        reg.stop()
        su.rmtree(tls.ca:match("^(.*)/ca%.crt$"))
      end)
      sh(("skopeo copy --dest-tls-verify=false oci:%s/one:v1 docker://%s/hcs/i:v1 2>&1"):format(T, reg.addr))
      local ref = reg.addr .. "/hcs/i:v1"
      local err = hcs_fails({ "--root", T .. "/iroot", "image", "pull", ref },
        { CONTAINERS_REGISTRIES_CONF = T .. "/none.conf" })
      assert.matches("certificate", err:lower(), 1, true)
      local e = env(('[[registry]]\nlocation = "%s"\ninsecure = true\n'):format(reg.addr))
      local img = json.decode(hcs_ok({ "--root", T .. "/iroot", "image", "pull", ref, "--json" }, e))
      assert.equal(1, #img.Layers)
    end)

    it("names the file and line of what it cannot read", function()
      local e = env('[[registry]]\nlocation = "x"\ninsecure = maybe\n')
      local err = hcs_fails({ "--root", T .. "/eroot", "image", "pull", primary.addr .. "/hcs/app:v1" }, e)
      assert.matches(("parse `%s` line 3: expected true or false"):format(conf), err, 1, true)
      e = env('[registries.search]\nregistries = ["docker.io"]\n')
      err = hcs_fails({ "--root", T .. "/eroot", "image", "pull", primary.addr .. "/hcs/app:v1" }, e)
      assert.matches(("parse `%s` line 1: the version 1 format"):format(conf), err, 1, true)
    end)
  end)
end)
