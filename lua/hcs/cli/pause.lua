--- `hcs pause ID...`: freeze every process of compute systems.
local cu = require "hcs.util.compute_cli"

return {
  summary = "pause compute systems (cgroup freezer)",
  usage = "hcs pause ID...",
  options = {},
  min_args = 1,
  run = function(_, ids) return cu.each(ids, function(cs) return cs:pause() end) end,
}
