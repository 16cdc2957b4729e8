--- `hcs list`: compute systems under the root.
local cli = require "hcs.cli"
local hcs = require "hcs"

--- keep(system) (optional) selects the systems shown.
local function list(opts, keep)
  local filter = {}
  if opts.owner then filter.Owners = { opts.owner } end
  if opts.state then filter.State = opts.state end
  local systems = cli.check(hcs.compute.enumerate(filter))
  if keep then
    local kept = {}
    for _, s in ipairs(systems) do if keep(s) then kept[#kept + 1] = s end end
    systems = kept
  end
  table.sort(systems, function(a, b) return a.Id < b.Id end)
  cli.output(opts, systems, function(rows)
    cli.print_table({ { key = "Id", title = "ID" }, { key = "Owner", title = "OWNER" },
      { key = function(r) return r.SystemType == "VirtualMachine" and "vm" or "container" end, title = "TYPE" },
      { key = "State", title = "STATE" }, { key = "Pid", title = "PID" },
      { key = function(r) return r.ExitType and (r.ExitType .. " " .. tostring(r.ExitCode)) or "" end,
        title = "EXIT" }, { key = "CreatedTime", title = "CREATED" } }, rows)
  end, "Id")
  return 0
end

return {
  summary = "list compute systems",
  usage = "hcs list [--owner OWNER] [--state STATE] [--json|-q]",
  options = {
    owner = { kind = "string", help = "only systems with this Owner" },
    state = { kind = "string", help = "only systems in this State (Created, Running, Paused, Stopped)" },
    json = { kind = "flag", short = "j", help = "print JSON" },
    quiet = cli.quiet_option,
  },
  max_args = 0,
  run = function(opts) return list(opts) end,
  list = list,
}
