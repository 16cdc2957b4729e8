--- `hcs exec ID command [args...]`: run a process in a compute system.
local cli = require "hcs.cli"
local hcs = require "hcs"
local cu = require "hcs.util.compute_cli"

return {
  summary = "run a process inside a running compute system",
  usage = "hcs exec [options] ID command [args...]",
  description = "Options end at ID: what follows is the command.  Exit status: the command's, 125 when hcs\n" ..
    "fails, 126 when the command cannot be executed, 127 when it is not found.",
  options = {
    tty = { kind = "flag", short = "t", help = "allocate a console (pty)" },
    interactive = { kind = "flag", short = "i", help = "connect stdin (default: /dev/null)" },
    env = { kind = "list", short = "e", metavar = "K=V", help = "environment variable (repeatable)" },
    user = { kind = "string", short = "u", help = "user (name or uid[:gid])" },
    workdir = { kind = "string", short = "w", metavar = "DIR", help = "working directory" },
    detach = { kind = "flag", short = "d", help = "print the pid, do not wait (output to `hcs logs`; in a VM the guest's /dev/null)" },
    json = { kind = "flag", short = "j", help = "print the exit as JSON" },
  },
  stop_at_positional = true,
  failure_status = 125,
  min_args = 2,
  run = function(opts, args)
    local cs <close> = cu.open(args[1])
    -- As docker exec: the process starts from init's environment, user and
    -- working directory, with HOSTNAME; -e, -u and -w override them.
    local props = cs:properties { "Configuration" } or {}
    local doc = props.Configuration or {}
    local init = type(doc.Linux) == "table" and type(doc.Linux.Init) == "table" and doc.Linux.Init or {}
    local base = {}
    if type(init.Environment) == "table" then
      for k, v in pairs(init.Environment) do base[#base + 1] = k .. "=" .. tostring(v) end
      table.sort(base)
    end
    for _, kv in ipairs(opts.env or {}) do base[#base + 1] = kv end
    local guest = type(doc.Container) == "table" and type(doc.Container.GuestOs) == "table" and doc.Container.GuestOs
    local hostname = guest and guest.HostName or props.Id
    local params = { CommandArgs = { table.unpack(args, 2) }, User = opts.user or init.User,
      WorkingDirectory = opts.workdir or init.WorkingDirectory, EmulateConsole = opts.tty or nil }
    local env = cu.docker_env(base, opts, hostname)
    params.ConsoleSize = cu.console_size(opts)
    if #env > 0 then
      params.Environment = {}
      for _, kv in ipairs(env) do
        local k, v = kv:match("^([^=]+)=(.*)$")
        if not k then cli.fail("invalid environment entry %s (expected K=V)", require("hcs.util.args").show(kv)) end
        params.Environment[k] = v
      end
    end
    if opts.detach then
      if opts.tty or opts.interactive then cli.fail("-d cannot be combined with -t or -i") end
      local p <close> = cli.check(cs:create_process(params, { stdio = "log", detach = true }))
      cli.output(opts, { ProcessId = p:pid() }, function() print(p:pid()) end)
      return 0
    end
    local p, err, errno = cs:create_process(params, { stdio = "inherit", stdin = opts.interactive or opts.tty or false })
    if not p then cu.fail_start(err, errno) end
    local _ <close> = p
    if opts.tty then
      cu.relay_console(p.stdout)
      p.stdin:close()
      p.stdout:close()
    end
    local _, code = cli.check(p:wait())
    if opts.json then cli.print_json { ProcessId = p:pid(), ExitCode = code } end
    return code
  end,
}
