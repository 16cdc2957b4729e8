--- `hcs start ID...`: start created compute systems; `-a` attaches to the
-- one started (docker's `start -a [-i]`).
local cli = require "hcs.cli"
local cu = require "hcs.util.compute_cli"

return {
  summary = "start created compute systems",
  usage = "hcs start [-a [-i] [--detach-keys KEYS]] [--json] ID...",
  description = "With -a (one ID): attach to its output (and its console or, with -i, its stdin) before\n" ..
    "starting it, until it stops (the exit status is its own) or the detach keys leave it running.",
  options = {
    json = cu.json_option,
    attach = { kind = "flag", short = "a", help = "attach to the system's output (and console)" },
    interactive = { kind = "flag", short = "i", help = "with -a: attach stdin too" },
    ["detach-keys"] = cu.detach_keys_option,
  },
  min_args = 1,
  run = function(opts, ids)
    if not opts.attach then
      if opts.interactive then cli.exit(2, "-i needs -a") end
      return cu.each(opts, ids, function(cs) return cs:start() end)
    end
    if #ids ~= 1 then cli.exit(2, "-a attaches to one system, got %d", #ids) end
    local cs = cu.open(ids[1])
    return cu.attach(cs, { stdin = opts.interactive or false, detach_keys = cu.detach_keys(opts["detach-keys"]),
      before = function() return cs:start() end })
  end,
}
