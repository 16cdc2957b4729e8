--- `hcs info`: version and what this host offers hcs.
local cli = require "hcs.cli"
local hcs = require "hcs"

local function yesno(b) return b and "yes" or "no" end

return {
  summary = "show the hcs version and the host's capabilities",
  usage = "hcs info [--json]",
  options = { json = { kind = "flag", short = "j", help = "print JSON" } },
  max_args = 0,
  run = function(opts)
    local caps = cli.check(hcs.host.capabilities())
    -- The accelerator of virtual machines (docs/vm.md): probed by the first VM.
    caps.VirtualMachines = hcs.compute.accelerator()
    cli.output(opts, caps, function(c)
      local ns = {}
      for name, present in pairs(c.Namespaces) do
        if present then ns[#ns + 1] = name end
      end
      table.sort(ns)
      print(("hcs %s"):format(c.Version))
      print(("kernel:      %s %s"):format(c.Kernel.Release, c.Kernel.Machine))
      print(("cgroups:     %s (%s)%s"):format(c.Cgroup.Mode, table.concat(c.Cgroup.Controllers, ","),
        c.Cgroup.V2Path and (", cgroup2 at " .. c.Cgroup.V2Path) or ""))
      print(("overlayfs:   %s"):format(yesno(c.Overlayfs)))
      print(("namespaces:  %s"):format(table.concat(ns, " ")))
      print(("seccomp:     %s"):format(yesno(c.Seccomp)))
      print(("root:        %s"):format(yesno(c.Root)))
      local vm = c.VirtualMachines
      if vm then print(("vm accel:    %s (%s)"):format(vm.Accelerator or "not probed", vm.Reason)) end
    end)
    return 0
  end,
}
