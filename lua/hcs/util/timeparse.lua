--- Times given on the command line (`logs`, `events`): RFC 3339, Unix
-- seconds, or a duration back from now; -> seconds since the epoch.
local args_util = require "hcs.util.args"

local M = {}

local function usage_error(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, args_util.UsageError), 0)
end

local units = { s = 1, m = 60, h = 3600, d = 86400 }

--- "2026-12-06T17:00:00Z" (or with an offset), a Unix time, or a duration
-- back from now ("10m", "1h30m", "45s") -> seconds since the epoch.
function M.parse(text, what)
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

return M
