--- `hcs stop [-t SECONDS] ID...`: graceful shutdown (SIGTERM, then terminate).
local cu = require "hcs.util.compute_cli"

return {
  summary = "shut compute systems down (SIGTERM to init, terminate after a timeout)",
  usage = "hcs stop [--json] [-t SECONDS] ID...",
  options = {
    json = cu.json_option,
    time = { kind = "number", short = "t", metavar = "SECONDS", help = "grace period (default 10)" },
  },
  min_args = 1,
  run = function(opts, ids)
    local ms = math.floor((opts.time or 10) * 1000)
    return cu.each(opts, ids, function(cs) return cs:shutdown(ms) end)
  end,
}
