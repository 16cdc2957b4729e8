--- `hcs pause ID...`: freeze every process of compute systems.
local cu = require "hcs.util.compute_cli"

return {
  summary = "pause compute systems (cgroup freezer)",
  usage = "hcs pause [--json] ID...",
  options = { json = cu.json_option },
  min_args = 1,
  run = function(opts, ids) return cu.each(opts, ids, function(cs) return cs:pause() end) end,
}
