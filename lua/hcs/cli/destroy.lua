--- `hcs destroy NAME`: stop and remove a realized system and all it used.
-- Idempotent: whatever is already gone (the compute system after `hcs rm`,
-- anything a killed realize did not make) is skipped.  `--auto` is what the
-- monitor of an auto-remove system (`hcs run --rm`) runs once it stopped.
local cli = require "hcs.cli"
local hcs = require "hcs"

return {
  summary = "stop and remove a realized system (compute system, network, scratch layer, plan)",
  usage = "hcs destroy NAME [--keep-plan] [-f]",
  options = {
    ["keep-plan"] = { kind = "flag", help = "keep the plan (back to Planned)" },
    force = { kind = "flag", short = "f", help = "kill the system instead of stopping it gracefully" },
    auto = { kind = "flag", help = "auto-remove (run by the monitor): only when no attached `run --rm` will" },
  },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local wf = hcs.workflow
    local name = args[1]
    if opts.auto then
      -- Stale means: not Realizing under a live process, and no live
      -- attached `hcs run --rm` that reads the exit status and destroys.
      local plan = wf.plans.load(name)
      if not plan or not require("hcs.workflow.journal").stale(plan) then return 0 end
    end
    cli.check(wf.destroy_named(name, nil, { keep_plan = opts["keep-plan"], kill = opts.force }))
  end,
}
