--- `hcs events [--since T] [--until T] [--filter key=value]... [--json]`:
-- the event journal of the state root, as `podman events` shows it.
local cli = require "hcs.cli"
local hcs = require "hcs"
local parse_time = require("hcs.util.timeparse").parse

local keys = { id = "Ids", container = "Ids", system = "Ids", owner = "Owners", type = "Types", event = "Actions",
  action = "Actions" }

local function attributes(e)
  local parts = {}
  for k, v in pairs(e.Attributes or {}) do
    if type(v) ~= "table" then parts[#parts + 1] = ("%s=%s"):format(k, tostring(v)) end
  end
  table.sort(parts)
  if e.Owner then table.insert(parts, 1, "owner=" .. e.Owner) end
  return #parts > 0 and (" (" .. table.concat(parts, ", ") .. ")") or ""
end

return {
  summary = "show the events of compute systems, processes, networks and endpoints",
  usage = "hcs events [--since TIME] [--until TIME] [--filter KEY=VALUE]... [--no-stream] [--json]",
  description = "Without --until it follows the journal until interrupted (--no-stream: print what is there\n" ..
    "and stop).  KEY is id, owner, type (system, process, network, endpoint) or event (created, started,\n" ..
    "paused, resumed, shutdown, exited, oom, modified, deleted); a key given twice matches either value.",
  options = {
    since = { kind = "string", metavar = "TIME", help = "events at or after TIME (RFC 3339, Unix seconds, 10m)" },
    ["until"] = { kind = "string", metavar = "TIME", help = "events up to TIME, then stop" },
    filter = { kind = "list", short = "f", metavar = "KEY=VALUE", help = "only matching events (repeatable)" },
    ["no-stream"] = { kind = "flag", help = "print the journal's events and stop" },
    json = { kind = "flag", short = "j", help = "one JSON record per line" },
  },
  max_args = 0,
  run = function(opts)
    local filter = {}
    for _, kv in ipairs(opts.filter or {}) do
      local k, v = kv:match("^([^=]+)=(.+)$")
      local key = k and keys[k:lower()]
      if not key then
        error(setmetatable({ message = ("--filter: expected KEY=VALUE with KEY one of id, owner, type, event, got '%s'")
          :format(kv) }, require("hcs.util.args").UsageError), 0)
      end
      filter[key] = filter[key] or hcs.json.array {}
      table.insert(filter[key], v)
    end
    local now = os.time()
    if opts.since then filter.Since = parse_time(opts.since, "since") end
    if opts["until"] then filter.Until = parse_time(opts["until"], "until") end
    -- --no-stream: up to now; and from the journal's start unless --since.
    if opts["no-stream"] then
      filter.Until = filter.Until or now + 1
      filter.Since = filter.Since or 1e-9
    end
    local sub <close> = cli.check(hcs.events.open(filter))
    local have_interrupt, interrupt = pcall(require, "hcs.interrupt")
    local wait = have_interrupt and interrupt.wait or function(fd, ms) return hcs.core.host.poll({ fd }, ms) end
    while true do
      local e, err = sub:next(0)
      if e then
        if opts.json then
          io.stdout:write(hcs.json.encode(e), "\n")
        else
          io.stdout:write(("%s %s %s %s%s\n"):format(e.Time, e.Type, e.Action, e.Id, attributes(e)))
        end
        io.stdout:flush()
      elseif err then
        cli.fail("%s", err)
      elseif sub:ended() then
        return 0
      else
        -- Woken by the journal, or by Until.
        local ms = filter.Until and math.max(0, math.ceil((filter.Until - os.time()) * 1000) + 1) or -1
        wait(sub:fd(), ms)
      end
    end
  end,
}
