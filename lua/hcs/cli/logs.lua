--- `hcs logs [-f] [--since T] [--until T] [--tail N] [-t] ID`: a compute
-- system's log (init's output and that of detached processes, CRI format
-- in the run root), as `podman logs` prints it.
local cli = require "hcs.cli"
local cu = require "hcs.util.compute_cli"
local args_util = require "hcs.util.args"

local function usage_error(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, args_util.UsageError), 0)
end

local units = { s = 1, m = 60, h = 3600, d = 86400 }

--- "2026-12-06T17:00:00Z" (or with an offset), a Unix time, or a duration
-- back from now ("10m", "1h30m", "45s") -> seconds since the epoch.
local function parse_time(text, what)
  local n = tonumber(text)
  if n then return n end
  local y, mo, d, h, mi, s, frac, zone = text:match("^(%d%d%d%d)-(%d%d)-(%d%d)[T ](%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
  if y then
    local offset = 0
    if zone ~= "Z" and zone ~= "" then
      local sign, zh, zm = zone:match("^([+-])(%d%d):?(%d%d)$")
      if not sign then usage_error("--%s: bad time zone in '%s'", what, text) end
      offset = (tonumber(zh) * 3600 + tonumber(zm) * 60) * (sign == "+" and 1 or -1)
    end
    -- os.time reads a local time: correct by the local offset at that instant.
    local t = { year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h), min = tonumber(mi),
      sec = tonumber(s) }
    local here = os.time(t)
    local utc = os.time(os.date("!*t", here))
    return here + (here - utc) - offset + (tonumber("0" .. frac) or 0)
  end
  local total, rest = 0, text
  while #rest > 0 do
    local num, unit, tail = rest:match("^(%d+%.?%d*)([smhd])(.*)$")
    if not num then usage_error("--%s: expected a time (RFC 3339, Unix seconds or a duration like 10m), got '%s'",
      what, text) end
    total, rest = total + tonumber(num) * units[unit], tail
  end
  return os.time() - total
end

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
