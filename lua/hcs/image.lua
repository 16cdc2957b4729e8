--- hcs.image: the image store (images = OCI config + metadata over shared layers).
-- local store <close> = hcs.image.open([root])
-- store:list(), store:inspect(ref), store:import(path, opts), store:install_os(tar, opts),
-- store:create{parent, layer, name, version, publisher, config}, store:save(refs, path, opts),
-- store:tag(ref, new), store:untag(ref), store:remove(ref, force), store:acquire/release(ref, user),
-- store:prune{dry_run} (collect layers no image uses; returns {Layers = {ids}}).
-- hcs.image.pull(ref, opts), hcs.image.push(image, ref, opts), hcs.image.find(pattern, opts): registries.
-- Failures return nil, message, errno; misuse raises.
local core = require("hcs.core").image

local M = {}

--- Open the image store under root (default $HCS_ROOT or /var/lib/hcs).
function M.open(root)
  return core.open(root)
end

--- Run fn(store) with a store opened for the call; returns fn's results.
function M.with_store(root, fn)
  local store, err, code = core.open(root)
  if not store then return nil, err, code end
  local results = table.pack(pcall(fn, store))
  store:close()
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end

--- Install-ContainerImage: pull ref from its registry into the store (see hcs.registry.pull).
function M.pull(ref, opts) return require("hcs.registry").pull(ref, opts) end

--- Push a local image to a registry reference; returns the manifest digest.
function M.push(img, ref, opts) return require("hcs.registry").push(img, ref, opts) end

--- Find-ContainerImage: repositories and tags of a registry (see hcs.registry.find).
function M.find(pattern, opts) return require("hcs.registry").find(pattern, opts) end

--- The Get-ContainerImage view: Name, Publisher, Version, IsOSImage per image.
function M.list(root)
  return M.with_store(root, function(s) return s:list() end)
end

--- Collect the layers no image uses (see hcs_image_prune); opts.dry_run only lists them.
function M.prune(root, opts)
  return M.with_store(root, function(s) return s:prune(opts) end)
end

return M
