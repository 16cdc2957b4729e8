--- `hcs realize NAME`: turn a planned system into a running compute system.
local cli = require "hcs.cli"
local hcs = require "hcs"

return {
  summary = "realize a planned system (scratch layer, network, compute system) and start it",
  usage = "hcs realize NAME [--idle] [--no-start] [--json]",
  options = {
    idle = { kind = "flag", help = "start an idle init instead of the command (for authoring)" },
    ["no-start"] = { kind = "flag", help = "create the system but do not start it" },
    json = { kind = "flag", short = "j", help = "print JSON" },
  },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local ok, sys = pcall(hcs.workflow.realize, args[1], { idle = opts.idle, start = not opts["no-start"] })
    if not ok then cli.fail("%s", tostring(sys)) end
    local props = sys:properties() or {}
    cli.output(opts, { Name = sys.plan.Name, State = props.State, Realized = sys.plan.Realized }, function(v)
      print(("%s: %s"):format(v.Name, v.State or "?"))
    end)
  end,
}
