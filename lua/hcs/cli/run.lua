--- `hcs run`: create and start a compute system, wait for it, print its exit.
local cli = require "hcs.cli"
local hcs = require "hcs"
local cu = require "hcs.util.compute_cli"

local options = {}
for k, v in pairs(cu.create_options) do options[k] = v end
options.rm = { kind = "flag", help = "delete the system once it stopped" }
options.detach = { kind = "flag", short = "d", help = "start and print the id, do not wait (output to `hcs logs`)" }
options.interactive = { kind = "flag", short = "i", help = "connect stdin to init (default: /dev/null)" }
options["detach-keys"] = cu.detach_keys_option

--- `-t` attached, as docker: the monitor keeps the console (and logs it),
-- we attach before start so nothing is missed; the detach keys leave the
-- system running.  Returns "detached" or "exited".
local function attach_console(cs, opts)
  local how, err, errno = cs:attach { stdin = opts.interactive or false,
    detach_keys = cu.detach_keys(opts["detach-keys"]), before = function() return cs:start() end }
  if not how then
    if errno == 4 then error("interrupted", 0) end
    cu.fail_start(err, errno)
  end
  return how
end

local have_interrupt, interrupt = pcall(require, "hcs.interrupt")

--- Wait until the system stopped; a signal (Ctrl-C) interrupts the wait at
-- once with an error, so the caller's clean-up runs.
local function wait_stopped(cs)
  local fd = have_interrupt and cs:event_fd()
  if not fd then return cli.check(cs:wait()) end
  while not interrupt.wait(fd) do end
  return true
end

--- body(), then cleanup(ok) with SIGINT/SIGTERM/SIGHUP held back, however
-- body ends (hcs.interrupt.guard; a plain pcall outside the hcs host).
local function guard(body, cleanup)
  if have_interrupt then return interrupt.guard(body, cleanup) end
  local r = table.pack(pcall(body))
  cleanup(r[1], r[2])
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- `hcs run IMAGE`: plan + realize, wait, and with --rm destroy it all.
-- Attached, the destroy runs however the run ends (exit, error, Ctrl-C,
-- SIGTERM: the system is killed first); further signals wait for it.
-- Detached, the monitor destroys the system once it stops.
local function run_image(opts, target)
  local sys, detached
  local ok, props = pcall(guard, function()
    local console = opts.tty and not opts.detach
    sys = cu.define_from_image(opts, target, { stdio = (opts.detach or console) and "log" or "inherit",
      stdin = opts.interactive or false, tty = opts.tty, auto_remove = opts.rm or nil, attached = not opts.detach,
      detachable = console or nil, start = not console })
    if opts.detach then return nil end
    local cs = sys.cs
    if console and attach_console(cs, opts) == "detached" then
      detached = true
      return nil
    end
    wait_stopped(cs)
    return cli.check(cs:properties())
  end, function(ok)
    if detached and opts.rm then
      -- Its monitor removes it once it stops, as docker's daemon would.
      local done, err = hcs.workflow.let_go(sys)
      if not done then cli.fail("%s", err) end
    elseif sys and opts.rm and not opts.detach then
      local done, err = hcs.workflow.destroy(sys, { kill = not ok })
      if not done then cli.fail("%s", err) end
    end
  end)
  if not ok then
    -- An interrupting signal is one line, not a traceback.
    local text = type(props) == "string" and props:match("^(interrupted[^\n]*)")
    if text then cli.fail("%s", text) end
    error(props, 0)
  end
  if opts.detach then
    cli.output(opts, { Id = sys.plan.Name }, function() print(sys.plan.Name) end)
    return 0
  end
  if detached then return 0 end
  if opts.json then cli.print_json(props) end
  local code = props.ExitCode or 1
  if code < 0 then code = 1 end
  return code
end

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
    if target.image then return run_image(opts, target) end
    cu.refuse_image_options(opts)
    local id = opts.name or hcs.compute.new_id()
    target.id = id
    local doc = cu.build_config(opts, target)
    if opts.rm and opts.detach then
      -- The monitor deletes the system once it stopped (no daemon to ask).
      doc.Linux = doc.Linux or {}
      doc.Linux.ExitCommand = hcs.json.array(require("hcs.workflow.journal").self_command(nil, "rm", id))
    end
    local console = opts.tty and not opts.detach
    local cs = cli.check(hcs.compute.create(id, doc, { stdio = (opts.detach or console) and "log" or "inherit",
      stdin = opts.interactive or false }))
    if console then
      local ok, how = pcall(attach_console, cs, opts)
      if not ok then
        cs:delete(true)
        error(how, 0)
      end
      if how == "detached" then
        if opts.rm then io.stderr:write(("hcs run: detached from %s; it is not removed when it stops\n"):format(id)) end
        return 0
      end
    else
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
    cli.check(cs:wait())
    local props = cli.check(cs:properties())
    if opts.rm then cli.check(cs:delete()) end
    if opts.json then cli.print_json(props) end
    local code = props.ExitCode or 1
    if code < 0 then code = 1 end
    return code
  end,
}
