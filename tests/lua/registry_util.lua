--- Registries for the specs: Debian's docker-registry (distribution 2.8)
-- started on 127.0.0.1 with a free port and a config in a temporary
-- directory (plain, TLS with a generated CA, htpasswd, or bearer tokens from
-- tests/tools/token_server.py), OCI layouts built from tar files for skopeo
-- to copy in.  Every process started here is stopped by stop().
local su = require "spec_util"

local M = {}

local function sh(cmd)
  local ok, code, out, err = su.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end
M.sh = sh

function M.have(tool) return (su.run("command -v " .. tool .. " >/dev/null")) end

function M.free_port()
  return tonumber(sh([[python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]))
end

--- Wait until cond() is true (polling, at most `tries` times 0.1 s apart).
function M.wait_for(cond, tries, what)
  for _ = 1, tries or 300 do
    if cond() then return true end
    su.run("sleep 0.1")
  end
  error("gave up waiting for " .. (what or "a condition"), 2)
end

local function alive(pid) return (su.run("kill -0 " .. pid .. " 2>/dev/null")) end
M.alive = alive

--- Start a background process; returns its pid.
local function spawn(cmd, log)
  return tonumber(sh(("setsid %s >%s 2>&1 </dev/null & echo $!"):format(cmd, su.quote(log))))
end

--- A CA and a server certificate for 127.0.0.1 in dir (ca.crt, server.crt, server.key).
function M.make_tls(dir)
  sh(("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
    .. "-out ca.crt -days 2 -subj /CN=hcs-test-ca 2>/dev/null && openssl req -newkey ec -pkeyopt "
    .. "ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null && "
    .. "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' >ext && "
    .. "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 "
    .. "-extfile ext 2>/dev/null"):format(su.quote(dir)))
  return { ca = dir .. "/ca.crt", cert = dir .. "/server.crt", key = dir .. "/server.key" }
end

--- A client certificate signed by the CA of make_tls(dir): dir/client.cert and
-- dir/client.key (podman's certs.d names).
function M.make_client_cert(dir)
  sh(("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key "
    .. "-out client.csr -subj /CN=hcs-test-client 2>/dev/null && "
    .. "printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' >client.ext && "
    .. "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.cert -days 2 "
    .. "-extfile client.ext 2>/dev/null"):format(su.quote(dir)))
  return { cert = dir .. "/client.cert", key = dir .. "/client.key" }
end

--- Start a registry.  opts: tls (from make_tls), htpasswd = {user, password},
-- token = {user, password}, client = {cert, key} (with tls: the registry
-- requires a client certificate signed by the tls CA, http.tls.clientcas;
-- this one is used to check it is up), port (reuse one).
-- Returns {addr, port, dir, storage, pid, stop = fn, ...}.
function M.start(dir, opts)
  opts = opts or {}
  sh("mkdir -p " .. su.quote(dir))
  local r = { dir = dir, storage = dir .. "/storage", pids = {} }
  r.port = opts.port or M.free_port()
  r.addr = "127.0.0.1:" .. r.port
  local cfg = {
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    "    rootdirectory: " .. r.storage,
    "http:",
    "  addr: " .. r.addr,
  }
  if opts.tls then
    cfg[#cfg + 1] = "  tls:"
    cfg[#cfg + 1] = "    certificate: " .. opts.tls.cert
    cfg[#cfg + 1] = "    key: " .. opts.tls.key
    if opts.client then
      cfg[#cfg + 1] = "    clientcas:"
      cfg[#cfg + 1] = "      - " .. opts.tls.ca
    end
  end
  if opts.htpasswd then
    sh(("htpasswd -Bbn %s %s > %s/htpasswd"):format(su.quote(opts.htpasswd.user), su.quote(opts.htpasswd.password),
      su.quote(dir)))
    cfg[#cfg + 1] = "auth:"
    cfg[#cfg + 1] = "  htpasswd:"
    cfg[#cfg + 1] = "    realm: hcs-test"
    cfg[#cfg + 1] = "    path: " .. dir .. "/htpasswd"
  end
  if opts.token then
    -- The token signing key, its certificate (the registry's root bundle) and libtrust key id.
    sh(("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout token.key -out token.crt -days 2 "
      .. "-subj /CN=hcs-test-token 2>/dev/null"):format(su.quote(dir)))
    local kid = sh(("openssl x509 -in %s/token.crt -pubkey -noout | openssl pkey -pubin -outform DER | python3 -c "
      .. [['import sys,hashlib,base64; d=hashlib.sha256(sys.stdin.buffer.read()).digest()[:30]; ]]
      .. [[s=base64.b32encode(d).decode(); print(":".join(s[i:i+4] for i in range(0,48,4)))']]):format(su.quote(dir)))
      :gsub("%s+$", "")
    local portfile = dir .. "/token.port"
    local pid = spawn(("python3 %s/tests/tools/token_server.py %s %s %s hcs-test-issuer %s %s"):format(
      su.source_dir, su.quote(portfile), su.quote(dir .. "/token.key"), su.quote(kid), su.quote(opts.token.user),
      su.quote(opts.token.password)), dir .. "/token.log")
    r.pids[#r.pids + 1] = pid
    M.wait_for(function() return su.read_file(portfile) ~= nil end, 100, "the token server")
    r.realm = "http://127.0.0.1:" .. su.read_file(portfile) .. "/token"
    cfg[#cfg + 1] = "auth:"
    cfg[#cfg + 1] = "  token:"
    cfg[#cfg + 1] = "    realm: " .. r.realm
    cfg[#cfg + 1] = "    service: hcs-test-registry"
    cfg[#cfg + 1] = "    issuer: hcs-test-issuer"
    cfg[#cfg + 1] = "    rootcertbundle: " .. dir .. "/token.crt"
  end
  su.write_file(dir .. "/config.yml", table.concat(cfg, "\n") .. "\n")
  r.pid = spawn("docker-registry serve " .. su.quote(dir .. "/config.yml"), dir .. "/registry.log")
  r.pids[#r.pids + 1] = r.pid
  local scheme = opts.tls and "https" or "http"
  function r.stop()
    for _, pid in ipairs(r.pids) do
      su.run(("kill -CONT %d 2>/dev/null; kill %d 2>/dev/null"):format(pid, pid))
    end
    for _, pid in ipairs(r.pids) do
      M.wait_for(function() return not alive(pid) end, 100, "process " .. pid .. " to stop")
    end
    r.pids = {}
  end
  local ok = pcall(M.wait_for, function()
    local cert = opts.client and ("--cert %s --key %s"):format(su.quote(opts.client.cert), su.quote(opts.client.key))
      or ""
    local _, _, out = su.run(("curl -sk %s -o /dev/null -w '%%{http_code}' %s://%s/v2/"):format(cert, scheme, r.addr))
    return out:match("^[1-5]%d%d$") ~= nil and out ~= "000"
  end, 100, "the registry")
  if not ok then
    local log = su.read_file(dir .. "/registry.log") or ""
    r.stop()
    error("the registry did not start: " .. log)
  end
  return r
end

local function sha256(path) return sh("sha256sum " .. su.quote(path)):match("^(%x+)") end

local function add_blob(layout, path)
  local d = sha256(path)
  sh(("cp %s %s/blobs/sha256/%s"):format(su.quote(path), layout, d))
  return "sha256:" .. d, tonumber(sh("stat -c %s " .. su.quote(path)))
end

local function add_text(layout, text)
  local tmp = layout .. "/blob.tmp"
  su.write_file(tmp, text)
  local d, n = add_blob(layout, tmp)
  os.remove(tmp)
  return d, n
end

--- An OCI layout at dir holding one image per platform over the same layer
-- tars (gzip or plain, by name); tag names it in index.json.  platforms:
-- list of "os/arch" (default {"linux/amd64"}); more than one makes an index.
function M.layout(dir, tars, tag, platforms)
  sh(("mkdir -p %s/blobs/sha256"):format(su.quote(dir)))
  su.write_file(dir .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
  local json = require("hcs").json
  local descs, diff_ids = {}, {}
  for i, tar in ipairs(tars) do
    local gz = tar:match("%.gz$") ~= nil
    local d, n = add_blob(dir, tar)
    descs[i] = { mediaType = "application/vnd.oci.image.layer.v1.tar" .. (gz and "+gzip" or ""), digest = d, size = n }
    diff_ids[i] = "sha256:" .. sh((gz and "gzip -dc %s | sha256sum" or "sha256sum < %s"):format(su.quote(tar)))
      :match("^(%x+)")
  end
  local manifests = {}
  for _, p in ipairs(platforms or { "linux/amd64" }) do
    local os_, arch = p:match("^([^/]+)/(.+)$")
    local cfg = json.encode({ architecture = arch, os = os_, config = { Cmd = { "/bin/sh" },
      Env = { "PATH=/bin" } }, rootfs = { type = "layers", diff_ids = json.array(diff_ids) } })
    local cd, cn = add_text(dir, cfg)
    local m = json.encode({ schemaVersion = 2, mediaType = "application/vnd.oci.image.manifest.v1+json",
      config = { mediaType = "application/vnd.oci.image.config.v1+json", digest = cd, size = cn },
      layers = json.array(descs) })
    local md, mn = add_text(dir, m)
    manifests[#manifests + 1] = { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = md, size = mn,
      platform = { os = os_, architecture = arch } }
  end
  local top
  if #manifests == 1 then
    top = manifests[1]
  else
    local idx = json.encode({ schemaVersion = 2, mediaType = "application/vnd.oci.image.index.v1+json",
      manifests = json.array(manifests) })
    local d, n = add_text(dir, idx)
    top = { mediaType = "application/vnd.oci.image.index.v1+json", digest = d, size = n }
  end
  top.annotations = { ["org.opencontainers.image.ref.name"] = tag }
  su.write_file(dir .. "/index.json", json.encode({ schemaVersion = 2, manifests = json.array({ top }) }))
  return top.digest, manifests
end

--- skopeo copy of a layout's tag to the registry (all platforms).
function M.copy_in(layout, tag, dest, creds)
  sh(("skopeo copy --all --dest-tls-verify=false %s oci:%s:%s docker://%s 2>&1"):format(
    creds and ("--dest-creds=" .. su.quote(creds)) or "", layout, tag, dest))
end

--- A tar (gzip unless plain) of the tree at src; returns its path.
function M.tar(src, out, plain)
  sh(("tar --numeric-owner --owner=0 --group=0 -C %s -c%sf %s ."):format(su.quote(src), plain and "" or "z",
    su.quote(out)))
  return out
end

return M
