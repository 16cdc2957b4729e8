--- `hcs kill ID...`: terminate compute systems (SIGKILL to every process).
local cu = require "hcs.util.compute_cli"

return {
  summary = "terminate compute systems",
  usage = "hcs kill [--json] ID...",
  options = { json = cu.json_option },
  min_args = 1,
  run = function(opts, ids) return cu.each(opts, ids, function(cs) return cs:terminate() end) end,
}
