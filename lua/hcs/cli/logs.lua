--- `hcs logs [-f] [--since T] [--until T] [--tail N] [-t] ID`: a compute
-- system's log (init's output and that of detached processes, CRI format
-- in the run root), as `podman logs` prints it.
local cli = require "hcs.cli"
local cu = require "hcs.util.compute_cli"

local parse_time = require("hcs.util.timeparse").parse

return {
  summary = "print a compute system's log",
  usage = "hcs logs [-f] [--since TIME] [--until TIME] [--tail N] [-t] ID",
  description = "Init's output and that of processes run with `exec -d`, for systems created with the log\n" ..
    "(`hcs create`, `hcs run -d`).  stdout goes to stdout, stderr to stderr.  TIME is RFC 3339,\n" ..
    "Unix seconds, or a duration back from now (10m, 1h30m).  -f follows until the system stops.",
  options = {
    follow = { kind = "flag", short = "f", help = "follow the log until the system stops" },
    since = { kind = "string", metavar = "TIME", help = "only messages at or after TIME" },
    ["until"] = { kind = "string", metavar = "TIME", help = "only messages at or before TIME" },
    tail = { kind = "string", short = "n", metavar = "N", help = "only the last N messages" },
    timestamps = { kind = "flag", short = "t", help = "print each message's timestamp" },
  },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local tail
    if opts.tail then
      tail = math.tointeger(tonumber(opts.tail))
      if not tail or tail < 0 then usage_error("--tail: expected a count, got '%s'", opts.tail) end
    end
    local cs <close> = cu.open(args[1])
    cli.check(cs:logs { follow = opts.follow, timestamps = opts.timestamps, tail = tail,
      since = opts.since and parse_time(opts.since, "since"), ["until"] = opts["until"] and parse_time(opts["until"], "until") })
    return 0
  end,
}
