--- hcs.workflow: the container lifecycle of the seed documents as plain
-- Lua functions users can call, wrap or replace.
--
--   local wf = require("hcs").workflow
--   local plan = wf.plan{ image = "busybox", name = "web" }            -- DefinePlannedSystem
--   wf.customize(plan, { memory = 256, cpus = 1, network = "nat" })    -- rename, CPU, memory, network...
--   assert(wf.validate(plan))                                          -- all problems at once
--   local sys = wf.realize(plan)                                       -- Msvm_ComputerSystem
--   sys:run{ "sh", "-c", "echo hello > /srv/index.html" }              -- authoring
--   sys:copy("app.sh", "/app/app.sh"); sys:config{ Cmd = { "/app/app.sh" } }
--   local image = wf.capture(sys, { name = "web", version = "1.0" })   -- New-ContainerImage
--   wf.destroy(sys)
--   wf.define{ image = ..., name = ... }                               -- plan + realize
--
-- User workflows: Lua files in the directories of $HCS_WORKFLOW_PATH
-- (colon-separated), each returning { description = "...", run = function(wf, ...) end }.
-- wf.list() names them, wf.run(name, ...) runs one.  Each step that creates
-- something undoes it when a later step of the same call fails.
local plan_store = require "hcs.workflow.plan"

local M = {}

M.plans = plan_store

local function steps() return require "hcs.workflow.steps" end

--- DefinePlannedSystem: a planned system from an image.
-- spec: { image = REF (required), name = NAME (default: from the image), root = DIR,
--         pull = "missing" (default: a registry reference not in the store is pulled)
--         | "always" | "never", registry = hcs.registry options (credentials, TLS),
--         plus any customize() field }.  The plan is saved; returns the plan table.
function M.plan(spec) return steps().plan(spec) end

--- Edit a planned system: name, hostname, cpus, cpu_max, cpu_weight, memory (MB),
-- network (name or false), ports ({"8080:80/tcp", ...}), mounts ({"HOST:CONTAINER[:ro]"}),
-- env ({K = V} or {"K=V"}), command ({...} or "string"), workdir, user.
-- Returns the plan (saved).
function M.customize(plan, changes) return steps().customize(plan, changes) end

--- Check a plan against this host; returns true, or nil and a list of every problem.
function M.validate(plan) return steps().validate(plan) end

--- Create the compute system of a validated plan (scratch layer, mounts,
-- network endpoint, compute system) and start it.  Returns a system object.
function M.realize(plan, opts) return steps().realize(plan, opts) end

--- plan + realize in one call (DefineSystem).
function M.define(spec, opts)
  local eph = {}
  for k, v in pairs(spec) do eph[k] = v end
  eph.ephemeral = true -- if this process dies before it is realized, the plan goes
  -- removed when it stops: its state is runtime state (see steps.plan)
  if opts and opts.auto_remove then eph.volatile = true end
  local plan = M.plan(eph)
  local ok, sys = pcall(M.realize, plan, opts)
  if not ok then
    plan_store.remove(plan.Name, spec.root)
    error(sys, 0)
  end
  return sys
end

--- Reopen a realized system by name (from any process).
function M.open(name, root) return steps().open(name, root) end

--- Build an image from an authoring recipe (a table or a recipe file):
-- plan, realize idle, recipe.author(sys), capture, destroy.  Relative copy
-- sources are taken from the recipe's folder.  opts: { name, version, keep,
-- root }.  Returns the image; raises after rolling back on failure.
function M.build(recipe, opts) return require("hcs.workflow.build").build(recipe, opts) end

--- Load and check a recipe file: the recipe, or nil and what is wrong.
function M.build_recipe(path) return require("hcs.workflow.build").load(path) end

--- Convert a system into an image (its scratch changes become a layer).
-- opts: { name (required), version, publisher, config = {Cmd=..., Env=...},
--         stop = true: stop the system and move its changes instead of copying
--         them (much faster for big changes; destroy the system afterwards) }
function M.capture(sys, opts) return steps().capture(sys, opts) end

--- Stop and delete a realized system and everything realize made.
-- opts: { keep_plan, kill, timeout_ms }.  Idempotent (see journal.lua).
function M.destroy(sys, opts) return steps().destroy(sys, opts) end

--- An attached auto-remove run (realized with detachable = true) lets go of
-- its system: removed by its monitor once it stops (now, if it has).
function M.let_go(sys) return steps().let_go(sys) end

--- destroy() by name: a Realized plan, or one a killed realize left.
function M.destroy_named(name, root, opts) return steps().destroy_named(name, root, opts) end

--- Roll back realizes whose process died and destroy stopped auto-remove
-- systems (all plans, or the names given).  Returns {{Name, Reason}...}, failures.
function M.recover(root, names) return require("hcs.workflow.journal").recover(root, names) end

-- User workflows ------------------------------------------------------------

local function workflow_dirs()
  local dirs = {}
  for dir in (os.getenv("HCS_WORKFLOW_PATH") or ""):gmatch("[^:]+") do dirs[#dirs + 1] = dir end
  return dirs
end

--- Names of the user workflows found on $HCS_WORKFLOW_PATH.
function M.list()
  local lfs = require "lfs"
  local names, seen = {}, {}
  for _, dir in ipairs(workflow_dirs()) do
    if lfs.attributes(dir, "mode") == "directory" then
      for f in lfs.dir(dir) do
        local n = f:match("^([%w_.-]+)%.lua$")
        if n and not seen[n] then
          seen[n] = true
          names[#names + 1] = n
        end
      end
    end
  end
  table.sort(names)
  return names
end

--- Load a user workflow by name (or a path to a Lua file).  The file runs in
-- its own environment falling back to _G; it must return a table with a
-- `run` function and may have `description`.  Errors say which field is
-- missing or of the wrong type.
function M.load(name)
  local path
  if name:find("/", 1, true) or name:match("%.lua$") then
    path = name
  else
    for _, dir in ipairs(workflow_dirs()) do
      local p = dir .. "/" .. name .. ".lua"
      local f = io.open(p, "r")
      if f then
        f:close()
        path = p
        break
      end
    end
    if not path then
      return nil, ("no workflow named %q on HCS_WORKFLOW_PATH (%s)"):format(name, os.getenv("HCS_WORKFLOW_PATH") or "unset")
    end
  end
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  local ok, def = pcall(chunk)
  if not ok then return nil, ("workflow %s: %s"):format(path, tostring(def)) end
  if type(def) ~= "table" then
    return nil, ("workflow %s: must return a table, got %s"):format(path, type(def))
  end
  if type(def.run) ~= "function" then
    return nil, ("workflow %s: field 'run' must be a function, got %s"):format(path, type(def.run))
  end
  if def.description ~= nil and type(def.description) ~= "string" then
    return nil, ("workflow %s: field 'description' must be a string, got %s"):format(path, type(def.description))
  end
  def.path = path
  return def
end

--- Run a user workflow: run(wf, ...) with this module as wf.
function M.run(name, ...)
  local def, err = M.load(name)
  if not def then return nil, err end
  return def.run(M, ...)
end

return M
