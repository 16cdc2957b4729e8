--- The realize journal, and the one idempotent clean-up behind destroy,
-- rollback and recovery.
--
-- Before realize creates anything it saves the plan as State = "Realizing"
-- with Realized = {SystemId, ScratchLayer, Namespace, Endpoint} (all named
-- after the plan, so known in advance) and Owner = {Pid, StartTime} (the
-- realizing process): write-ahead, so a realize killed at any instruction
-- leaves a plan naming everything it may have made.  release() frees each
-- of those resources if present, ignoring what is already gone; recover()
-- runs it for every plan whose realizing process is dead (and for stopped
-- auto-remove systems whose clean-up did not happen).
local hcs = require "hcs"
local plans = require "hcs.workflow.plan"

local M = {}

--- The Owner field of the systems realize creates: release() never
-- deletes a compute system that is not the workflow's.
M.OWNER = "hcs-workflow"

local ENOENT = 2

local ok_interrupt, interrupt = pcall(require, "hcs.interrupt")
if not ok_interrupt then interrupt = nil end

--- pcall(fn, ...) with SIGINT/SIGTERM/SIGHUP held back (plain pcall
-- outside the hcs host).
function M.protect(fn, ...)
  if interrupt then return interrupt.protect(fn, ...) end
  return pcall(fn, ...)
end

-- Field 22 of /proc/PID/stat (start time in clock ticks): with the pid it
-- names one process, whatever pid reuse happens later.
local function start_time(pid)
  local f = io.open("/proc/" .. tostring(pid) .. "/stat", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local rest = text and text:match(".*%) (.*)$") -- after the last ')', field 3 on
  if not rest then return nil end
  local i = 3
  for field in rest:gmatch("%S+") do
    if i == 22 then return tonumber(field) end
    i = i + 1
  end
end

--- The argv that runs this hcs program on the same state root, for a
-- monitor's Linux.ExitCommand (absolute: the monitor runs in `/`).
function M.self_command(root, ...)
  if not interrupt then
    error("an auto-remove system needs the hcs host program (its monitor runs `hcs` at exit)", 0)
  end
  local lfs = require "lfs"
  local exe = assert(lfs.symlinkattributes("/proc/self/exe", "target"))
  local dir = plans.root(root)
  if dir:sub(1, 1) ~= "/" then dir = lfs.currentdir() .. "/" .. dir end
  return { exe, "--root", dir, ... }
end

--- {Pid, StartTime} of this process.
function M.owner()
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = tonumber(f:read("a"):match("^(%d+)"))
  f:close()
  return { Pid = pid, StartTime = start_time(pid) }
end

--- Is the process an Owner record names still running?
function M.alive(owner)
  if type(owner) ~= "table" or math.type(owner.Pid) ~= "integer" then return false end
  local st = start_time(owner.Pid)
  return st ~= nil and st == owner.StartTime
end

--- Free everything a realize may have made, each resource if present:
-- compute system (stopped first: gracefully within opts.timeout_ms, or
-- killed with opts.kill), endpoint, compartment, scratch activation and
-- layer, the image reference, then the plan (removed, or Planned again with
-- opts.keep_plan).  Every failure is reported, none stops the others; the
-- plan stays as it was when anything failed, so a later destroy retries.
-- Signals are held back while it runs.  Returns true or nil, message.
function M.release(plan, root, opts)
  opts = opts or {}
  local ok, res, msg = M.protect(function()
    local r = plan.Realized or {}
    local failures = {}
    local function try(what, okv, err, code)
      if okv == nil and err ~= nil and code ~= ENOENT then failures[#failures + 1] = what .. ": " .. tostring(err) end
      return okv
    end
    if r.SystemId then
      local cs, err, code = hcs.compute.open(r.SystemId, root)
      if cs then
        local props = cs:properties()
        if props and props.Owner ~= M.OWNER then
          failures[#failures + 1] = ("compute system %q belongs to %q, not this workflow: left alone"):format(
            r.SystemId, tostring(props.Owner))
        else
          if props and props.State ~= "Stopped" then
            if opts.kill then
              try("terminate", cs:terminate())
            else
              try("stop", cs:shutdown(opts.timeout_ms or 5000))
            end
          end
          try("delete compute system", cs:delete(true))
        end
        cs:close()
      else
        try("open compute system", cs, err, code)
      end
    end
    -- Only the endpoint in the system's own compartment and the compartment
    -- made for this container: another object with the name (validate
    -- refuses a realize while one exists) is not ours, so ours is absent.
    if r.Endpoint then
      local ep, err, code = hcs.net.endpoint.inspect(r.Endpoint, { root = root })
      if ep and ep.Id == r.Endpoint and ep.HostComputeNamespace == r.Namespace then
        try("delete endpoint", hcs.net.endpoint.delete(ep.Id, { root = root }))
      elseif not ep then
        try("find endpoint", ep, err, code)
      end
    end
    if r.Namespace then
      local ns, err, code = hcs.net.namespace.inspect(r.Namespace, { root = root })
      if ns and ns.ContainerId == plan.Name then
        try("delete compartment", hcs.net.namespace.delete(r.Namespace, { root = root }))
      elseif not ns then
        try("find compartment", ns, err, code)
      end
    end
    if r.ScratchLayer then
      local layers, err, code = hcs.layer.open(root)
      if layers then
        if layers:exists(r.ScratchLayer) then
          try("unprepare", layers:unprepare(r.ScratchLayer))
          try("deactivate", layers:deactivate(r.ScratchLayer))
          try("destroy scratch layer", layers:destroy(r.ScratchLayer, true))
        end
        layers:close()
      else
        try("open the layer store", layers, err, code)
      end
    end
    if plan.ImageId then
      local images, err, code = hcs.image.open(root)
      if images then
        try("release image", images:release(plan.ImageId, plan.Name))
        images:close()
      else
        try("open the image store", images, err, code)
      end
    end
    if #failures == 0 then
      if opts.keep_plan then
        plan.State, plan.Realized, plan.Owner = "Planned", nil, nil
        try("save plan", plans.save(plan, root))
      else
        try("remove plan", plans.remove(plan.Name, root))
      end
    end
    if #failures > 0 then return nil, "destroy " .. plan.Name .. ": " .. table.concat(failures, "; ") end
    return true
  end)
  if not ok then return nil, tostring(res) end
  return res, msg
end

--- Is this plan the debris of a realize or an auto-remove run whose
-- process is gone?  Returns the reason or nil.
function M.stale(plan, root)
  if plan.State == "Planned" then
    if plan.Ephemeral and not M.alive(plan.Owner) then return "the run that planned it died" end
    return nil
  end
  if plan.State == "Realizing" then
    if not M.alive(plan.Owner) then return "its realize was interrupted" end
    return nil
  end
  local r = plan.Realized
  if plan.State == "Realized" and r and r.AutoRemove and not (r.Attached and M.alive(plan.Owner)) then
    local cs = hcs.compute.open(r.SystemId, root)
    if not cs then return "its auto-remove system is gone" end
    local props = cs:properties()
    cs:close()
    if props and props.State == "Stopped" then return "its auto-remove system has stopped" end
  end
  return nil
end

--- Finish what dead processes left: roll back interrupted realizes (the
-- plan is Planned again, or removed when `run` made it) and destroy stopped
-- auto-remove systems.  names: a list (default: every plan).  Returns the
-- plans cleaned ({Name, Reason}) and the failures.
function M.recover(root, names)
  local cleaned, failures = {}, {}
  for _, name in ipairs(names or plans.list(root)) do
    local plan = plans.load(name, root)
    local why = plan and M.stale(plan, root)
    if why then
      local keep = plan.State == "Realizing" and not plan.Ephemeral
      local ok, err = M.release(plan, root, { kill = true, keep_plan = keep })
      if ok then
        cleaned[#cleaned + 1] = { Name = name, Reason = why }
      else
        failures[#failures + 1] = err
      end
    end
  end
  return cleaned, failures
end

return M
