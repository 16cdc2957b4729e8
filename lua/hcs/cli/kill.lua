--- `hcs kill ID...`: terminate compute systems (SIGKILL to every process).
local cu = require "hcs.util.compute_cli"

return {
  summary = "terminate compute systems",
  usage = "hcs kill ID...",
  options = {},
  min_args = 1,
  run = function(_, ids) return cu.each(ids, function(cs) return cs:terminate() end) end,
}
