--- `hcs version`: print the version of hcs and of its Lua.
local cli = require "hcs.cli"
local hcs = require "hcs"

return {
  summary = "print the hcs version",
  usage = "hcs version [--json]",
  options = { json = { kind = "flag", short = "j", help = "print JSON" } },
  max_args = 0,
  run = function(opts)
    cli.output(opts, { Version = hcs.version, Lua = _VERSION }, function(v)
      print(("hcs %s (%s)"):format(v.Version, v.Lua))
    end)
    return 0
  end,
}
