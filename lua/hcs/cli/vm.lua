--- `hcs vm save|restore|accel|initrd`: what only virtual machines have
-- (docs/vm.md); `hcs vm initrd` builds the guest initramfs (docs/vm-agent.md).
-- The other verbs (create DOC.json, start, stop, kill, pause, resume, rm,
-- inspect, list) take VMs as they take containers.
local cli = require "hcs.cli"
local hcs = require "hcs"
local args_util = require "hcs.util.args"

local json_opt = { kind = "flag", short = "j", help = "print JSON" }

local initrd = {
  summary = "build the guest initramfs: hcs-agent as /init, busybox and the VM's kernel modules",
  usage = "hcs vm initrd --kernel-modules DIR [--kernel VERSION] [--agent FILE] [--busybox FILE] -o FILE",
  options = {
    ["kernel-modules"] = { kind = "string", metavar = "DIR",
      help = "a kernel's modules: /lib/modules/VERSION, or /lib/modules with --kernel" },
    kernel = { kind = "string", metavar = "VERSION", help = "the kernel version (a directory of --kernel-modules)" },
    output = { kind = "string", short = "o", metavar = "FILE", help = "the initramfs to write (atomically)" },
    agent = { kind = "string", metavar = "FILE", help = "the guest agent (default: the hcs-agent of this build)" },
    busybox = { kind = "string", metavar = "FILE", help = "a static busybox (default /bin/busybox, busybox-static)" },
    json = { kind = "flag", short = "j", help = "print JSON" },
  },
  max_args = 0,
  run = function(opts)
    if not opts["kernel-modules"] then args_util.usage_error("option '--kernel-modules' is required") end
    if not opts.output then args_util.usage_error("option '-o' (--output) is required") end
    local sum = cli.check(hcs.vm.initrd {
      modules = opts["kernel-modules"], kernel = opts.kernel, output = opts.output,
      agent = opts.agent, busybox = opts.busybox,
    })
    cli.output(opts, sum, function(s)
      print(("%s: kernel %s, %d modules, %d bytes"):format(s.Path, s.KernelVersion, #s.Modules, s.Size))
    end)
    return 0
  end,
}

return {
  summary = "save, restore virtual machines; show the accelerator; build the guest initramfs",
  subcommands = {
    initrd = initrd,
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
