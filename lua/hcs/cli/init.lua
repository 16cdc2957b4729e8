--- The hcs command line: `hcs COMMAND [SUBCOMMAND] [options] [args]`.
-- Each command is a Lua file lua/hcs/cli/<command>.lua returning
--   { summary = "...", usage = "...", options = {...}, run = function(opts, args) ... end }
-- or { summary = "...", subcommands = { name = <same shape>, ... } }.
-- Options follow hcs.util.args; every command gets --help and most --json.
-- Optional fields: min_args, max_args, stop_at_positional (options end at
-- the first positional: commands taking a command line), failure_status
-- (125 for run/create/exec, as docker).
-- run returns an exit status (default 0).  cli.fail(msg) ends with the
-- failure status (1, or the command's failure_status) and a one-line
-- message.  Any other error is printed as one line too; its traceback only
-- with --log-level debug.
local args = require "hcs.util.args"
local json = require("hcs.core").json

local cli = {}

local CliError = {}
CliError.__tostring = function(e) return e.message end

--- A message made safe for a terminal: bytes that are not UTF-8 and
-- control characters (but newline and tab) become \xNN escapes, so a hostile
-- or garbled argument quoted in an error never reaches the terminal raw.
function cli.sanitize(msg)
  msg = tostring(msg)
  if utf8.len(msg) and not msg:find("[%z\1-\8\11-\31\127]") then return msg end
  local out, i = {}, 1
  while i <= #msg do
    local c = msg:byte(i)
    local len = c < 0x80 and 1 or c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC2 and 2 or 0
    local chunk = len > 0 and msg:sub(i, i + len - 1) or nil
    if chunk and #chunk == len and utf8.len(chunk) == 1 and not (len == 1 and (c < 32 and c ~= 10 and c ~= 9 or c == 127)) then
      out[#out + 1] = chunk
      i = i + len
    else
      out[#out + 1] = ("\\x%02x"):format(c)
      i = i + 1
    end
  end
  return table.concat(out)
end

local function warn(text)
  io.stderr:write(cli.sanitize(text))
end

--- End the command with a message on stderr and the given status (default 1).
function cli.fail(fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  error(setmetatable({ message = msg }, CliError), 0)
end

--- End the command with a message and an explicit exit status.
function cli.exit(status, fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  error(setmetatable({ message = msg, status = status }, CliError), 0)
end

--- Pass through the results of an hcs call, or fail with its message.
-- Use as `local v = cli.check(hcs.layer.inspect(id))`.
function cli.check(v, msg, ...)
  if v == nil then cli.fail("%s", tostring(msg)) end
  return v, msg, ...
end

--- Print a value as JSON (pretty, sorted keys).
function cli.print_json(v)
  io.stdout:write(json.encode(v, { pretty = true }), "\n")
end

--- Print rows as an aligned table.
-- columns: list of { key = "Name", title = "NAME" }; a key may be a function(row).
function cli.print_table(columns, rows)
  local cells, widths = {}, {}
  for c, col in ipairs(columns) do widths[c] = #(col.title or col.key) end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c, col in ipairs(columns) do
      local v = type(col.key) == "function" and col.key(row) or row[col.key]
      if v == nil or v == json.null then v = "" end
      v = tostring(v)
      cells[r][c] = v
      if #v > widths[c] then widths[c] = #v end
    end
  end
  local function line(values)
    local parts = {}
    for c, v in ipairs(values) do
      parts[c] = c < #values and v .. (" "):rep(widths[c] - #v) or v
    end
    io.stdout:write(table.concat(parts, "   "), "\n")
  end
  local titles = {}
  for c, col in ipairs(columns) do titles[c] = col.title or col.key end
  line(titles)
  for _, row in ipairs(cells) do line(row) end
end

--- Human or JSON output: calls human(v) unless --json was given.  For a
-- listing, id_key (a field name or function(row)) makes --quiet print one
-- id per line, as docker's -q.
function cli.output(opts, v, human, id_key)
  if opts.quiet and id_key then
    for _, row in ipairs(v) do
      local id = type(id_key) == "function" and id_key(row) or row[id_key]
      if id ~= nil then io.stdout:write(tostring(id), "\n") end
    end
  elseif opts.json then
    cli.print_json(v)
  else
    human(v)
  end
end

--- The -q option of listings.
cli.quiet_option = { kind = "flag", short = "q", help = "print ids only" }

local function valid_name(name)
  return type(name) == "string" and name:match("^[a-z][a-z0-9-]*$") ~= nil
end

--- Load a command module, or nil if there is none by that name.
function cli.load(name)
  if not valid_name(name) then return nil end
  local modname = "hcs.cli." .. name:gsub("-", "_")
  if not package.searchpath(modname, package.path) then return nil end
  return require(modname)
end

--- Names of all commands, sorted.
function cli.commands()
  local names, seen = {}, {}
  for dir in package.path:gmatch("[^;]+") do
    local base = dir:match("^(.*)/%?%.lua$")
    if base then
      local ok, lfs = pcall(require, "lfs")
      local cli_dir = base .. "/hcs/cli"
      if ok and lfs.attributes(cli_dir, "mode") == "directory" then
        for f in lfs.dir(cli_dir) do
          local n = f:match("^([%w_]+)%.lua$")
          if n and n ~= "init" and not seen[n] then
            seen[n] = true
            names[#names + 1] = (n:gsub("_", "-"))
          end
        end
      end
    end
  end
  table.sort(names)
  return names
end

local function command_help(path, cmd)
  local lines = { ("usage: %s"):format(cmd.usage or ("hcs " .. path .. " [options]")) }
  if cmd.summary then lines[#lines + 1] = "\n" .. cmd.summary end
  if cmd.description then lines[#lines + 1] = "\n" .. cmd.description end
  if cmd.subcommands then
    lines[#lines + 1] = "\nsubcommands:"
    local names = {}
    for n in pairs(cmd.subcommands) do names[#names + 1] = n end
    table.sort(names)
    for _, n in ipairs(names) do
      lines[#lines + 1] = ("  %-12s %s"):format(n, cmd.subcommands[n].summary or "")
    end
  end
  if cmd.options and next(cmd.options) then
    lines[#lines + 1] = "\noptions:"
    lines[#lines + 1] = args.help(cmd.options)
  end
  return table.concat(lines, "\n") .. "\n"
end
cli.command_help = command_help

--- The message of an error raised inside a command, as one clear line (or
-- the lines a message deliberately has, e.g. a list of validation problems).
-- Tracebacks appended by xpcall handlers below (workflow transactions) are
-- cut unless the log level is debug.  Returns message, is_bug.
local function error_message(e)
  if type(e) == "table" then
    local mt = getmetatable(e)
    if type(e.message) == "string" then return e.message, false end
    if mt and mt.__tostring then return tostring(e), false end
    local ok, pretty = pcall(function() return require("hcs.util.pretty").format(e) end)
    return "error: " .. (ok and pretty or "(a table)"), true
  end
  local msg = tostring(e)
  local body = msg:gsub("\nstack traceback:\n.*$", "")
  -- "file.lua:12: " says where, which only a developer wants (debug level);
  -- "attempt to ..." after it is a bug in hcs, not the user's input.
  local where, rest = body:match("^([^\n]-%.lua:%d+: )(.*)$")
  if where then body = rest end
  local bug = body:match("^attempt to ") ~= nil
  return body, bug
end

local function debugging()
  local ok, level = pcall(function() return require("hcs.core").host.log_level() end)
  return ok and level == "debug"
end

--- An error value as the one line (or deliberate lines) a user reads: the
-- traceback a workflow transaction appends is kept only at debug level.
function cli.message(e)
  if debugging() then return type(e) == "string" and e or (error_message(e)) end
  return (error_message(e))
end


--- The status of a command ended by a signal, as a shell reports one
-- (128 + the signal): 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP; nil
-- when the message is not the host's "interrupted" error.
local function interrupt_status(msg)
  msg = tostring(msg)
  if msg:find("interrupted by SIGTERM", 1, true) then return 143 end
  if msg:find("interrupted by SIGHUP", 1, true) then return 129 end
  if msg:find("interrupted!", 1, true) then return 130 end
  return nil
end

local function usage_of(path, cmd) return cmd.usage or ("hcs " .. path) end

local function run_command(path, cmd, argv)
  if cmd.subcommands then
    local sub = argv[1]
    if sub == nil or sub == "--help" or sub == "-h" or sub == "help" then
      io.stdout:write(command_help(path, cmd))
      return sub == nil and 2 or 0
    end
    local subcmd = type(sub) == "string" and cmd.subcommands[sub]
    if not subcmd then
      local hint = cli.suggest(sub, cmd.subcommands)
      warn(("hcs %s: unknown subcommand %s%s (see 'hcs %s --help')\n"):format(path, args.show(sub),
        hint and (", did you mean '" .. hint .. "'?") or "", path))
      return 2
    end
    return run_command(path .. " " .. sub, subcmd, { table.unpack(argv, 2) })
  end
  -- run/create/exec answer as docker does: 125 when hcs itself fails
  -- (bad options included), so any other status is the command's own.
  local failure = cmd.failure_status or 1
  local usage_status = cmd.failure_status or 2
  local spec = { help = { kind = "flag", short = "h", help = "show this help" } }
  for k, v in pairs(cmd.options or {}) do spec[k] = v end
  local ok, opts, positional = pcall(args.parse, spec, argv, { stop_at_positional = cmd.stop_at_positional })
  if not ok then
    if getmetatable(opts) == args.UsageError then
      warn(("hcs %s: %s\nusage: %s\n"):format(path, opts.message, usage_of(path, cmd)))
      return usage_status
    end
    error(opts, 0)
  end
  if opts.help then
    io.stdout:write(command_help(path, cmd))
    return 0
  end
  local min, max = cmd.min_args or 0, cmd.max_args
  if #positional < min or (max and #positional > max) then
    local want
    if min == max then
      want = tostring(min)
    elseif not max then
      want = "at least " .. min
    elseif min == 0 then
      want = "at most " .. max
    else
      want = min .. " to " .. max
    end
    warn(("hcs %s: expected %s argument%s, got %d\nusage: %s\n"):format(
      path, want, (min == 1 and max == 1) and "" or "s", #positional, usage_of(path, cmd)))
    return usage_status
  end
  local results = table.pack(xpcall(cmd.run, function(e)
    if getmetatable(e) == CliError or getmetatable(e) == args.UsageError then return e end
    return { raw = e, traceback = debug.traceback(type(e) == "string" and e or nil, 2) }
  end, opts, positional))
  if not results[1] then
    local e = results[2]
    if getmetatable(e) == CliError then
      warn(("hcs %s: %s\n"):format(path, e.message))
      return e.status or interrupt_status(e.message) or failure
    elseif getmetatable(e) == args.UsageError then
      warn(("hcs %s: %s\nusage: %s\n"):format(path, e.message, usage_of(path, cmd)))
      return usage_status
    end
    -- Anything else raised (a workflow step's error, a bug): one line, and
    -- the traceback only with --log-level debug.
    local msg, bug = error_message(e.raw)
    if debugging() then
      warn(("hcs %s: %s\n%s\n"):format(path, type(e.raw) == "string" and e.raw or msg, e.traceback))
    elseif bug then
      warn(("hcs %s: internal error: %s (run with --log-level debug for details)\n"):format(path, msg))
    else
      warn(("hcs %s: %s\n"):format(path, msg))
    end
    return interrupt_status(msg) or failure
  end
  local status = results[2]
  return math.type(status) == "integer" and status or 0
end

-- Suggestions for typos (hcs.util.args has them: the option parser uses
-- them too).
cli.distance = args.distance
cli.close_matches = args.close_matches
cli.suggest = args.suggest

--- docker's and podman's top-level spellings of hcs commands: the command
-- and the words put before the arguments.
cli.ALIASES = {
  images = { "image", "ls" },
  pull = { "image", "pull" },
  push = { "image", "push" },
  rmi = { "image", "rm" },
  tag = { "image", "tag" },
  -- `docker top` needs a container: without one it is a usage error, not
  -- the list of systems `hcs ps` prints.
  top = { "ps", needs_id = true },
}

--- Entry point used by the host: main(command, args...) -> exit status.
function cli.main(name, ...)
  local argv = { ... }
  if name == "--help" or name == "-h" then name = "help" end
  if name == "--version" then name = "version" end
  local alias = type(name) == "string" and cli.ALIASES[name]
  if alias and alias.needs_id then
    local given = false
    for _, a in ipairs(argv) do
      if type(a) == "string" and a:sub(1, 1) ~= "-" then given = true end
    end
    if not given and argv[1] ~= "--help" and argv[1] ~= "-h" then
      warn(("hcs %s: expected an ID\nusage: hcs %s [--json|-q] ID\n"):format(name, name))
      return 2
    end
  end
  if alias then
    name = alias[1]
    for i = #alias, 2, -1 do table.insert(argv, 1, alias[i]) end
  end
  local cmd = cli.load(name)
  if not cmd then
    local known = cli.commands()
    for k in pairs(cli.ALIASES) do known[#known + 1] = k end
    local hint = type(name) == "string" and cli.suggest(name, known)
    warn(("hcs: unknown command %s%s (see 'hcs help')\n"):format(args.show(name),
      hint and (", did you mean '" .. hint .. "'?") or ""))
    return 2
  end
  return run_command(name, cmd, argv)
end

return cli
