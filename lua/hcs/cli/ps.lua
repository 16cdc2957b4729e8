--- `hcs ps [ID]`: processes of a compute system (`docker top`), or without
-- ID the running systems (`docker ps`; -a: all of them, as `hcs list`).
local cli = require "hcs.cli"
local cu = require "hcs.util.compute_cli"

return {
  summary = "list the processes of a compute system (without ID: list running systems)",
  usage = "hcs ps [--json|-q] [-a] [ID]",
  description = "Without ID, as docker ps: the running and paused systems, -a all of them (hcs list).",
  options = { json = { kind = "flag", short = "j", help = "print JSON" }, quiet = cli.quiet_option,
    all = { kind = "flag", short = "a", help = "without ID: stopped and created systems too" } },
  max_args = 1,
  run = function(opts, args)
    if not args[1] then
      local list = require("hcs.cli.list").list
      if opts.all then return list(opts) end
      return list(opts, function(s) return s.State == "Running" or s.State == "Paused" end)
    end
    local cs <close> = cu.open(args[1])
    local p = cli.check(cs:properties { "ProcessList" })
    local procs = p.ProcessList or {}
    cli.output(opts, procs, function(rows)
      cli.print_table({ { key = "ProcessId", title = "PID" }, { key = "ImageName", title = "NAME" },
        { key = "CommandLine", title = "COMMAND" } }, rows)
    end, "ProcessId")
    return 0
  end,
}
