--- hcs.registry: images from and to OCI registries (Install-ContainerImage,
-- Save-ContainerImage -Name, Find-ContainerImage, and push).
--   hcs.registry.pull(ref, opts) -> image summary     hcs.registry.push(image, ref, opts) -> digest
--   hcs.registry.download(ref, path, opts)           hcs.registry.find(pattern, opts) -> {{Name, Tags}}
--   hcs.registry.inspect(ref, opts)                  hcs.registry.login(registry, user, password, opts)
--   hcs.registry.logout(registry, opts)              hcs.registry.ensure(store, ref, policy, opts)
-- opts: root (the state root) or store (an open image store), username, password, auth_file,
-- tls_verify, certs_dir, registries_conf, platform, parallel, timeout, max_rate, compression,
-- name, tag, progress.  Failures return nil, message, errno; misuse raises.
local core = require("hcs.core").registry
local image = require "hcs.image"

local M = {}

--- Pull policies for workflows and `hcs run`.
M.policies = { missing = true, always = true, never = true }

--- Does the reference name a registry host ("host.domain/...", "host:port/...", "localhost/...")?
function M.names_registry(ref)
  local first = ref:match("^([^/]+)/")
  return first ~= nil and (first:find("[.:]") ~= nil or first == "localhost")
end

local function with_store(opts, fn)
  opts = opts or {}
  if opts.store then return fn(opts.store) end
  return image.with_store(opts.root, fn)
end

local function core_opts(opts)
  if not opts then return nil end
  local o = {}
  for k, v in pairs(opts) do
    if k ~= "root" and k ~= "store" then o[k] = v end
  end
  return o
end

function M.pull(ref, opts)
  return with_store(opts, function(s) return core.pull(s, ref, core_opts(opts)) end)
end

function M.push(img, ref, opts)
  return with_store(opts, function(s) return core.push(s, img, ref, core_opts(opts)) end)
end

function M.download(ref, path, opts) return core.download(ref, path, core_opts(opts)) end
function M.find(pattern, opts) return core.find(pattern, core_opts(opts)) end
function M.inspect(ref, opts) return core.inspect(ref, core_opts(opts)) end
function M.login(registry, user, password, opts) return core.login(registry, user, password, core_opts(opts)) end
function M.logout(registry, opts) return core.logout(registry, core_opts(opts)) end

--- The image `ref` names, as store:inspect() shows it, pulled by policy:
-- "missing" (default) pulls when the store lacks it and the reference names
-- a registry (a bare name like "busybox" is a local image), "always" pulls
-- every time, "never" only looks in the store.
function M.ensure(store, ref, policy, opts)
  policy = policy or "missing"
  if not M.policies[policy] then
    error(("pull policy %q: expected missing, always or never"):format(tostring(policy)), 2)
  end
  if policy ~= "always" then
    local info, err, code = store:inspect(ref)
    if info or policy == "never" or not M.names_registry(ref) then return info, err, code end
  end
  local img, err, code = core.pull(store, ref, core_opts(opts))
  if not img then return nil, err, code end
  return store:inspect(img.Id)
end

return M
