--- hcs: the Lua face of libhcs.
-- `local hcs = require "hcs"` gives hcs.compute, hcs.process, hcs.layer,
-- hcs.net, hcs.image, hcs.registry, hcs.workflow, hcs.events, hcs.loop and hcs.vm (each present once its subsystem is
-- built), plus hcs.json, hcs.host and hcs.version.  No globals are set.
local core = require "hcs.core"

local hcs = {
  version = core.version,
  core = core,
  json = core.json,
  host = core.host,
}

-- Subsystem facades live in lua/hcs/<name>.lua and load on first use
-- (hcs.layer, hcs.net, ...): a CLI command pays only for what it touches.
local subsystems = { "layer", "compute", "process", "net", "image", "registry", "workflow", "events", "loop", "vm", "disk" }
hcs.subsystems = subsystems
local known = {}
for _, name in ipairs(subsystems) do known[name] = true end
setmetatable(hcs, {
  __index = function(t, name)
    if not known[name] then return nil end
    local modname = "hcs." .. name
    if not package.searchpath(modname, package.path) then return nil end
    local m = require(modname)
    rawset(t, name, m)
    return m
  end,
})

--- Print a short guide to the API (for the REPL).
function hcs.help()
  local lines = {
    ("hcs %s: Linux host compute service"):format(hcs.version),
    "",
    "  hcs.host.capabilities()   what this kernel offers (cgroup mode, overlayfs, namespaces)",
    "  hcs.json.encode(t), hcs.json.decode(s)",
  }
  local guides = {
    layer = "  hcs.layer      import/export OCI layers, scratch layers, overlay activation",
    compute = "  hcs.compute    create/start/shutdown/pause/resume compute systems",
    process = "  hcs.process    processes inside a compute system",
    net = "  hcs.net        networks, endpoints, compartments (network namespaces)",
    image = "  hcs.image      the image store: list, import, save, remove",
    registry = "  hcs.registry   images from and to OCI registries: pull, push, find, login",
    workflow = "  hcs.workflow   plan, customize, validate, realize, author, capture",
    events = "  hcs.events     subscribe to system, process, network and endpoint events",
    loop = "  hcs.loop       run coroutines that wait for systems, processes and events",
    vm = "  hcs.vm         virtual machines: the guest initramfs (vm.initrd)",
    disk = "  hcs.disk       virtual disks for VMs: create (raw, qcow2, backing file), resize, inspect",
  }
  for _, name in ipairs(subsystems) do
    if hcs[name] then lines[#lines + 1] = guides[name] end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Tab completes names (hcs.<TAB>); '=expr' or a bare expression prints its value."
  print(table.concat(lines, "\n"))
end

return hcs
