--- `hcs run`: create and start a compute system, wait for it, print its exit.
local cli = require "hcs.cli"
local hcs = require "hcs"
local cu = require "hcs.util.compute_cli"

local options = {}
for k, v in pairs(cu.create_options) do options[k] = v end
options.rm = { kind = "flag", help = "delete the system once it stopped" }
options.detach = { kind = "flag", short = "d", help = "start and print the id, do not wait" }
options.interactive = { kind = "flag", short = "i", help = "connect stdin to init (default: /dev/null)" }

return {
  summary = "create and start a compute system running a command",
  usage = "hcs run [options] ROOTFS_OR_CONFIG [-- command [args...]]",
  options = options,
  min_args = 0,
  run = function(opts, args)
    local doc = cu.build_config(opts, args)
    local id = opts.name or hcs.compute.new_id()
    local cs = cli.check(hcs.compute.create(id, doc, { stdio = opts.detach and "null" or "inherit", stdin = opts.interactive or false }))
    local console
    if opts.tty and not opts.detach then
      local stdin, stdout = cs:stdio()
      console = { stdin = stdin, stdout = stdout }
    end
    local ok, err = cs:start()
    if not ok then
      cs:delete(true)
      cli.fail("%s", err)
    end
    if opts.detach then
      cli.output(opts, { Id = id }, function() print(id) end)
      return 0
    end
    if console then
      -- Relay until the console closes, then drop our ends.
      hcs.compute.relay(console.stdout)
      console.stdin:close()
      console.stdout:close()
    end
    cli.check(cs:wait())
    local props = cli.check(cs:properties())
    if opts.rm then cli.check(cs:delete()) end
    if opts.json then cli.print_json(props) end
    local code = props.ExitCode or 1
    if code < 0 then code = 1 end
    return code
  end,
}
