--- `hcs destroy NAME`: stop and remove a realized system and all it used.
local cli = require "hcs.cli"
local hcs = require "hcs"

return {
  summary = "stop and remove a realized system (compute system, network, scratch layer, plan)",
  usage = "hcs destroy NAME [--keep-plan]",
  options = { ["keep-plan"] = { kind = "flag", help = "keep the plan (back to Planned)" } },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local ok, sys = pcall(hcs.workflow.open, args[1])
    if not ok then cli.fail("%s", tostring(sys)) end
    cli.check(hcs.workflow.destroy(sys, { keep_plan = opts["keep-plan"] }))
  end,
}
