--- `hcs create`: create a compute system (state Created; `hcs start` runs it).
local cli = require "hcs.cli"
local hcs = require "hcs"
local cu = require "hcs.util.compute_cli"

return {
  summary = "create a compute system without starting it",
  usage = "hcs create [options] IMAGE|./ROOTFS|./CONFIG.json [command [args...]]",
  description = "As `hcs run` without starting: `hcs start ID` runs it.  IMAGE is realized through the\n" ..
    "workflow (`hcs rm`/`hcs destroy` removes it); a root directory or a document is given as a path.",
  options = cu.create_options,
  stop_at_positional = true,
  failure_status = 125,
  run = function(opts, args)
    local target = cu.target(opts, args)
    local id
    if target.image then
      local sys = cu.define_from_image(opts, target, { start = false, stdio = "null", tty = opts.tty })
      id = sys.plan.Name
      sys.cs:close()
    else
      cu.refuse_image_options(opts)
      id = opts.name or hcs.compute.new_id()
      target.id = id
      local doc = cu.build_config(opts, target)
      local cs = cli.check(hcs.compute.create(id, doc))
      cs:close()
    end
    cli.output(opts, { Id = id }, function() print(id) end)
    return 0
  end,
}
