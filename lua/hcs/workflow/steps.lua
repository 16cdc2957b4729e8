--- The lifecycle steps behind hcs.workflow: plan, customize, validate,
-- realize, author (the System object), capture, destroy.  Policy lives here;
-- the kernel work is libhcs (hcs.layer, hcs.compute, hcs.net, hcs.image).
local hcs = require "hcs"
local plans = require "hcs.workflow.plan"
local txn = require "hcs.workflow.txn"
local journal = require "hcs.workflow.journal"
local json = hcs.json

local M = {}

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return setmetatable(c, getmetatable(t))
end

local function check(v, msg, ...)
  if v == nil then error(msg, 0) end
  return v, msg, ...
end

local function open_images(root) return check(hcs.image.open(root)) end
local function open_layers(root) return check(hcs.layer.open(root)) end

-- plan ----------------------------------------------------------------------

--- Turn "K=V" lists or {K=V} maps into a map.
local function env_map(env)
  local out = {}
  for k, v in pairs(env or {}) do
    if math.type(k) == "integer" then
      local key, val = tostring(v):match("^([^=]+)=(.*)$")
      if not key then error(("environment entry %q: expected KEY=VALUE"):format(tostring(v)), 0) end
      out[key] = val
    else
      out[k] = tostring(v)
    end
  end
  return out
end

function M.plan(spec)
  if type(spec) ~= "table" then error("plan: expected a table {image = ..., name = ...}", 2) end
  if type(spec.image) ~= "string" then error("plan: field 'image' (an image reference) is required", 2) end
  local root = spec.root
  local images <close> = open_images(root)
  -- pull = "missing" | "always" | "never": a registry reference is pulled by policy
  local info = check(require("hcs.registry").ensure(images, spec.image, spec.pull, spec.registry))
  local cfg = info.Config.config or {}
  local name = spec.name or (info.Name:gsub("[^%w_.-]", "-"))
  check(plans.check_name(name))
  journal.recover(root, { name }) -- what a killed realize left under this name
  -- Entrypoint and Command stay apart (docker's rule): arguments given
  -- later replace Command and are appended to Entrypoint.
  local entrypoint, command = cfg.Entrypoint or {}, cfg.Cmd or {}
  local plan = {
    Kind = "PlannedSystem",
    SchemaVersion = plans.SCHEMA,
    Name = name,
    Image = spec.image,
    ImageId = info.Id,
    HostName = name:sub(1, 63),
    Processor = json.decode("{}"),
    Memory = json.decode("{}"),
    MappedDirectories = json.array(),
    Environment = env_map(cfg.Env),
    Entrypoint = #entrypoint > 0 and json.array(copy(entrypoint)) or nil,
    Command = #command > 0 and json.array(copy(command)) or nil,
    WorkingDirectory = cfg.WorkingDir ~= "" and cfg.WorkingDir or nil,
    User = cfg.User ~= "" and cfg.User or nil,
    ImageConfig = json.decode("{}"),
    State = "Planned",
    Created = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    -- define()'s plans only live to be realized: one whose process died
    -- first is debris (journal.stale), removed by the next recover().
    Ephemeral = spec.ephemeral or nil,
    Owner = spec.ephemeral and journal.owner() or nil,
    -- A run removed when it stops (`hcs run --rm`) outlives no reboot: its
    -- plan, image reference and scratch layer are runtime state, written
    -- without fsync (plan.lua, image and layer stores).
    Volatile = spec.volatile or nil,
  }
  local changes = copy(spec)
  changes.image, changes.name, changes.root, changes.ephemeral, changes.volatile = nil, nil, nil, nil, nil
  changes.pull, changes.registry = nil, nil
  if next(changes) then M.apply(plan, changes) end
  local ok, err = plans.create(plan, root)
  if not ok then error("plan: " .. tostring(err), 0) end
  plan._root = root
  return plan
end

local function parse_mount(text)
  local host, ctr, mode = text:match("^([^:]+):([^:]+):?(%a*)$")
  if not host or (mode ~= "" and mode ~= "ro" and mode ~= "rw") then
    error(("mount %q: expected HOSTPATH:CONTAINERPATH[:ro|:rw]"):format(text), 0)
  end
  return { HostPath = host, ContainerPath = ctr, ReadOnly = mode == "ro" }
end

local customizers = {
  hostname = function(plan, v) plan.HostName = tostring(v) end,
  cpus = function(plan, v) plan.Processor.Count = math.tointeger(v) or error("cpus: expected an integer", 0) end,
  cpu_max = function(plan, v) plan.Processor.Maximum = math.tointeger(v) or error("cpu_max: expected an integer", 0) end,
  cpu_weight = function(plan, v) plan.Processor.Weight = math.tointeger(v) or error("cpu_weight: expected an integer", 0) end,
  memory = function(plan, v) plan.Memory.SizeInMB = math.tointeger(v) or error("memory: expected MB as an integer", 0) end,
  network = function(plan, v)
    if v == false then
      plan.Network = nil
    else
      plan.Network = plan.Network or { PortMappings = json.array() }
      plan.Network.Name = tostring(v)
    end
  end,
  ports = function(plan, v)
    plan.Network = plan.Network or { PortMappings = json.array() }
    local list = json.array()
    for _, p in ipairs(type(v) == "table" and v or { v }) do
      if type(p) == "table" then
        list[#list + 1] = p
      else
        local m = check(hcs.net.port_mapping(p))
        list[#list + 1] = m.Settings or m
      end
    end
    plan.Network.PortMappings = list
  end,
  mounts = function(plan, v)
    local list = json.array()
    for _, m in ipairs(v) do list[#list + 1] = type(m) == "table" and m or parse_mount(m) end
    plan.MappedDirectories = list
  end,
  env = function(plan, v)
    for k, val in pairs(env_map(v)) do plan.Environment[k] = val end
  end,
  command = function(plan, v)
    if type(v) == "string" then v = { "/bin/sh", "-c", v } end
    plan.Command = json.array(copy(v))
  end,
  -- As docker's --entrypoint: replaces the image's, "" or {} clears it, and
  -- the image's Cmd goes with it (apply() sets a command given with it after).
  entrypoint = function(plan, v)
    if type(v) == "string" then v = v ~= "" and { v } or {} end
    if type(v) ~= "table" then error("entrypoint: expected a list of arguments or a string", 0) end
    plan.Entrypoint = #v > 0 and json.array(copy(v)) or nil
    plan.Command = nil
  end,
  workdir = function(plan, v) plan.WorkingDirectory = v end,
  user = function(plan, v) plan.User = v end,
}

--- Apply changes to a plan table (no save).  Unknown fields are errors.
function M.apply(plan, changes)
  local names = {}
  for k in pairs(changes) do names[#names + 1] = k end
  table.sort(names, function(a, b)
    if (a == "entrypoint") ~= (b == "entrypoint") then return a == "entrypoint" end
    return a < b
  end)
  for _, k in ipairs(names) do
    local f = customizers[k]
    if not f then
      local known = {}
      for n in pairs(customizers) do known[#known + 1] = n end
      table.sort(known)
      error(("customize: unknown field %q (known: name, %s)"):format(k, table.concat(known, ", ")), 0)
    end
    f(plan, changes[k])
  end
end

function M.customize(plan, changes)
  if type(plan) == "string" then plan = check(plans.load(plan)) end
  if plan.State ~= "Planned" then error(("customize: %q is already realized"):format(plan.Name), 0) end
  changes = copy(changes or {})
  local root = plan._root
  local rename = changes.name
  changes.name = nil
  M.apply(plan, changes)
  if rename and rename ~= plan.Name then
    check(plans.check_name(rename))
    if plans.load(rename, root) then error(("customize: a system named %q is already planned"):format(rename), 0) end
    local old = plan.Name
    plan.Name = rename
    if plan.HostName == old then plan.HostName = rename:sub(1, 63) end
    check(plans.save(plan, root))
    check(plans.remove(old, root))
  else
    check(plans.save(plan, root))
  end
  return plan
end

-- validate ------------------------------------------------------------------

local function meminfo_mb()
  for line in io.lines("/proc/meminfo") do
    local kb = line:match("^MemTotal:%s+(%d+)")
    if kb then return tonumber(kb) // 1024 end
  end
end

local function ncpus()
  local n = 0
  for line in io.lines("/proc/cpuinfo") do
    if line:match("^processor%s*:") then n = n + 1 end
  end
  return n
end

function M.validate(plan)
  if type(plan) == "string" then plan = check(plans.load(plan)) end
  local problems = {}
  local function problem(fmt, ...) problems[#problems + 1] = fmt:format(...) end
  local root = plan._root
  local okname, nerr = plans.check_name(plan.Name)
  if not okname then problem("%s", nerr) end
  local images = hcs.image.open(root)
  if images then
    local id = images:resolve(plan.ImageId or plan.Image)
    if not id then problem("image %q is not in the image store", tostring(plan.Image)) end
    images:close()
  else
    problem("the image store cannot be opened")
  end
  local caps = hcs.host.capabilities()
  if caps and not caps.Overlayfs then problem("this kernel has no overlayfs") end
  local mem = plan.Memory and plan.Memory.SizeInMB
  if mem ~= nil then
    local total = meminfo_mb()
    if math.type(mem) ~= "integer" or mem < 4 then problem("Memory.SizeInMB must be an integer >= 4, got %s", tostring(mem))
    elseif total and mem > total then problem("Memory.SizeInMB %d exceeds the host's %d MB", mem, total) end
  end
  local count = plan.Processor and plan.Processor.Count
  if count ~= nil then
    local n = ncpus()
    if math.type(count) ~= "integer" or count < 1 then problem("Processor.Count must be a positive integer")
    elseif count > n then problem("Processor.Count %d exceeds the host's %d CPUs", count, n) end
  end
  local max = plan.Processor and plan.Processor.Maximum
  if max ~= nil and (math.type(max) ~= "integer" or max < 1 or max > 10000) then
    problem("Processor.Maximum must be 1..10000 (hundredths of a percent of the CPUs), got %s", tostring(max))
  end
  for i, m in ipairs(plan.MappedDirectories or {}) do
    if type(m.HostPath) ~= "string" or m.HostPath:sub(1, 1) ~= "/" then
      problem("MappedDirectories[%d].HostPath must be an absolute path", i)
    elseif not io.open(m.HostPath, "r") and not require("lfs").attributes(m.HostPath) then
      problem("MappedDirectories[%d].HostPath %q does not exist", i, m.HostPath)
    end
    if type(m.ContainerPath) ~= "string" or m.ContainerPath:sub(1, 1) ~= "/" then
      problem("MappedDirectories[%d].ContainerPath must be an absolute path", i)
    end
  end
  if plan.Network then
    local net = hcs.net.network.inspect(plan.Network.Name or "", { root = root })
    if not net then problem("network %q does not exist", tostring(plan.Network.Name)) end
    local seen = {}
    for i, p in ipairs(plan.Network.PortMappings or {}) do
      local key = (p.Protocol or "TCP"):upper() .. ":" .. tostring(p.ExternalPort)
      if seen[key] then problem("PortMappings[%d]: host port %s is mapped twice", i, key) end
      seen[key] = true
    end
  end
  if plan.State == "Planned" then
    local existing = hcs.compute.open(plan.Name, root)
    if existing then
      problem("a compute system named %q already exists", plan.Name)
      existing:close()
    end
    -- The compartment and endpoint realize makes take the plan's name too.
    if plan.Network and hcs.net.endpoint.inspect(plan.Name, { root = root }) then
      problem("an endpoint named %q already exists", plan.Name)
    end
    if plan.Network and hcs.net.namespace.inspect(plan.Name, { root = root }) then
      problem("a compartment named %q already exists", plan.Name)
    end
  end
  if #problems > 0 then
    -- Still a list, but one that reads as a message, so assert(wf.validate(plan))
    -- raises "the plan ... is not valid: ..." instead of a bare table.
    return nil, setmetatable(problems, { __tostring = function(p)
      return ("the plan %q is not valid: %s"):format(tostring(plan.Name), table.concat(p, "; "))
    end })
  end
  return true
end

-- realize -------------------------------------------------------------------

--- The process a plan runs: its Entrypoint followed by its Command.
function M.command_line(plan)
  local argv = json.array()
  for _, a in ipairs(plan.Entrypoint or {}) do argv[#argv + 1] = a end
  for _, a in ipairs(plan.Command or {}) do argv[#argv + 1] = a end
  return argv
end

-- Crash tests: HCS_WF_KILL_AT=LABEL[:SIGNAL] makes realize signal itself
-- (default KILL) right after the step LABEL ("journal" is the write-ahead
-- save), to prove what the next command does with what is left.
local kill_at = os.getenv("HCS_WF_KILL_AT")
local function kill_point(label)
  if not kill_at then return end
  local at, sig = kill_at:match("^([^:]+):?(%u*)$")
  if at == label then
    os.execute(("kill -%s %d"):format(sig ~= "" and sig or "KILL", journal.owner().Pid))
  end
end

local System = {}
System.__index = System

local function env_list(map)
  local out = {}
  for k, v in pairs(map or {}) do out[#out + 1] = k .. "=" .. v end
  table.sort(out)
  return out
end

local function compute_config(plan, mount, image_layers, layer_store, ns, opts)
  local layers = json.array()
  for i = #image_layers, 1, -1 do
    local info = layer_store:inspect(image_layers[i])
    layers[#layers + 1] = { Id = image_layers[i], Path = info and info.Path or "" }
  end
  local container = {
    GuestOs = { HostName = plan.HostName },
    Storage = { Layers = layers, Path = mount },
    MappedDirectories = #(plan.MappedDirectories or {}) > 0 and plan.MappedDirectories or nil,
    Processor = next(plan.Processor or {}) and plan.Processor or nil,
    Memory = next(plan.Memory or {}) and plan.Memory or nil,
    Networking = ns and { Namespace = ns } or nil,
  }
  local linux = {}
  if opts.cgroup_parent then linux.CgroupParent = opts.cgroup_parent end
  if opts.exit_command then linux.ExitCommand = opts.exit_command end
  local argv = M.command_line(plan)
  if not opts.idle and #argv > 0 then
    linux.Init = {
      CommandArgs = argv,
      Environment = plan.Environment,
      WorkingDirectory = plan.WorkingDirectory,
      User = plan.User,
      EmulateConsole = opts.tty or nil,
      ConsoleSize = opts.tty and opts.console_size or nil,
    }
  end
  return { Owner = journal.OWNER, SchemaVersion = { Major = 2, Minor = 1 }, Container = container,
    Linux = next(linux) and linux or nil }
end

--- Realize a plan.  opts: { idle = true (init idles, for authoring),
-- start = false (leave the system Created), cgroup_parent = NAME,
-- stdio = "inherit"|"null" and stdin = bool (init's stdio, as hcs.compute.create),
-- tty = true (init gets a console; take it with sys.cs:stdio()),
-- console_size = {rows, columns} (its initial size),
-- auto_remove = true (destroyed once it stops: its monitor runs `hcs destroy
-- --auto NAME`), attached = true (with auto_remove: the caller waits and
-- destroys it itself, after reading the exit status; if the caller dies, the
-- next recover() destroys it once stopped), detachable = true (with both: the
-- monitor's `destroy --auto` runs too, and removes it once the caller has
-- let go with M.let_go or died) }.
--
-- Write-ahead: the plan is saved as Realizing, naming every resource,
-- before the first one is made; a failure (an interrupting signal
-- included) releases them all, and a realize killed outright is rolled
-- back by the next destroy, `hcs plan ls` or realize (journal.recover).
function M.realize(plan, opts)
  opts = opts or {}
  if type(plan) == "string" then plan = check(plans.load(plan, opts.root)) end
  local root = plan._root or opts.root
  -- One realize or destroy of a name at a time; then the state on disk,
  -- not the caller's copy, decides.
  local lock <close> = setmetatable({ f = check(plans.lock(plan.Name, root, plan.Volatile)) },
    { __close = function(l) plans.unlock(l.f) end })
  local disk = check(plans.load(plan.Name, root))
  if disk.State ~= plan.State then
    error(("realize: %q is %s on disk (changed by another process)"):format(plan.Name, disk.State), 0)
  end
  if plan.State == "Realizing" then
    if journal.alive(plan.Owner) then
      error(("realize: %q is being realized by process %d"):format(plan.Name, plan.Owner.Pid), 0)
    end
    journal.recover(root, { plan.Name })
    local fresh = check(plans.load(plan.Name, root))
    for k in pairs(plan) do if type(k) ~= "string" or k:sub(1, 1) ~= "_" then plan[k] = nil end end
    for k, v in pairs(fresh) do plan[k] = v end
  end
  if plan.State ~= "Planned" then error(("realize: %q is already realized"):format(plan.Name), 0) end
  local okv, problems = M.validate(plan)
  if not okv then error("realize " .. plan.Name .. ": the plan is not valid: " .. table.concat(problems, "; "), 0) end
  local id = plan.Name
  local images <close> = open_images(root)
  local layers <close> = open_layers(root)
  local image = check(images:inspect(plan.ImageId))
  local cfg_opts = copy(opts)
  if opts.auto_remove and (not opts.attached or opts.detachable) then
    cfg_opts.exit_command = json.array(journal.self_command(root, "destroy", "--auto", id))
  end
  plan.State = "Realizing"
  plan.Owner = journal.owner()
  plan.Realized = { SystemId = id, ScratchLayer = id, Namespace = plan.Network and id or nil,
    Endpoint = plan.Network and id or nil, Idle = opts.idle or nil, AutoRemove = opts.auto_remove or nil,
    Attached = opts.auto_remove and opts.attached or nil }
  check(plans.save(plan, root))
  kill_point("journal")
  return txn.run("realize " .. id, function(tx0)
    tx0:on_rollback("release what realize made", function()
      return journal.release(plan, root, { kill = true, keep_plan = true })
    end)
    local tx = setmetatable({ step = function(_, what, fn)
      local r = table.pack(tx0:step(what, fn))
      kill_point(what)
      return table.unpack(r, 1, r.n)
    end }, { __index = tx0 })
    tx:step("take a reference on the image", function() return images:acquire(image.Id, id, plan.Volatile) end)
    tx:step("create the scratch layer", function()
      return layers:create_scratch(id, { image.Layers[#image.Layers] }, plan.Volatile)
    end)
    tx:step("activate the layers", function() return layers:activate(id) end)
    local mount = check(layers:mount_path(id))
    -- The compute system makes any mount point it lacks itself (and /dev/*
    -- inside its own tmpfs /dev), so a volatile run's scratch, never
    -- captured, needs no skeleton: four directories less to create.
    local mapped = #(plan.MappedDirectories or {}) > 0 and plan.MappedDirectories or nil
    if mapped or not plan.Volatile then
      tx:step("prepare the root file system", function() return layers:prepare(id, mapped) end)
    end
    local ns, endpoint
    if plan.Network then
      ns = tx:step("create the network compartment", function()
        return hcs.net.namespace.create({ Id = id, ContainerId = id }, { root = root })
      end)
      local policies = json.array()
      for _, p in ipairs(plan.Network.PortMappings or {}) do
        policies[#policies + 1] = { Type = "PortMapping", Settings = p }
      end
      endpoint = tx:step("create the network endpoint", function()
        return hcs.net.endpoint.create({ Id = id, Name = id, HostComputeNetwork = plan.Network.Name,
          HostComputeNamespace = ns.Id, Policies = #policies > 0 and policies or nil }, { root = root })
      end)
      local lx = endpoint.Linux or {}
      if lx.ResolvConf and lx.ResolvConf ~= "" then check(hcs.core.fs.copy_in(mount, lx.ResolvConf, "/etc/resolv.conf")) end
      if lx.Hosts and lx.Hosts ~= "" then check(hcs.core.fs.copy_in(mount, lx.Hosts, "/etc/hosts")) end
    end
    local config = compute_config(plan, mount, image.Layers, layers, ns and ns.Id, cfg_opts)
    local cs = tx:step("create the compute system", function()
      return hcs.compute.create(id, config, { root = root, stdio = opts.stdio, stdin = opts.stdin })
    end)
    tx:on_rollback("close the compute system handle", function() cs:close() end)
    -- Realized before it starts: an auto-remove system that exits at once
    -- finds its plan complete when the monitor's `destroy --auto` runs.
    plan.State = "Realized"
    plan.Realized.MountPath = mount
    tx:step("save the plan", function() return plans.save(plan, root) end)
    if opts.start ~= false then tx:step("start the compute system", function() return cs:start() end) end
    return setmetatable({ plan = plan, root = root, cs = cs }, System)
  end)
end

function M.open(name, root)
  local plan = check(plans.load(name, root))
  if plan.State ~= "Realized" then error(("%q is planned, not realized"):format(name), 0) end
  plan._root = root
  local cs = check(hcs.compute.open(plan.Realized.SystemId, root))
  return setmetatable({ plan = plan, root = root, cs = cs }, System)
end

-- author: the System object ---------------------------------------------------

function System:__tostring() return ("hcs.workflow.system (%s)"):format(self.plan.Name) end
function System:__close() if self.cs then self.cs:close() end end

--- Run a command in the system and wait for it.
-- cmd: a list of arguments, or a string run by /bin/sh -c.
-- opts: { env = {K=V}, workdir, user, input = "stdin text", check = true }.
-- Returns exit code, stdout, stderr; raises when check ~= false and the exit code is not 0.
function System:run(cmd, opts)
  opts = opts or {}
  local args = type(cmd) == "string" and { "/bin/sh", "-c", cmd } or cmd
  local env = copy(self.plan.Environment or {})
  for k, v in pairs(env_map(opts.env)) do env[k] = v end
  local p = check(self.cs:create_process({
    CommandArgs = args, Environment = env, WorkingDirectory = opts.workdir or self.plan.WorkingDirectory,
    User = opts.user or self.plan.User, CreateStdInPipe = opts.input ~= nil, CreateStdOutPipe = true,
    CreateStdErrPipe = true,
  }))
  if opts.input ~= nil then
    p.stdin:write(opts.input)
    p:close_stdin()
  end
  local out, err = hcs.core.fs.read_all(p.stdout, p.stderr)
  local done, code = p:wait()
  p:close()
  if done == nil then error(("run in %s: wait: %s"):format(self.plan.Name, tostring(code)), 0) end
  if code ~= 0 and opts.check ~= false then
    error(("run %s in %s: exit code %d%s"):format(type(cmd) == "string" and ("%q"):format(cmd) or table.concat(args, " "),
      self.plan.Name, code, err ~= "" and (": " .. err:gsub("%s+$", "")) or ""), 0)
  end
  return code, out, err
end

--- Copy a host file or directory into the system (cp -R semantics).
function System:copy(src, dst)
  return check(hcs.core.fs.copy_in(self.plan.Realized.MountPath, src, dst))
end

--- Set image configuration for the capture: Env (list or map), Cmd,
-- Entrypoint, WorkingDir, User, Labels, ExposedPorts.
function System:config(fields)
  local known = { Env = true, Cmd = true, Entrypoint = true, WorkingDir = true, User = true, Labels = true,
    ExposedPorts = true, StopSignal = true, Volumes = true }
  local ic = self.plan.ImageConfig or {}
  for k, v in pairs(fields) do
    if not known[k] then error(("config: unknown image config field %q"):format(tostring(k)), 2) end
    if k == "Env" then
      ic.Env = ic.Env or {}
      for ek, ev in pairs(env_map(v)) do ic.Env[ek] = ev end
    elseif k == "Cmd" or k == "Entrypoint" then
      ic[k] = json.array(type(v) == "string" and { "/bin/sh", "-c", v } or copy(v))
    else
      ic[k] = copy(v)
    end
  end
  self.plan.ImageConfig = ic
  return check(plans.save(self.plan, self.root))
end

function System:properties(query) return self.cs:properties(query) end
--- The system's compute handle (hcs.compute): processes, stats, pause...
function System:compute() return self.cs end
function System:stop(timeout_ms) return self.cs:shutdown(timeout_ms or 10000) end
function System:wait(timeout_ms) return self.cs:wait(timeout_ms) end

-- capture -------------------------------------------------------------------

function M.capture(sys, opts)
  if getmetatable(sys) ~= System then error("capture: expected a realized system (from realize or open)", 2) end
  if type(opts) ~= "table" or type(opts.name) ~= "string" then error("capture: field 'name' is required", 2) end
  local root = sys.root
  if opts.stop then
    -- Capture by moving the changes (no copy): the system stops for good
    -- and its root file system is taken down first; destroy it afterwards.
    local props = sys.cs:properties()
    if props and props.State ~= "Stopped" then check(sys.cs:shutdown(opts.timeout_ms or 5000)) end
    local layers <close> = open_layers(root)
    check(layers:unprepare(sys.plan.Realized.ScratchLayer))
    check(layers:deactivate(sys.plan.Realized.ScratchLayer))
  end
  local images <close> = open_images(root)
  local base = check(images:inspect(sys.plan.ImageId)).Config.config or {}
  local ic = copy(sys.plan.ImageConfig or {})
  local config = {}
  for k, v in pairs(base) do config[k] = v end
  local env = env_map(base.Env)
  for k, v in pairs(ic.Env or {}) do env[k] = v end
  if next(env) then config.Env = json.array(env_list(env)) end
  ic.Env = nil
  for k, v in pairs(ic) do config[k] = v end
  if opts.config then
    for k, v in pairs(opts.config) do config[k] = v end
  end
  -- A copy of a running system's changes is taken with the system paused
  -- (opts.pause = false opts out), so no process swaps files under the
  -- pass: the capture pauses it (the freezer) for the pass alone and
  -- resumes it right after, whatever happened.
  local pause
  if not opts.stop and opts.pause ~= false and sys.cs then
    local props = sys.cs:properties()
    if props and props.State == "Running" then pause = sys.cs end
  end
  local id = check(images:capture(sys.plan.Realized.ScratchLayer, {
    parent = sys.plan.ImageId, name = opts.name, version = opts.version, publisher = opts.publisher,
    config = config, created_by = opts.created_by or ("hcs capture " .. sys.plan.Name),
    comment = opts.comment, progress = opts.progress, move = opts.stop or nil, pause = pause,
  }))
  return check(images:inspect(id))
end

-- destroy -------------------------------------------------------------------

--- Stop and remove everything realize made; the plan goes too unless
-- opts.keep_plan (then it is Planned again).  opts.kill: SIGKILL instead of
-- a graceful stop (within opts.timeout_ms, default 5 s).  Idempotent: each
-- resource is released if present, so a destroy finishes what an earlier
-- one, a killed realize or a plain `hcs rm` left.  Collects every failure.
function M.destroy(sys, opts)
  opts = opts or {}
  if sys.cs then
    sys.cs:close()
    sys.cs = nil
  end
  return journal.release(sys.plan, sys.root, opts)
end

--- An attached auto-remove caller lets go of its system (it detached from
-- the console, `hcs run -it --rm`): from now on the monitor's `destroy
-- --auto` removes it once it stops, and one that stopped already is removed
-- now.  Returns true or nil, message.
function M.let_go(sys)
  local name, root = sys.plan.Name, sys.root
  local plan = plans.load(name, root)
  if not plan or plan.State ~= "Realized" or not (plan.Realized or {}).Attached then return true end
  plan.Realized.Attached = nil
  local ok, err = plans.save(plan, root)
  if not ok then return nil, err end
  sys.plan = plan
  -- Stopped before the save: its monitor's `destroy --auto` saw us attached
  -- and left it to us.
  local props = sys.cs and sys.cs:properties()
  if props and props.State == "Stopped" then
    local done, derr = M.destroy(sys)
    if not done and plans.load(name, root) then return nil, derr end
  end
  return true
end

--- destroy() by name, whatever the plan's state after realize: Realized,
-- or Realizing left by a dead process.  Returns true or nil, message.
function M.destroy_named(name, root, opts)
  local plan, err = plans.load(name, root)
  if not plan then return nil, err end
  if plan.State == "Planned" then
    return nil, ("%q is planned, not realized: remove the plan with 'hcs plan rm %s'"):format(name, name)
  end
  if plan.State == "Realizing" and journal.alive(plan.Owner) then
    return nil, ("%q is being realized by process %d"):format(name, plan.Owner.Pid)
  end
  return journal.release(plan, root, opts)
end

return M
