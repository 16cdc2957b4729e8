--- `hcs create`: create a compute system (state Created; `hcs start` runs it),
-- its output logged (`hcs logs`).
local cli = require "hcs.cli"
local hcs = require "hcs"
local cu = require "hcs.util.compute_cli"

local options = {}
for k, v in pairs(cu.create_options) do options[k] = v end
options.interactive = { kind = "flag", short = "i", help = "keep stdin open for `hcs attach` / `hcs start -ai`" }

return {
  summary = "create a compute system without starting it",
  usage = "hcs create [options] IMAGE|./ROOTFS|./CONFIG.json [command [args...]]",
  description = "As `hcs run` without starting: `hcs start ID` runs it.  IMAGE is realized through the\n" ..
    "workflow (`hcs rm`/`hcs destroy` removes it); a root directory or a document is given as a path.",
  options = options,
  stop_at_positional = true,
  failure_status = 125,
  run = function(opts, args)
    local target = cu.target(opts, args)
    local id
    if target.image then
      local sys = cu.define_from_image(opts, target, { start = false, stdio = "log", tty = opts.tty,
        stdin = opts.interactive or false })
      id = sys.plan.Name
      sys.cs:close()
    else
      cu.refuse_image_options(opts)
      id = opts.name or hcs.compute.new_id()
      target.id = id
      local doc = cu.build_config(opts, target)
      -- Init's output goes to the system log (`hcs logs ID`).
      local cs = cli.check(hcs.compute.create(id, doc, { stdio = "log", stdin = opts.interactive or false }))
      cs:close()
    end
    cli.output(opts, { Id = id }, function() print(id) end)
    return 0
  end,
}
