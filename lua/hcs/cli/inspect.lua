--- `hcs inspect ID`: a compute system's properties as JSON.
local cli = require "hcs.cli"
local cu = require "hcs.util.compute_cli"

return {
  summary = "show a compute system's properties (JSON)",
  usage = "hcs inspect [--json] ID",
  options = { json = { kind = "flag", short = "j", help = "print JSON (the default)" } },
  min_args = 1,
  max_args = 1,
  run = function(_, args)
    local cs <close> = cu.open(args[1])
    cli.print_json(cli.check(cs:properties { "Statistics", "ProcessList" }))
    return 0
  end,
}
