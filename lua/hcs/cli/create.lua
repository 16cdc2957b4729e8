--- `hcs create`: create a compute system (state Created; `hcs start` runs it),
-- its output logged (`hcs logs`).
local cli = require "hcs.cli"
local hcs = require "hcs"
local cu = require "hcs.util.compute_cli"

return {
  summary = "create a compute system without starting it",
  usage = "hcs create [options] ROOTFS_OR_CONFIG [-- command [args...]]",
  options = cu.create_options,
  run = function(opts, args)
    local doc = cu.build_config(opts, args)
    local id = opts.name or hcs.compute.new_id()
    -- Init's output goes to the system log (`hcs logs ID`).
    local cs = cli.check(hcs.compute.create(id, doc, { stdio = "log" }))
    cs:close()
    cli.output(opts, { Id = id }, function() print(id) end)
    return 0
  end,
}
