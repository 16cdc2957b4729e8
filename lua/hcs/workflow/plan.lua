--- Planned systems (the seed's Msvm_PlannedVirtualSystem): a persisted,
-- editable document describing a container before it exists.
--
-- A plan lives at <root>/plans/<Name>.json and looks like:
--   { Kind = "PlannedSystem", Name, Image, ImageId, HostName,
--     Processor = {Count, Maximum, Weight}, Memory = {SizeInMB},
--     Network = {Name, PortMappings = {{Protocol, InternalPort, ExternalPort}}} | nil,
--     MappedDirectories = {{HostPath, ContainerPath, ReadOnly}},
--     Environment = {K = V}, Command = {...}, WorkingDirectory, User,
--     State = "Planned" | "Realized", Realized = {SystemId, ScratchLayer, MountPath, Endpoint, Namespace},
--     Volatile = true (a `run --rm` plan: kept in <run root>/plans, see plans_dir) }
local core = require "hcs.core"
local json = core.json

local M = {}

M.SCHEMA = 1

--- The hcs state root in force (explicit, $HCS_ROOT, or the default).
function M.root(root)
  return root or os.getenv("HCS_ROOT") or "/var/lib/hcs"
end

-- A plan of a run removed when it stops (Volatile: `hcs run --rm`) is
-- runtime state like its container: it lives in the run root (tmpfs in
-- production) and is written without fsync; a reboot takes it with the
-- container.  Every other plan lives in the state root, durable.
local function plans_dir(root, volatile)
  if volatile then return core.fs.run_root(root) .. "/plans" end
  return M.root(root) .. "/plans"
end

function M.path(name, root, volatile) return plans_dir(root, volatile) .. "/" .. name .. ".json" end

--- Names are file names and system ids: the same rules as every hcs id.
function M.check_name(name)
  if type(name) ~= "string" or not name:match("^[A-Za-z0-9_][A-Za-z0-9_.-]*$") or #name > 64 then
    return nil, ("invalid system name %q: use 1..64 characters of [A-Za-z0-9_.-], not starting with . or -")
      :format(tostring(name))
  end
  return true
end

local function encode(plan)
  local doc = {}
  for k, v in pairs(plan) do
    if type(k) ~= "string" or k:sub(1, 1) ~= "_" then doc[k] = v end -- _fields are in-memory only
  end
  return json.encode(doc, { pretty = true }) .. "\n"
end

--- Save a plan atomically (durably unless it is Volatile).
function M.save(plan, root)
  local dir = plans_dir(root, plan.Volatile)
  local ok, err, code = core.fs.mkdir_p(dir, 448) -- 0700
  if not ok then return nil, err, code end
  return core.fs.write_atomic(M.path(plan.Name, root, plan.Volatile), encode(plan), 384, not plan.Volatile) -- 0600
end

--- Save a new plan, failing when the name is taken: the plan is written
-- under a temporary name, then hard-linked to its own (link(2) refuses an
-- existing name), so two processes planning one name cannot both win.  A
-- name is claimed in one of two directories (state root, run root): each
-- creator checks the other one after its link, so of two racing creators
-- at least one sees the other and gives up.
function M.create(plan, root)
  local dir = plans_dir(root, plan.Volatile)
  local ok, err, code = core.fs.mkdir_p(dir, 448) -- 0700
  if not ok then return nil, err, code end
  local path = M.path(plan.Name, root, plan.Volatile)
  local tmp = ("%s/.%s.new-%d"):format(dir, plan.Name, math.random(0, 0x7fffffff))
  ok, err, code = core.fs.write_atomic(tmp, encode(plan), 384, not plan.Volatile)
  if not ok then return nil, err, code end
  ok, err, code = require("lfs").link(tmp, path)
  os.remove(tmp)
  if not ok then
    if code == 17 then return nil, ("a system named %q is already planned"):format(plan.Name), code end
    return nil, ("create plan `%s`: %s"):format(path, tostring(err)), code
  end
  local f = io.open(M.path(plan.Name, root, not plan.Volatile), "r")
  if f then
    f:close()
    os.remove(path)
    return nil, ("a system named %q is already planned"):format(plan.Name), 17
  end
  return true
end

--- Hold the plan's lock (non-blocking; released by unlock() or when the
-- process dies): realize and destroy of one name never run at once.  The
-- lock file sits next to the plan (volatile: in the run root).
-- Returns a lock object, or nil, message.
function M.lock(name, root, volatile)
  local dir = plans_dir(root, volatile)
  local ok, err, code = core.fs.mkdir_p(dir, 448)
  if not ok then return nil, err, code end
  local f, ferr, fcode = io.open(("%s/.%s.lock"):format(dir, name), "w")
  if not f then return nil, ferr, fcode end
  local locked, lerr = require("lfs").lock(f, "w")
  if not locked then
    f:close()
    return nil, ("%q is being realized or destroyed by another process (%s)"):format(name, tostring(lerr))
  end
  return f
end

function M.unlock(f)
  if f then f:close() end -- closing drops the fcntl lock
end

-- The shape of a plan document.  A file read from disk (hand-edited, or
-- written by anyone who can write the plans directory) is checked here,
-- before any step uses it, so a bad one gives one message naming the field
-- instead of a Lua runtime error deep in a step (found by tests/fuzz).
local function str(v) return type(v) == "string" end
local function int(v) return math.type(v) == "integer" end
local function bool(v) return type(v) == "boolean" end
local function tbl(v) return type(v) == "table" end

local function check_fields(t, where, fields)
  for k, want in pairs(fields) do
    local v = t[k]
    if v ~= nil then
      local ok, what = want[1](v), want[2]
      if not ok then return nil, ("%s.%s: expected %s"):format(where, k, what) end
      if want[3] then
        local ok2, err = want[3](v, where .. "." .. k)
        if not ok2 then return nil, err end
      end
    end
  end
  return true
end

local function list_of(check, what, fields)
  return function(v, where)
    for i, x in ipairs(v) do
      if not check(x) then return nil, ("%s[%d]: expected %s"):format(where, i, what) end
      if fields then
        local ok, err = check_fields(x, ("%s[%d]"):format(where, i), fields)
        if not ok then return nil, err end
      end
    end
    return true
  end
end

local function map_of_strings(v, where)
  for k, x in pairs(v) do
    if not str(k) or not (str(x) or math.type(x)) then
      return nil, ("%s: expected a map of strings (at key %s)"):format(where, tostring(k))
    end
  end
  return true
end

local port_fields = { Protocol = { str, "a string" }, InternalPort = { int, "an integer" },
  ExternalPort = { int, "an integer" } }
local fields = {
  Kind = { str, "a string" }, Name = { str, "a string" }, Image = { str, "a string" }, ImageId = { str, "a string" },
  HostName = { str, "a string" }, WorkingDirectory = { str, "a string" }, User = { str, "a string" },
  State = { str, "a string" }, Volatile = { bool, "a boolean" },
  Processor = { tbl, "an object", function(v, w)
    return check_fields(v, w, { Count = { int, "an integer" }, Maximum = { int, "an integer" },
      Weight = { int, "an integer" } })
  end },
  Memory = { tbl, "an object", function(v, w) return check_fields(v, w, { SizeInMB = { int, "an integer" } }) end },
  Network = { tbl, "an object", function(v, w)
    return check_fields(v, w, { Name = { str, "a string" },
      PortMappings = { tbl, "an array", list_of(tbl, "an object", port_fields) } })
  end },
  MappedDirectories = { tbl, "an array", list_of(tbl, "an object", { HostPath = { str, "a string" },
    ContainerPath = { str, "a string" }, ReadOnly = { bool, "a boolean" } }) },
  Environment = { tbl, "an object", map_of_strings },
  Command = { tbl, "an array", list_of(str, "a string") },
  Realized = { tbl, "an object", function(v, w)
    return check_fields(v, w, { SystemId = { str, "a string" }, ScratchLayer = { str, "a string" },
      MountPath = { str, "a string" }, Endpoint = { str, "a string" }, Namespace = { str, "a string" } })
  end },
}

--- Check the shape of a plan document: true, or nil and a message naming the field.
function M.check(doc)
  if type(doc) ~= "table" or getmetatable(doc) ~= nil then return nil, "expected a JSON object" end
  if not str(doc.Name) then return nil, "Name: expected a string" end
  if not str(doc.Image) and not str(doc.ImageId) then return nil, "Image: expected a string" end
  return check_fields(doc, "plan", fields)
end

--- Load a plan by name (state root first, then run root); nil, message
-- when there is none.
function M.load(name, root)
  local ok, err = M.check_name(name)
  if not ok then return nil, err end
  local volatile = nil
  local f, ferr, code = io.open(M.path(name, root), "r")
  if not f and code == 2 then
    volatile = true
    f, ferr, code = io.open(M.path(name, root, true), "r")
  end
  if not f then
    if code == 2 then return nil, ("no planned system named %q"):format(name), code end
    return nil, ferr, code
  end
  local text = f:read("a")
  f:close()
  local plan, perr = json.decode(text)
  if not plan then return nil, ("planned system %q: %s"):format(name, perr) end
  local ok, cerr = M.check(plan)
  if not ok then return nil, ("planned system %q: %s"):format(name, cerr) end
  plan.Volatile = volatile -- where it lives decides, so a save goes back there
  return plan
end

--- Remove a plan's file (not what it realized), wherever it is.
function M.remove(name, root)
  for _, volatile in ipairs({ false, true }) do
    local ok, err, code = os.remove(M.path(name, root, volatile))
    if not ok and code ~= 2 then return nil, err, code end
    os.remove(("%s/.%s.lock"):format(plans_dir(root, volatile), name))
  end
  return true
end

--- Names of all plans (both places), sorted.
function M.list(root)
  local lfs = require "lfs"
  local names, seen = {}, {}
  for _, volatile in ipairs({ false, true }) do
    local dir = plans_dir(root, volatile)
    if lfs.attributes(dir, "mode") == "directory" then
      for f in lfs.dir(dir) do
        local n = f:match("^(.+)%.json$")
        if n and n:sub(1, 1) ~= "." and not seen[n] then
          seen[n] = true
          names[#names + 1] = n
        end
      end
    end
  end
  table.sort(names)
  return names
end

return M
