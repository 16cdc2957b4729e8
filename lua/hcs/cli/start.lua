--- `hcs start ID...`: start created compute systems.
local cu = require "hcs.util.compute_cli"

return {
  summary = "start created compute systems",
  usage = "hcs start [--json] ID...",
  options = { json = cu.json_option },
  min_args = 1,
  run = function(opts, ids) return cu.each(opts, ids, function(cs) return cs:start() end) end,
}
