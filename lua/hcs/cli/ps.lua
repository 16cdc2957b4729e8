--- `hcs ps [ID]`: processes of a compute system (or, without ID, the systems).
local cli = require "hcs.cli"
local cu = require "hcs.util.compute_cli"

return {
  summary = "list the processes of a compute system (without ID: list systems)",
  usage = "hcs ps [--json|-q] [ID]",
  options = { json = { kind = "flag", short = "j", help = "print JSON" }, quiet = cli.quiet_option },
  max_args = 1,
  run = function(opts, args)
    if not args[1] then return require("hcs.cli.list").list(opts) end
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
