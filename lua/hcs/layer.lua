--- hcs.layer: the windowsfilter layer primitives on overlayfs.
--
--   local store <close> = hcs.layer.open(root)      -- root: nil = $HCS_ROOT or /var/lib/hcs
--   local l = store:import("layer.tar.gz", { parents = { parent_id }, progress = fn,
--                                            max_size = 2^40, max_file_size = "none" })
--   local r = store:export(l.Id, "out.tar.gz", { compression = "gzip", mtime = 0 })
--   store:create_scratch("c1", { l.Id }); store:activate("c1"); store:mount_path("c1")
--   store:prepare("c1", mapped); store:unprepare("c1"); store:deactivate("c1"); store:destroy("c1")
--   store:exists(id), store:inspect(id), store:list(), store:acquire(id), store:release(id)
--
-- The same verbs are module functions working on the store under
-- `hcs.layer.root` (nil: $HCS_ROOT or /var/lib/hcs):
--   hcs.layer.import(path, opts), hcs.layer.list(), ...
-- Failures return nil, message, errno; misuse raises.
local core = require("hcs.core").layer

local M = { root = nil }

--- Open the layer store under root (a handle with methods; close with :close or <close>).
-- opts: { max_size =, max_file_size = } caps on what an import may expand to
-- (bytes, or "none"; default 4 TiB per layer, 1 TiB per file), also
-- settable with store:set_limits{...} and per import.
function M.open(root, opts)
  return core.open(root, opts)
end

--- The OCI ChainID of a layer over a parent chain id (nil for a base layer).
-- Imports without an id are named by its hex.
M.chain_id = core.chain_id

local cache = {}
local function default_store()
  local key = M.root or os.getenv("HCS_ROOT") or "/var/lib/hcs"
  local s = cache[key]
  if not s then
    local err, code
    s, err, code = core.open(M.root)
    if not s then return nil, err, code end
    cache[key] = s
  end
  return s
end

local verbs = { "import", "export", "create_scratch", "commit_scratch", "capture_scratch", "activate", "deactivate",
  "mount_path", "prepare", "unprepare", "destroy", "exists", "inspect", "list", "acquire", "release" }
for _, verb in ipairs(verbs) do
  M[verb] = function(...)
    local s, err, code = default_store()
    if not s then return nil, err, code end
    return s[verb](s, ...)
  end
end

return M
