--- hcs.vm: virtual machine compute systems.  This part: the guest
-- initramfs that `hcs vm initrd` builds (docs/vm-agent.md).
local core = require "hcs.core"

local vm = {}

--- vm.initrd{modules = DIR, kernel = VERSION, output = FILE [, agent = FILE] [, busybox = FILE]}
-- Build a gzip'd cpio initramfs: hcs-agent as /init, busybox, and the VM's
-- kernel modules (virtio, virtio-serial, 9p, network, overlay, ext4) with
-- their dependencies.  Returns {Path, KernelVersion, Size, Modules, Builtin,
-- Agent}, or nil, message, errno.
function vm.initrd(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'initrd' (table expected, got " .. type(opts) .. ")", 2) end
  return core.vm_initrd.build {
    modules_dir = opts.modules, kernel_version = opts.kernel, output = opts.output,
    agent = opts.agent, busybox = opts.busybox,
  }
end

return vm
