--- `hcs disk create|resize|inspect`: virtual disks for VMs (qemu-img).
local cli = require "hcs.cli"
local hcs = require "hcs"

local json_opt = { kind = "flag", short = "j", help = "print JSON" }

local function human(n)
  if type(n) ~= "number" then return "?" end
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[i])
end

return {
  summary = "manage virtual disks for VMs (raw, qcow2, backing files)",
  subcommands = {
    create = {
      summary = "create a disk image",
      usage = "hcs disk create [--format qcow2|raw] [--size SIZE] [--backing BASE] [--json] PATH",
      options = {
        format = { kind = "string", help = "qcow2 (default) or raw" },
        size = { kind = "string", help = "virtual size: bytes or N[K|M|G|T] (default with --backing: the base's)" },
        backing = { kind = "string", help = "a read-only base image the new qcow2 disk starts from" },
        json = json_opt,
      },
      min_args = 1,
      max_args = 1,
      run = function(opts, args)
        if not opts.size and not opts.backing then cli.fail("a size is needed (--size SIZE)") end
        local ok, r, msg = pcall(hcs.disk.create, args[1], { format = opts.format, size = opts.size, backing = opts.backing })
        if not ok then cli.fail("%s", r) end
        cli.check(r, msg)
        local info = cli.check(hcs.disk.inspect(args[1]))
        cli.output(opts, info, function() print(args[1]) end)
        return 0
      end,
    },
    resize = {
      summary = "grow a disk (or shrink it with --shrink)",
      usage = "hcs disk resize [--shrink] PATH SIZE",
      options = { shrink = { kind = "flag", help = "allow shrinking (data past the new end is lost)" } },
      min_args = 2,
      max_args = 2,
      run = function(opts, args)
        local ok, r, msg = pcall(hcs.disk.resize, args[1], args[2], opts.shrink)
        if not ok then cli.fail("%s", r) end
        cli.check(r, msg)
        return 0
      end,
    },
    inspect = {
      summary = "show a disk's format, sizes and backing file",
      usage = "hcs disk inspect [--json] PATH",
      options = { json = json_opt },
      min_args = 1,
      max_args = 1,
      run = function(opts, args)
        local info = cli.check(hcs.disk.inspect(args[1]))
        cli.output(opts, info, function(v)
          print(("path:    %s"):format(v.Path))
          print(("format:  %s"):format(v.Format))
          print(("size:    %s (%s on disk)"):format(human(v.VirtualSize), human(v.ActualSize)))
          if v.BackingFile then print(("backing: %s (%s)"):format(v.BackingFile, v.BackingFormat or "?")) end
        end)
        return 0
      end,
    },
  },
}
