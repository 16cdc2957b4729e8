--- `hcs rm [-f] ID...`: delete stopped compute systems.
local cu = require "hcs.util.compute_cli"

return {
  summary = "delete compute systems (running ones need --force)",
  usage = "hcs rm [--json] [-f] ID...",
  options = { json = cu.json_option, force = { kind = "flag", short = "f", help = "terminate running systems first" } },
  min_args = 1,
  run = function(opts, ids) return cu.each(opts, ids, function(cs) return cs:delete(opts.force) end) end,
}
