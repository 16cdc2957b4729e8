--- `hcs resume ID...`: thaw paused compute systems.
local cu = require "hcs.util.compute_cli"

return {
  summary = "resume paused compute systems",
  usage = "hcs resume [--json] ID...",
  options = { json = cu.json_option },
  min_args = 1,
  run = function(opts, ids) return cu.each(opts, ids, function(cs) return cs:resume() end) end,
}
