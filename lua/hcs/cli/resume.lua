--- `hcs resume ID...`: thaw paused compute systems.
local cu = require "hcs.util.compute_cli"

return {
  summary = "resume paused compute systems",
  usage = "hcs resume ID...",
  options = {},
  min_args = 1,
  run = function(_, ids) return cu.each(ids, function(cs) return cs:resume() end) end,
}
