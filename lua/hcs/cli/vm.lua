--- `hcs vm save|restore|accel`: what only virtual machines have (docs/vm.md).
-- The other verbs (create DOC.json, start, stop, kill, pause, resume, rm,
-- inspect, list) take VMs as they take containers.
local cli = require "hcs.cli"
local hcs = require "hcs"

local json_opt = { kind = "flag", short = "j", help = "print JSON" }

return {
  summary = "save, restore virtual machines; show the accelerator",
  subcommands = {
    save = {
      summary = "save a VM's memory and device state to a file (the VM stays Paused)",
      usage = "hcs vm save [--json] ID FILE",
      options = { json = json_opt },
      min_args = 2,
      max_args = 2,
      run = function(opts, args)
        local cs = cli.check(hcs.compute.open(args[1]))
        cli.check(cs:save(args[2]))
        cs:close()
        cli.output(opts, { Id = args[1], SaveStateFilePath = args[2] }, function() print(args[1]) end)
        return 0
      end,
    },
    restore = {
      summary = "create a VM from a saved state (Created; `hcs start ID` continues it)",
      usage = "hcs vm restore [--name ID] [--start] [--json] FILE",
      options = {
        name = { kind = "string", help = "id of the new system (default: a new id)" },
        start = { kind = "flag", help = "start it at once" },
        json = json_opt,
      },
      min_args = 1,
      max_args = 1,
      run = function(opts, args)
        local id = opts.name or hcs.compute.new_id()
        local cs = cli.check(hcs.compute.restore(id, args[1]))
        if opts.start then cli.check(cs:start()) end
        cs:close()
        cli.output(opts, { Id = id }, function() print(id) end)
        return 0
      end,
    },
    accel = {
      summary = "the accelerator VMs use (kvm or tcg) and why",
      usage = "hcs vm accel [--json]",
      options = { json = json_opt },
      max_args = 0,
      run = function(opts)
        local a = cli.check(hcs.compute.accelerator())
        cli.output(opts, a, function(v) print(("%s: %s"):format(v.Accelerator or "unknown", v.Reason)) end)
        return 0
      end,
    },
  },
}
