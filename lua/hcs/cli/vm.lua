--- `hcs vm ...`: virtual machines.  `hcs vm initrd` builds the guest
-- initramfs (docs/vm-agent.md); each subcommand is its own table.
local cli = require "hcs.cli"
local hcs = require "hcs"
local args_util = require "hcs.util.args"

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
  summary = "virtual machines",
  subcommands = { initrd = initrd },
}
