--- `hcs stats ID...`: processor and memory statistics.
local cli = require "hcs.cli"
local cu = require "hcs.util.compute_cli"

return {
  summary = "show processor and memory statistics of compute systems",
  usage = "hcs stats [--json] ID...",
  options = { json = { kind = "flag", short = "j", help = "print JSON" } },
  min_args = 1,
  run = function(opts, ids)
    local rows = {}
    for _, id in ipairs(ids) do
      local cs <close> = cu.open(id)
      local p = cli.check(cs:properties { "Statistics" })
      local s = p.Statistics or {}
      rows[#rows + 1] = {
        Id = id, State = p.State, Statistics = s,
        CPU = s.Processor and ("%.3fs"):format(s.Processor.TotalRuntime100ns / 1e7) or "",
        MEM = s.Memory and ("%.1fMiB"):format(s.Memory.UsageBytes / 1048576) or "",
        PEAK = s.Memory and ("%.1fMiB"):format(s.Memory.PeakBytes / 1048576) or "",
        PIDS = s.Pids and s.Pids.Current or "",
      }
    end
    cli.output(opts, rows, function(r)
      cli.print_table({ { key = "Id", title = "ID" }, { key = "State", title = "STATE" }, { key = "CPU" },
        { key = "MEM" }, { key = "PEAK" }, { key = "PIDS" } }, r)
    end)
    return 0
  end,
}
