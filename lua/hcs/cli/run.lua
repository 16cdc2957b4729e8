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
  usage = "hcs run [options] IMAGE|./ROOTFS|./CONFIG.json [command [args...]]",
  description = "IMAGE (a reference in the image store: a bare word is always one) is realized through the\n" ..
    "workflow: a scratch layer on the image, --network/--publish for a NAT network, and --rm destroys it\n" ..
    "all afterwards.  Arguments after IMAGE replace the image's Cmd and follow its Entrypoint\n" ..
    "(--entrypoint replaces it, --entrypoint '' clears it).  A root directory or a compute system\n" ..
    "document (JSON) is given as a path: ./dir, /dir, --rootfs DIR.  Options end at IMAGE: what follows\n" ..
    "is the command.  Exit status: the command's, 125 when hcs fails, 126 when the command cannot be\n" ..
    "executed, 127 when it is not found.",
  options = options,
  stop_at_positional = true,
  failure_status = 125,
  min_args = 0,
  run = function(opts, args)
    local target = cu.target(opts, args)
    local sys, cs, id
    if target.image then
      sys = cu.define_from_image(opts, target, { stdio = opts.detach and "null" or "inherit",
        stdin = opts.interactive or false, tty = opts.tty })
      cs, id = sys.cs, sys.plan.Name
    else
      cu.refuse_image_options(opts)
      id = opts.name or hcs.compute.new_id()
      target.id = id
      local doc = cu.build_config(opts, target)
      cs = cli.check(hcs.compute.create(id, doc, { stdio = opts.detach and "null" or "inherit",
        stdin = opts.interactive or false }))
    end
    local console
    if opts.tty and not opts.detach then
      local stdin, stdout = cs:stdio()
      console = { stdin = stdin, stdout = stdout }
    end
    if not sys then
      local ok, err, errno = cs:start()
      if not ok then
        cs:delete(true)
        cu.fail_start(err, errno)
      end
    end
    if opts.detach then
      cli.output(opts, { Id = id }, function() print(id) end)
      return 0
    end
    if console then
      -- Relay until the console closes, then drop our ends.
      cu.relay_console(console.stdout)
      console.stdin:close()
      console.stdout:close()
    end
    cli.check(cs:wait())
    local props = cli.check(cs:properties())
    if opts.rm then
      if sys then cli.check(hcs.workflow.destroy(sys)) else cli.check(cs:delete()) end
    end
    if opts.json then cli.print_json(props) end
    local code = props.ExitCode or 1
    if code < 0 then code = 1 end
    return code
  end,
}
