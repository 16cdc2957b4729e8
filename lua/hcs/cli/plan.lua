--- `hcs plan ...`: planned systems (DefinePlannedSystem, customize, validate).
local cli = require "hcs.cli"
local hcs = require "hcs"

local json_flag = { kind = "flag", short = "j", help = "print JSON" }

-- Options shared by `plan create` and `plan customize`, mapped to customize() fields.
local custom_opts = {
  memory = { kind = "number", short = "m", metavar = "MB", help = "memory limit in MB" },
  cpus = { kind = "number", help = "number of CPUs" },
  ["cpu-max"] = { kind = "number", help = "CPU cap in 1/10000 of the CPUs" },
  network = { kind = "string", help = "attach to this network ('none' to detach)" },
  publish = { kind = "list", short = "p", metavar = "[IP:]HOST:CTR[/udp]", help = "port mapping" },
  volume = { kind = "list", short = "v", metavar = "HOST:CTR[:ro]", help = "mapped directory" },
  env = { kind = "list", short = "e", metavar = "K=V", help = "environment variable" },
  hostname = { kind = "string", help = "host name" },
  workdir = { kind = "string", short = "w", help = "working directory" },
  user = { kind = "string", short = "u", help = "user (name or uid[:gid])" },
  cmd = { kind = "string", help = "command, run by /bin/sh -c" },
}

local function changes_from(opts)
  local c = {}
  if opts.memory then c.memory = math.tointeger(opts.memory) or cli.fail("--memory: expected an integer") end
  if opts.cpus then c.cpus = math.tointeger(opts.cpus) or cli.fail("--cpus: expected an integer") end
  if opts["cpu-max"] then c.cpu_max = math.tointeger(opts["cpu-max"]) or cli.fail("--cpu-max: expected an integer") end
  if opts.network then c.network = opts.network ~= "none" and opts.network or false end
  if opts.publish and #opts.publish > 0 then c.ports = opts.publish end
  if opts.volume and #opts.volume > 0 then c.mounts = opts.volume end
  if opts.env and #opts.env > 0 then c.env = opts.env end
  c.hostname, c.workdir, c.user = opts.hostname, opts.workdir, opts.user
  if opts.cmd then c.command = opts.cmd end
  if opts.name then c.name = opts.name end
  return c
end

local function show(plan)
  local function kv(k, v) if v ~= nil and v ~= "" then print(("%-12s %s"):format(k, v)) end end
  kv("Name:", plan.Name)
  kv("State:", plan.State)
  kv("Image:", plan.Image .. " (" .. plan.ImageId:sub(1, 12) .. ")")
  kv("HostName:", plan.HostName)
  kv("CPUs:", plan.Processor and plan.Processor.Count)
  kv("Memory:", plan.Memory and plan.Memory.SizeInMB and (plan.Memory.SizeInMB .. " MB"))
  if plan.Network then
    local ports = {}
    for _, p in ipairs(plan.Network.PortMappings or {}) do
      ports[#ports + 1] = ("%s->%s/%s"):format(p.ExternalPort, p.InternalPort, (p.Protocol or "TCP"):lower())
    end
    kv("Network:", plan.Network.Name .. (#ports > 0 and (" (" .. table.concat(ports, ", ") .. ")") or ""))
  end
  for _, m in ipairs(plan.MappedDirectories or {}) do
    kv("Mount:", m.HostPath .. " -> " .. m.ContainerPath .. (m.ReadOnly and " (ro)" or ""))
  end
  kv("Command:", plan.Command and table.concat(plan.Command, " "))
end

local function pick(opts, extra)
  local t = {}
  for k, v in pairs(custom_opts) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  t.json = json_flag
  return t
end

local subcommands = {
  create = {
    summary = "plan a system from an image (DefinePlannedSystem)",
    usage = "hcs plan create IMAGE [--name NAME] [--memory MB] [--cpus N] [--network NET] [-p H:C] [-v H:C] ...",
    options = pick(nil, { name = { kind = "string", short = "n", help = "system name (default: the image name)" },
      pull = require("hcs.util.registry_cli").pull_option }),
    min_args = 1,
    max_args = 1,
    run = function(opts, args)
      local c = changes_from(opts)
      c.image = args[1]
      c.pull = opts.pull
      if c.pull and not hcs.registry.policies[c.pull] then cli.fail("--pull expects missing, always or never") end
      local ok, plan = pcall(hcs.workflow.plan, c)
      if not ok then cli.fail("%s", tostring(plan)) end
      cli.output(opts, plan, show)
    end,
  },
  customize = {
    summary = "change a planned system (name, CPU, memory, network, mounts, env, command)",
    usage = "hcs plan customize NAME [--name NEW] [--memory MB] [--cpus N] [--network NET] ...",
    options = pick(nil, { name = { kind = "string", short = "n", help = "rename" } }),
    min_args = 1,
    max_args = 1,
    run = function(opts, args)
      local ok, plan = pcall(hcs.workflow.customize, args[1], changes_from(opts))
      if not ok then cli.fail("%s", tostring(plan)) end
      cli.output(opts, plan, show)
    end,
  },
  validate = {
    summary = "check a planned system against this host (all problems at once)",
    usage = "hcs plan validate NAME",
    min_args = 1,
    max_args = 1,
    run = function(_, args)
      local ok, problems = hcs.workflow.validate(args[1])
      if ok then
        print(args[1] .. ": valid")
        return 0
      end
      if type(problems) == "string" then cli.fail("%s", problems) end
      io.stderr:write(args[1] .. ": not valid\n")
      for _, p in ipairs(problems) do io.stderr:write("  - " .. p .. "\n") end
      return 1
    end,
  },
  show = {
    summary = "show a planned or realized system",
    usage = "hcs plan show NAME [--json]",
    options = { json = json_flag },
    min_args = 1,
    max_args = 1,
    run = function(opts, args)
      local plan = cli.check(hcs.workflow.plans.load(args[1]))
      cli.output(opts, plan, show)
    end,
  },
  ls = {
    summary = "list planned and realized systems",
    usage = "hcs plan ls [--json|-q]",
    options = { json = json_flag, quiet = cli.quiet_option },
    max_args = 0,
    run = function(opts)
      -- Listing finishes what killed processes left (interrupted realizes,
      -- stopped auto-remove systems) first.
      local _, failures = hcs.workflow.recover()
      for _, f in ipairs(failures) do io.stderr:write("hcs plan ls: " .. f .. "\n") end
      local rows = {}
      for _, name in ipairs(hcs.workflow.plans.list()) do
        local p = hcs.workflow.plans.load(name)
        if p then rows[#rows + 1] = p end
      end
      cli.output(opts, rows, function(list)
        cli.print_table({
          { key = "Name", title = "NAME" }, { key = "State", title = "STATE" }, { key = "Image", title = "IMAGE" },
          { key = function(r) return r.Memory and r.Memory.SizeInMB or "" end, title = "MEMORY(MB)" },
          { key = function(r) return r.Processor and r.Processor.Count or "" end, title = "CPUS" },
          { key = function(r) return r.Network and r.Network.Name or "" end, title = "NETWORK" },
        }, list)
      end, "Name")
    end,
  },
  rm = {
    summary = "remove a planned (not realized) system",
    usage = "hcs plan rm NAME",
    min_args = 1,
    max_args = 1,
    run = function(_, args)
      local cleaned = hcs.workflow.recover(nil, { args[1] }) -- a realize killed half-way is rolled back first
      local plan, err = hcs.workflow.plans.load(args[1])
      if not plan and #cleaned > 0 then return 0 end -- that realize's plan was `run`'s own
      cli.check(plan, err)
      if plan.State ~= "Planned" then cli.fail("%q is %s: use 'hcs destroy %s'", args[1], plan.State:lower(), args[1]) end
      cli.check(hcs.workflow.plans.remove(args[1]))
    end,
  },
}

return {
  summary = "planned systems: create, customize, validate, show, ls, rm",
  usage = "hcs plan SUBCOMMAND [options]",
  subcommands = subcommands,
}
