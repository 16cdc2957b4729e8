-- hcs.registry against real registries on loopback: Debian's docker-registry
-- (distribution 2.8) plain, with TLS and htpasswd, and with bearer tokens
-- from a token server in Python; skopeo and podman as the peers.
local su = require "spec_util"
local ru = require "registry_util"
local hcs = require "hcs"
local json = hcs.json

local sh = ru.sh

local function hcs_ok(argv, env, stdin)
  local ok, code, out, err = su.hcs(argv, env, stdin)
  assert(ok, ("hcs %s failed (%s):\n%s%s"):format(table.concat(argv, " "), tostring(code), out, err))
  return out
end

local function hcs_fails(argv, env, stdin)
  local ok, code, out, err = su.hcs(argv, env, stdin)
  assert(not ok, ("hcs %s succeeded:\n%s"):format(table.concat(argv, " "), out))
  assert(code == 1, ("hcs %s: exit status %s, want 1:\n%s"):format(table.concat(argv, " "), tostring(code), err))
  return err
end

-- Nothing of an image or a layer in a root: no records, no temporary or journal files, no kept blob.
local function nothing_left(root)
  assert.same({}, json.decode(hcs_ok({ "--root", root, "image", "ls", "--json" })))
  assert.same({}, json.decode(hcs_ok({ "--root", root, "layer", "ls", "--json" })))
  assert.equal("", sh(("ls -A %s/layers/.tmp 2>/dev/null | grep -v '^\\.lock$' || true; "
    .. "ls -A %s/images | grep -v '^\\.lock$' | grep -v '^\\.leases$' | grep -v '^blobs$' || true; "
    .. "ls -A %s/images/.leases 2>/dev/null || true; find %s/images/blobs -type f 2>/dev/null || true")
    :format(root, root, root, root)))
end

local function layer_ids(root)
  local ids = {}
  for _, l in ipairs(json.decode(hcs_ok({ "--root", root, "layer", "ls", "--json" }))) do ids[#ids + 1] = l.Id end
  table.sort(ids)
  return ids
end

describe("hcs.registry #root", function()
  local T, base, l2, l3
  local plain -- the plain registry shared by the first group

  setup(function()
    T = su.tmpdir()
    base = T .. "/busybox.tar.gz"
    sh(("%s/scripts/make-base-image --tar-only %s"):format(su.source_dir, base))
    sh(("mkdir -p %s/l2/etc %s/l3/etc && echo two > %s/l2/etc/layer2 && echo keep > %s/l2/etc/keep && "
      .. "echo three > %s/l3/etc/layer3 && : > %s/l3/etc/.wh.layer2"):format(T, T, T, T, T, T))
    l2 = ru.tar(T .. "/l2", T .. "/l2.tar.gz")
    l3 = ru.tar(T .. "/l3", T .. "/l3.tar.gz")
    plain = ru.start(T .. "/plain")
  end)

  teardown(function()
    if plain then plain.stop() end
    su.rmtree(T)
  end)

  describe("a plain registry", function()
    local ref, top
    setup(function()
      top = ru.layout(T .. "/layout", { base, l2, l3 }, "v1")
      ref = plain.addr .. "/hcs/test:v1"
      ru.copy_in(T .. "/layout", "v1", ref)
    end)

    it("runs an image skopeo copied in (pulled because it is missing), with its RepoDigests", function()
      local root = T .. "/run"
      local out = hcs_ok({ "--root", root, "run", "--rm", ref, "--", "sh", "-c",
        "cat /etc/layer3 /etc/keep; test -e /etc/layer2 || echo whited-out" })
      assert.equal("three\nkeep\nwhited-out\n", out)
      local img = json.decode(hcs_ok({ "--root", root, "image", "inspect", ref }))
      assert.equal(3, #img.Layers)
      assert.same({ plain.addr .. "/hcs/test@" .. top }, img.RepoDigests)
      -- pulled again: every layer is already there, the image is the same
      local again = json.decode(hcs_ok({ "--root", root, "image", "pull", ref, "--json" }))
      assert.equal(img.Id, again.Id)
      local want = { table.unpack(img.Layers) }
      table.sort(want)
      assert.same(want, layer_ids(root))
    end)

    it("pushes an image skopeo and podman read back with the same digests", function()
      local root = T .. "/push"
      hcs_ok({ "--root", root, "image", "pull", ref })
      local dest = plain.addr .. "/hcs/pushed:v1"
      local digest = hcs_ok({ "--root", root, "image", "push", ref, dest }):gsub("%s+$", "")
      assert.matches("^sha256:%x+$", digest)
      local raw = sh(("skopeo inspect --raw --tls-verify=false docker://%s | sha256sum"):format(dest))
      assert.equal(digest, "sha256:" .. raw:match("^(%x+)"))
      sh(("skopeo copy --tls-verify=false docker://%s oci:%s/back:v1 2>&1"):format(dest, T))
      local index = json.decode(su.read_file(T .. "/back/index.json"))
      assert.equal(digest, index.manifests[1].digest)
      -- zstd layers: skopeo reads them, and hcs pulls them into the same image
      local zdest = plain.addr .. "/hcs/pushed:zstd"
      local zdigest = hcs_ok({ "--root", root, "image", "push", ref, zdest, "--compression", "zstd" }):gsub("%s+$", "")
      local manifest = json.decode(sh(("skopeo inspect --raw --tls-verify=false docker://%s"):format(zdest)))
      assert.equal("application/vnd.oci.image.layer.v1.tar+zstd", manifest.layers[1].mediaType)
      assert.equal(zdigest, "sha256:" .. sh(("skopeo inspect --raw --tls-verify=false docker://%s | sha256sum")
        :format(zdest)):match("^(%x+)"))
      -- (re-exported layers: a new config with their diff ids, which is the image's id)
      local zimg = json.decode(hcs_ok({ "--root", T .. "/zpull", "image", "pull", zdest, "--json" }))
      assert.equal(manifest.config.digest, "sha256:" .. zimg.Id)
      assert.equal("three\n", hcs_ok({ "--root", T .. "/zpull", "run", "--rm", zdest, "--", "cat", "/etc/layer3" }))
      if ru.have("podman") then
        local pod = ("podman --root %s/podman --runroot %s/podrun --storage-driver vfs"):format(T, T)
        sh(("%s pull -q --tls-verify=false docker://%s"):format(pod, dest))
        local pd = sh(("%s image inspect --format '{{.Digest}}' %s"):format(pod, dest)):gsub("%s+$", "")
        assert.equal(digest, pd)
        sh(("%s rmi -a -f >/dev/null"):format(pod))
      end
    end)

    it("lists repositories and tags (find), by substring and glob", function()
      local list = json.decode(hcs_ok({ "image", "find", plain.addr .. "/test", "--json" }))
      assert.equal(1, #list)
      assert.equal("hcs/test", list[1].Name)
      assert.same({ "v1" }, list[1].Tags)
      local all = json.decode(hcs_ok({ "image", "find", plain.addr .. "/hcs/*", "--json" }))
      assert.truthy(#all >= 1)
      assert.same({}, json.decode(hcs_ok({ "image", "find", plain.addr .. "/nomatch*", "--json" })))
    end)

    it("saves an image from the registry to an OCI archive, installed later by import", function()
      local root = T .. "/save"
      local archive = T .. "/saved.tar"
      hcs_ok({ "--root", root, "image", "save", "--from-registry", ref, "-o", archive })
      assert.same({}, json.decode(hcs_ok({ "--root", root, "image", "ls", "--json" })))
      local imported = json.decode(hcs_ok({ "--root", root, "image", "import", archive, "--json" }))
      assert.equal(1, #imported)
      assert.equal(3, #imported[1].Layers)
      -- skopeo reads the archive too
      sh(("skopeo inspect oci-archive:%s >/dev/null"):format(archive))
    end)

    it("picks the platform from an index and lists the platforms when none matches", function()
      if not sh("uname -m"):match("x86_64") then pending("the platforms below assume an amd64 host") return end
      local top2 = ru.layout(T .. "/multi", { base }, "m", { "linux/amd64", "linux/arm64" })
      local mref = plain.addr .. "/hcs/multi:m"
      ru.copy_in(T .. "/multi", "m", mref)
      local root = T .. "/multi-root"
      local img = json.decode(hcs_ok({ "--root", root, "image", "pull", mref, "--json" }))
      assert.equal("amd64", json.decode(hcs_ok({ "--root", root, "image", "inspect", img.Id })).Config.architecture)
      assert.same({ plain.addr .. "/hcs/multi@" .. top2 }, img.RepoDigests)
      local arm = json.decode(hcs_ok({ "--root", root, "image", "pull", mref, "--platform", "linux/arm64",
        "--tag", "arm", "--json" }))
      assert.not_equal(img.Id, arm.Id)
      assert.equal("arm64", json.decode(hcs_ok({ "--root", root, "image", "inspect", arm.Id })).Config.architecture)
      local err = hcs_fails({ "--root", root, "image", "pull", mref, "--platform", "linux/s390x" })
      assert.matches("no image for platform linux/s390x; available: linux/amd64, linux/arm64", err, 1, true)
    end)

    it("detects a corrupted blob, names it, and installs nothing", function()
      sh(("mkdir -p %s/big && head -c 24000000 /dev/urandom > %s/big/data"):format(T, T))
      local big = ru.tar(T .. "/big", T .. "/big.tar.gz")
      ru.layout(T .. "/corrupt", { base, big }, "c")
      local cref = plain.addr .. "/hcs/corrupt:c"
      ru.copy_in(T .. "/corrupt", "c", cref)
      local hex = sh("sha256sum " .. big):match("^(%x+)")
      local data = ("%s/docker/registry/v2/blobs/sha256/%s/%s/data"):format(plain.storage, hex:sub(1, 2), hex)
      -- flip the gzip header's time stamp: the content still inflates to the
      -- same tar (same diff id), only the blob's digest tells
      sh(("printf 'XXXX' | dd of=%s bs=1 seek=4 conv=notrunc 2>/dev/null"):format(data))
      local root = T .. "/corrupt-root"
      local err = hcs_fails({ "--root", root, "image", "pull", cref })
      assert.matches("layer 2 (`sha256:" .. hex .. "`)", err, 1, true)
      assert.matches("the blob is corrupt", err, 1, true)
      nothing_left(root)
      -- the first deflate block made invalid (reserved block type): the
      -- importer fails at once, the download stops (no SIGPIPE), the layer is named
      sh(("printf '\\377' | dd of=%s bs=1 seek=10 conv=notrunc 2>/dev/null"):format(data))
      err = hcs_fails({ "--root", root, "image", "pull", cref })
      assert.matches("layer 2 (`sha256:" .. hex .. "`)", err, 1, true)
      nothing_left(root)
    end)

    it("is killed -9 in the middle of a pull, leaves nothing, and a rerun completes", function()
      sh(("mkdir -p %s/k1 %s/k2 && head -c 6000000 /dev/urandom > %s/k1/a && head -c 6000000 /dev/urandom > %s/k2/b")
        :format(T, T, T, T))
      ru.layout(T .. "/kill", { base, ru.tar(T .. "/k1", T .. "/k1.tar", true), ru.tar(T .. "/k2", T .. "/k2.tar", true) },
        "k")
      local kref = plain.addr .. "/hcs/kill:k"
      ru.copy_in(T .. "/kill", "k", kref)
      local root = T .. "/kill-root"
      local function kill_and_check(pid)
        sh("kill -9 " .. pid)
        ru.wait_for(function() return not ru.alive(pid) end, 100, "the pull to die")
        -- the next store open collects what the dead pull's lease names
        nothing_left(root)
      end
      -- 1. while the layers download and extract (none committed: the
      -- pull's one syncfs comes when all are extracted)
      local pid = tonumber(sh(("HCS_REGISTRY_MAX_RATE=1000000 setsid %s --root %s image pull -q %s >%s/kill.out 2>&1 "
        .. "</dev/null & echo $!"):format(su.hcs_bin, root, kref, T)))
      ru.wait_for(function()
        return su.run(("ls %s/layers/.tmp 2>/dev/null | grep -q '^import-'"):format(root)) and
          tonumber(sh(("du -sk %s/layers/.tmp | cut -f1"):format(root))) > 1000
      end, 600, "the pull to be under way")
      kill_and_check(pid)
      -- 2. once the first layer committed and the others wait to commit
      -- (extracted and synced): stopped there, then killed
      pid = tonumber(sh(("HCS_PAUSE_AT='pull: layer committed' setsid %s --root %s image pull -q %s >%s/kill.out "
        .. "2>&1 </dev/null & echo $!"):format(su.hcs_bin, root, kref, T)))
      ru.wait_for(function()
        return sh(("cat /proc/%d/stat 2>/dev/null || true"):format(pid)):match("^%d+ %b() T") ~= nil
      end, 600, "the pull to stop after a layer committed")
      assert.is_true(#layer_ids(root) >= 1)
      kill_and_check(pid)
      local img = json.decode(hcs_ok({ "--root", root, "image", "pull", kref, "--json" }))
      assert.equal(3, #img.Layers)
      local want = { table.unpack(img.Layers) }
      table.sort(want)
      assert.same(want, layer_ids(root))
      assert.equal("", sh(("ls -A %s/images/.leases || true"):format(root)))
    end)

    it("cancels a pull whose progress callback raises (as Ctrl-C does), and rolls back", function()
      sh(("mkdir -p %s/c1 && head -c 4000000 /dev/urandom > %s/c1/a"):format(T, T))
      ru.layout(T .. "/cancel", { base, ru.tar(T .. "/c1", T .. "/c1.tar", true) }, "x")
      local xref = plain.addr .. "/hcs/cancel:x"
      ru.copy_in(T .. "/cancel", "x", xref)
      local root = T .. "/cancel-root"
      local store = assert(hcs.image.open(root))
      local seen = false
      local img, err, code = hcs.registry.pull(xref, { store = store, max_rate = 1000000, progress = function(layers)
        for _, l in ipairs(layers) do
          if l.state == "transferring" and l.done > 0 then
            seen = true
            error("interrupted!")
          end
        end
      end })
      store:close()
      assert.is_true(seen)
      assert.is_nil(img)
      assert.matches("cancelled", err, 1, true)
      assert.equal(125, code) -- ECANCELED
      nothing_left(root)
    end)

    it("resumes a blob download cut short with a Range request", function()
      sh(("mkdir -p %s/r1 && head -c 5000000 /dev/urandom > %s/r1/a"):format(T, T))
      local rtar = ru.tar(T .. "/r1", T .. "/r1.tar", true)
      ru.layout(T .. "/resume", { rtar }, "r")
      ru.copy_in(T .. "/resume", "r", plain.addr .. "/hcs/resume:r")
      local portfile, log = T .. "/proxy.port", T .. "/proxy.log"
      local pid = tonumber(sh(("setsid python3 %s/tests/tools/cut_proxy.py %s %d 2000000 %s >/dev/null 2>&1 "
        .. "</dev/null & echo $!"):format(su.source_dir, portfile, plain.port, log)))
      finally(function()
        su.run("kill " .. pid)
        ru.wait_for(function() return not ru.alive(pid) end, 100, "the proxy to stop")
      end)
      ru.wait_for(function() return su.read_file(portfile) ~= nil end, 100, "the proxy")
      local via = "127.0.0.1:" .. su.read_file(portfile) .. "/hcs/resume:r"
      local root = T .. "/resume-root"
      local img = json.decode(hcs_ok({ "--root", root, "image", "pull", via, "--json" }))
      assert.equal(1, #img.Layers)
      local text = su.read_file(log)
      assert.matches("cut after 2000000 bytes", text, 1, true)
      -- the second request asks for the rest (the cut fell after the headers)
      assert.matches("/blobs/sha256:%x+ HTTP/1%.1 Range: bytes=%d+%-", text)
      assert.equal(sh("sha256sum " .. rtar):match("^(%x+)"),
        json.decode(hcs_ok({ "--root", root, "layer", "inspect", img.Layers[1] })).DiffID:sub(8))
    end)

    it("pulls for a plan by policy: missing pulls, never does not", function()
      local root = T .. "/plan-root"
      local ok, err = pcall(hcs.workflow.plan, { image = ref, name = "p0", root = root, pull = "never" })
      assert.is_false(ok)
      assert.matches("No such file", tostring(err))
      local plan = hcs.workflow.plan { image = ref, name = "p1", root = root }
      assert.equal(ref, plan.Image)
      assert.equal(json.decode(hcs_ok({ "--root", root, "image", "inspect", ref })).Id, plan.ImageId)
      assert.has_error(function() hcs.workflow.plan { image = ref, name = "p2", root = root, pull = "sometimes" } end)
      hcs.workflow.plans.remove("p1", root)
    end)
  end)

  describe("a registry without a catalog", function()
    for _, status in ipairs({ 404, 401 }) do
      it(("says so clearly when the catalog answers %d, and still lists a named repository's tags"):format(status),
        function()
          local portfile = ("%s/nocat-%d.port"):format(T, status)
          local pid = tonumber(sh(("setsid python3 %s/tests/tools/no_catalog.py %s %d >/dev/null 2>&1 </dev/null & "
            .. "echo $!"):format(su.source_dir, portfile, status)))
          finally(function()
            su.run("kill " .. pid)
            ru.wait_for(function() return not ru.alive(pid) end, 100, "the server to stop")
          end)
          ru.wait_for(function() return su.read_file(portfile) ~= nil end, 100, "the server")
          local addr = "127.0.0.1:" .. su.read_file(portfile)
          local err = hcs_fails({ "image", "find", addr .. "/hcs/*" })
          local want = status == 404 and ("registry `%s` does not offer a catalog (HTTP status 404)"):format(addr)
            or ("registry `%s` does not show its catalog without credentials (HTTP status 401)"):format(addr)
          assert.matches(want, err, 1, true)
          assert.matches(("name a repository (hcs image find %s/REPOSITORY lists its tags)"):format(addr), err, 1, true)
          assert.not_matches("traceback", err)
          local list = json.decode(hcs_ok({ "image", "find", addr .. "/hcs/test", "--json" }))
          assert.same({ { Name = "hcs/test", Registry = addr, Tags = { "v1", "v2" } } }, list)
          -- a repository the registry does not know: the catalog's message stands
          err = hcs_fails({ "image", "find", addr .. "/hcs/other" })
          assert.matches(want, err, 1, true)
        end)
    end
  end)

  describe("a registry that stops in the middle of a download", function()
    it("fails with a timeout naming the registry and leaves nothing", function()
      local reg = ru.start(T .. "/stopping")
      finally(function() reg.stop() end)
      -- 32 MB at 1 MB/s: the registry is stopped long before the pull could
      -- end, however late the wait below sees the download start (with 8 MB
      -- a slow ASan run once saw the pull finish first).
      sh(("mkdir -p %s/slow && head -c 32000000 /dev/urandom > %s/slow/data"):format(T, T))
      ru.layout(T .. "/slow-layout", { ru.tar(T .. "/slow", T .. "/slow.tar", true) }, "s")
      local sref = reg.addr .. "/hcs/slow:s"
      ru.copy_in(T .. "/slow-layout", "s", sref)
      local root = T .. "/slow-root"
      sh(("(HCS_REGISTRY_MAX_RATE=1000000 %s --root %s image pull -q --timeout 2 %s >%s/slow.out 2>%s/slow.err "
        .. "</dev/null; echo $? > %s/slow.rc) >/dev/null 2>&1 &"):format(su.hcs_bin, root, sref, T, T, T))
      ru.wait_for(function()
        return su.run(("ls %s/layers/.tmp 2>/dev/null | grep -q '^import-'"):format(root)) and
          tonumber(sh(("du -sk %s/layers/.tmp | cut -f1"):format(root))) > 500
      end, 600, "the download to be under way")
      sh("kill -STOP " .. reg.pid)
      ru.wait_for(function() return su.read_file(T .. "/slow.rc") ~= nil end, 600, "the pull to fail")
      assert.equal("1", su.read_file(T .. "/slow.rc"):gsub("%s+$", ""))
      local err = su.read_file(T .. "/slow.err")
      assert.matches("timed out", err, 1, true)
      assert.matches("registry `" .. reg.addr .. "`", err, 1, true)
      nothing_left(root)
    end)
  end)

  describe("TLS with a generated CA and htpasswd", function()
    local reg, tls, certs, ref
    setup(function()
      tls = ru.make_tls(su.tmpdir())
      reg = ru.start(T .. "/tls", { tls = tls, htpasswd = { user = "hcs", password = "s3cret" } })
      certs = T .. "/certs"
      sh(("mkdir -p %s/%s && cp %s %s/%s/ca.crt"):format(certs, reg.addr, tls.ca, certs, reg.addr))
      ru.layout(T .. "/tls-layout", { base }, "t")
      ref = reg.addr .. "/hcs/secure:t"
      ru.copy_in(T .. "/tls-layout", "t", ref, "hcs:s3cret")
    end)
    teardown(function()
      if reg then reg.stop() end
      if tls then su.rmtree(tls.ca:match("^(.*)/ca%.crt$")) end
    end)

    it("answers wrong credentials with unauthorized naming the registry", function()
      local root = T .. "/tls-root"
      local err = hcs_fails({ "--root", root, "image", "pull", ref, "--cert-dir", certs, "--creds", "hcs:wrong" })
      assert.matches("unauthorized: registry `" .. reg.addr .. "` refused the credentials", err, 1, true)
      err = hcs_fails({ "login", reg.addr, "-u", "hcs", "--password-stdin", "--cert-dir", certs, "--authfile",
        T .. "/auth.json" }, nil, "wrong\n")
      assert.matches("unauthorized", err, 1, true)
      assert.matches(reg.addr, err, 1, true)
      assert.is_nil(su.read_file(T .. "/auth.json"))
      nothing_left(root)
    end)

    it("logs in (auth file 0600), pulls over verified TLS, and logs out", function()
      local auth = T .. "/auth.json"
      hcs_ok({ "login", reg.addr, "-u", "hcs", "--password-stdin", "--cert-dir", certs, "--authfile", auth }, nil,
        "s3cret\n")
      assert.equal("600", sh("stat -c %a " .. auth):gsub("%s+$", ""))
      local doc = json.decode(su.read_file(auth))
      assert.equal("aGNzOnMzY3JldA==", doc.auths[reg.addr].auth) -- base64("hcs:s3cret")
      local root = T .. "/tls-root2"
      local img = json.decode(hcs_ok({ "--root", root, "image", "pull", ref, "--cert-dir", certs, "--authfile", auth,
        "--json" }))
      assert.equal(1, #img.Layers)
      hcs_ok({ "logout", reg.addr, "--authfile", auth })
      assert.is_nil(json.decode(su.read_file(auth)).auths[reg.addr])
      local err = hcs_fails({ "--root", root, "image", "pull", ref, "--cert-dir", certs, "--authfile", auth })
      assert.matches("unauthorized", err, 1, true)
      err = hcs_fails({ "logout", reg.addr, "--authfile", auth })
      assert.matches("not logged in", err, 1, true)
    end)

    it("refuses a certificate it cannot verify, and does not fall back to HTTP", function()
      local root = T .. "/tls-root3"
      local err = hcs_fails({ "--root", root, "image", "pull", ref, "--creds", "hcs:s3cret" })
      assert.matches("reach registry `" .. reg.addr .. "`", err, 1, true)
      assert.matches("certificate", err:lower(), 1, true)
    end)
  end)

  describe("bearer tokens", function()
    it("pulls with a token for good credentials, and says unauthorized for bad ones", function()
      local reg = ru.start(T .. "/token", { token = { user = "tok", password = "en" } })
      finally(function() reg.stop() end)
      ru.layout(T .. "/tok-layout", { base, l2 }, "b")
      local ref = reg.addr .. "/hcs/bearer:b"
      ru.copy_in(T .. "/tok-layout", "b", ref, "tok:en")
      local root = T .. "/tok-root"
      local img = json.decode(hcs_ok({ "--root", root, "image", "pull", ref, "--creds", "tok:en", "--json" }))
      assert.equal(2, #img.Layers)
      local pushed = hcs_ok({ "--root", root, "image", "push", ref, reg.addr .. "/hcs/bearer2:b", "--creds", "tok:en" })
      assert.matches("^sha256:%x+", pushed)
      local err = hcs_fails({ "--root", T .. "/tok-root2", "image", "pull", ref, "--creds", "tok:nope" })
      assert.matches("unauthorized: registry `" .. reg.addr .. "`", err, 1, true)
      err = hcs_fails({ "--root", T .. "/tok-root2", "image", "pull", ref })
      assert.matches("unauthorized", err, 1, true)
    end)
  end)
end)
