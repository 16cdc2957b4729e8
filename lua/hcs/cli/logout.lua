--- `hcs logout REGISTRY`: remove the registry's credentials from the auth file.
local cli = require "hcs.cli"
local hcs = require "hcs"

return {
  summary = "log out of a registry (remove its stored credentials)",
  usage = "hcs logout REGISTRY [--authfile FILE]",
  options = { authfile = { kind = "string", metavar = "FILE", help = "credentials file" } },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    cli.check(hcs.registry.logout(args[1], { auth_file = opts.authfile }))
    print(("Removed login credentials for %s"):format(args[1]))
  end,
}
