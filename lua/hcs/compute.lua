--- hcs.compute: compute systems (HCS on Linux namespaces and cgroups).
-- `hcs.compute.create(id, config [, {root=, stdio="inherit"|"null"|"log"}])` -> system
-- `hcs.compute.open(id [, root])`, `hcs.compute.enumerate([filter [, root]])`,
-- `hcs.compute.validate(config)`.  System methods: start, shutdown([ms]),
-- terminate, pause, resume, properties([types]), modify(req), wait([ms]),
-- event_fd, stdio, resize(rows, cols), logs([opts]), delete([force]), create_process(params
-- [, opts]), close; start_async, shutdown_async([ms]), terminate_async,
-- pause_async, resume_async, delete_async([force]) -> an operation
-- (op:wait([ms]), op:fd(), op:cancel(); docs/events.md).  Failures return nil, message, errno; closing a handle
-- never stops the system.
local core = require("hcs.core").compute
-- op:wait() of the _async methods (start_async, shutdown_async, ...).
require "hcs.loop"

local M = {
  create = core.create,
  open = core.open,
  validate = core.validate,
  enumerate = core.enumerate,
  relay = core.relay,
  terminal_size = core.terminal_size,
  -- Virtual machines (docs/vm.md): a new system from a saved state; the
  -- accelerator VMs use.  `cs:save(path)` saves one.
  restore = core.restore,
  accelerator = core.accelerator,
}

--- A fresh random id (12 hex digits).
function M.new_id()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(6)
  f:close()
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- Build a configuration document from simple options:
-- { rootfs = DIR, owner =, hostname =, memory = MB, cpus = N (count), cpu_max = 1..10000,
--   mounts = { "host:container[:ro]" }, netns = id-or-path, cgroup_parent =,
--   command = { argv }, tty = bool, env = { "K=V" }, user =, workdir =, stdin = bool,
--   namespaces = { pid = PATH, ipc =, uts =, mount =, cgroup =, time = } (joined by path) }
function M.config(o)
  local doc = {
    Owner = o.owner or "hcs",
    SchemaVersion = { Major = 2, Minor = 1 },
    Container = { Storage = { Path = o.rootfs } },
  }
  local c = doc.Container
  if o.hostname then c.GuestOs = { HostName = o.hostname } end
  if o.memory then c.Memory = { SizeInMB = math.tointeger(o.memory) or o.memory } end
  if o.cpus or o.cpu_max then
    c.Processor = { Count = o.cpus and math.tointeger(o.cpus) or nil, Maximum = o.cpu_max }
  end
  if o.netns then c.Networking = { Namespace = o.netns } end
  if o.mounts and #o.mounts > 0 then
    c.MappedDirectories = {}
    for _, m in ipairs(o.mounts) do
      local host, ctr, opt = m:match("^([^:]+):([^:]+):?(.*)$")
      if not host then return nil, ("invalid mount '%s' (expected HOST:CONTAINER[:ro])"):format(m) end
      c.MappedDirectories[#c.MappedDirectories + 1] = { HostPath = host, ContainerPath = ctr, ReadOnly = opt == "ro" }
    end
  end
  local linux = {}
  if o.cgroup_parent then linux.CgroupParent = o.cgroup_parent end
  -- namespaces = { pid = PATH, ipc = PATH, ... }: joined instead of new
  if o.namespaces and next(o.namespaces) then
    linux.Namespaces = {}
    for kind, path in pairs(o.namespaces) do
      local field = kind:sub(1, 1):upper() .. kind:sub(2):lower()
      if field == "Mnt" then field = "Mount" end
      linux.Namespaces[field] = path
    end
  end
  if o.command and #o.command > 0 then
    local init = { CommandArgs = o.command, EmulateConsole = o.tty or nil, User = o.user, WorkingDirectory = o.workdir }
    if o.env and #o.env > 0 then
      init.Environment = {}
      for _, kv in ipairs(o.env) do
        local k, v = kv:match("^([^=]+)=(.*)$")
        if not k then return nil, ("invalid environment entry '%s' (expected K=V)"):format(kv) end
        init.Environment[k] = v
      end
    end
    linux.Init = init
  end
  if next(linux) then doc.Linux = linux end
  return doc
end

return M
