--- `hcs start ID...`: start created compute systems.
local cu = require "hcs.util.compute_cli"

return {
  summary = "start created compute systems",
  usage = "hcs start ID...",
  options = {},
  min_args = 1,
  run = function(_, ids) return cu.each(ids, function(cs) return cs:start() end) end,
}
