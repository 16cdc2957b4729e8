--- Helpers shared by the compute CLI commands (run, create, exec, ...).
local cli = require "hcs.cli"
local hcs = require "hcs"

local M = {}

--- Options common to `hcs run` and `hcs create`.
M.create_options = {
  rootfs = { kind = "string", metavar = "DIR", help = "root filesystem directory (an activated layer mount)" },
  name = { kind = "string", short = "n", help = "system id (default: random)" },
  memory = { kind = "number", short = "m", metavar = "MB", help = "memory limit in MB (Memory.SizeInMB)" },
  cpus = { kind = "number", metavar = "N", help = "processor count (Processor.Count)" },
  ["cpu-max"] = { kind = "number", metavar = "N", help = "processor maximum in 1/10000 of the host (Processor.Maximum)" },
  volume = { kind = "list", short = "v", metavar = "HOST:CTR[:ro]", help = "mapped directory (repeatable)" },
  env = { kind = "list", short = "e", metavar = "K=V", help = "environment variable (repeatable)" },
  user = { kind = "string", short = "u", help = "user (name or uid[:gid])" },
  workdir = { kind = "string", short = "w", metavar = "DIR", help = "working directory" },
  hostname = { kind = "string", help = "host name (default: the id)" },
  netns = { kind = "string", metavar = "ID|PATH", help = "network namespace to join (default: a new one)" },
  owner = { kind = "string", help = "Owner field (default hcs)" },
  ["cgroup-parent"] = { kind = "string", metavar = "PATH", help = "cgroup parent (default hcs)" },
  tty = { kind = "flag", short = "t", help = "give init a console (pty)" },
  json = { kind = "flag", short = "j", help = "print JSON" },
}

local function is_dir(path)
  local f = io.open(path .. "/.", "r")
  if f then f:close() return true end
  return false
end

--- Build the configuration from options and positionals (ROOTFS_OR_CONFIG [cmd...]).
function M.build_config(opts, args)
  local first = args[1]
  local command = { table.unpack(args, 2) }
  local doc
  if opts.rootfs then
    command = args
  elseif first and not is_dir(first) then
    local f = io.open(first, "r")
    if not f then cli.fail("'%s' is neither a directory nor a readable config file", first) end
    local text = f:read("a")
    f:close()
    local ok, parsed = pcall(hcs.json.decode, text)
    if not ok then cli.fail("config '%s': %s", first, tostring(parsed)) end
    doc = parsed
  end
  if not doc then
    local rootfs = opts.rootfs or first
    if not rootfs then cli.fail("give a rootfs directory (or --rootfs DIR) or a config file") end
    -- The document wants an absolute path; on the command line a relative
    -- one means the working directory's, as for any other tool.
    if rootfs:sub(1, 1) ~= "/" then rootfs = require("lfs").currentdir() .. "/" .. rootfs end
    local err
    doc, err = hcs.compute.config {
      rootfs = rootfs, owner = opts.owner, hostname = opts.hostname, memory = opts.memory, cpus = opts.cpus,
      cpu_max = opts["cpu-max"], mounts = opts.volume, netns = opts.netns, cgroup_parent = opts["cgroup-parent"],
      command = command, tty = opts.tty, env = opts.env, user = opts.user, workdir = opts.workdir,
    }
    if not doc then cli.fail("%s", err) end
  elseif #command > 0 then
    doc.Linux = doc.Linux or {}
    doc.Linux.Init = { CommandArgs = command, EmulateConsole = opts.tty or nil }
  end
  return doc
end

function M.open(id)
  return cli.check(hcs.compute.open(id))
end

--- Apply fn(system) to each id; prints each id (or, with --json, a list of
-- {Id, Ok, Error}); fails at the end (status 1) if any failed.
function M.each(opts, ids, fn)
  local failed, results = 0, {}
  for _, id in ipairs(ids) do
    local cs, err = hcs.compute.open(id)
    local ok, msg = cs, err
    if cs then ok, msg = fn(cs) end
    if not ok then
      failed = failed + 1
      results[#results + 1] = { Id = id, Ok = false, Error = tostring(msg) }
      if not opts.json then io.stderr:write(("hcs: %s: %s\n"):format(id, tostring(msg))) end
    else
      results[#results + 1] = { Id = id, Ok = true }
      if not opts.json then print(id) end
    end
    if cs then cs:close() end
  end
  if opts.json then cli.print_json(results) end
  if failed > 0 then return 1 end
  return 0
end

M.json_option = { kind = "flag", short = "j", help = "print JSON" }

return M
