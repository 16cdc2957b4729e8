--- Planned systems (the seed's Msvm_PlannedVirtualSystem): a persisted,
-- editable document describing a container before it exists.
--
-- A plan lives at <root>/plans/<Name>.json and looks like:
--   { Kind = "PlannedSystem", Name, Image, ImageId, HostName,
--     Processor = {Count, Maximum, Weight}, Memory = {SizeInMB},
--     Network = {Name, PortMappings = {{Protocol, InternalPort, ExternalPort}}} | nil,
--     MappedDirectories = {{HostPath, ContainerPath, ReadOnly}},
--     Environment = {K = V}, Command = {...}, WorkingDirectory, User,
--     State = "Planned" | "Realized", Realized = {SystemId, ScratchLayer, MountPath, Endpoint, Namespace} }
local core = require "hcs.core"
local json = core.json

local M = {}

M.SCHEMA = 1

--- The hcs state root in force (explicit, $HCS_ROOT, or the default).
function M.root(root)
  return root or os.getenv("HCS_ROOT") or "/var/lib/hcs"
end

local function plans_dir(root) return M.root(root) .. "/plans" end

function M.path(name, root) return plans_dir(root) .. "/" .. name .. ".json" end

--- Names are file names and system ids: the same rules as every hcs id.
function M.check_name(name)
  if type(name) ~= "string" or not name:match("^[A-Za-z0-9_][A-Za-z0-9_.-]*$") or #name > 64 then
    return nil, ("invalid system name %q: use 1..64 characters of [A-Za-z0-9_.-], not starting with . or -")
      :format(tostring(name))
  end
  return true
end

--- Save a plan atomically.
function M.save(plan, root)
  local ok, err, code = core.fs.mkdir_p(plans_dir(root), 448) -- 0700
  if not ok then return nil, err, code end
  local doc = {}
  for k, v in pairs(plan) do
    if type(k) ~= "string" or k:sub(1, 1) ~= "_" then doc[k] = v end -- _fields are in-memory only
  end
  return core.fs.write_atomic(M.path(plan.Name, root), json.encode(doc, { pretty = true }) .. "\n", 384) -- 0600
end

--- Load a plan by name; nil, message when there is none.
function M.load(name, root)
  local ok, err = M.check_name(name)
  if not ok then return nil, err end
  local f, ferr, code = io.open(M.path(name, root), "r")
  if not f then
    if code == 2 then return nil, ("no planned system named %q"):format(name), code end
    return nil, ferr, code
  end
  local text = f:read("a")
  f:close()
  local plan, perr = json.decode(text)
  if not plan then return nil, ("planned system %q: %s"):format(name, perr) end
  return plan
end

--- Remove a plan's file (not what it realized).
function M.remove(name, root)
  local ok, err, code = os.remove(M.path(name, root))
  if not ok and code ~= 2 then return nil, err, code end
  return true
end

--- Names of all plans, sorted.
function M.list(root)
  local lfs = require "lfs"
  local names = {}
  local dir = plans_dir(root)
  if lfs.attributes(dir, "mode") ~= "directory" then return names end
  for f in lfs.dir(dir) do
    local n = f:match("^(.+)%.json$")
    if n then names[#names + 1] = n end
  end
  table.sort(names)
  return names
end

return M
