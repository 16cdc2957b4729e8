--- The hcs command line: `hcs COMMAND [SUBCOMMAND] [options] [args]`.
-- Each command is a Lua file lua/hcs/cli/<command>.lua returning
--   { summary = "...", usage = "...", options = {...}, run = function(opts, args) ... end }
-- or { summary = "...", subcommands = { name = <same shape>, ... } }.
-- Options follow hcs.util.args; every command gets --help and most --json.
-- run returns an exit status (default 0).  cli.fail(msg) ends with status 1
-- and a one-line message; bugs propagate with a traceback.
local args = require "hcs.util.args"
local json = require("hcs.core").json

local cli = {}

local CliError = {}
CliError.__tostring = function(e) return e.message end

--- End the command with a message on stderr and the given status (default 1).
function cli.fail(fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  error(setmetatable({ message = msg, status = 1 }, CliError), 0)
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

--- Human or JSON output: calls human(v) unless --json was given.
function cli.output(opts, v, human)
  if opts.json then cli.print_json(v) else human(v) end
end

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

local function run_command(path, cmd, argv)
  if cmd.subcommands then
    local sub = argv[1]
    if sub == nil or sub == "--help" or sub == "-h" or sub == "help" then
      io.stdout:write(command_help(path, cmd))
      return sub == nil and 2 or 0
    end
    local subcmd = cmd.subcommands[sub]
    if not subcmd then
      io.stderr:write(("hcs %s: unknown subcommand '%s' (see 'hcs %s --help')\n"):format(path, sub, path))
      return 2
    end
    return run_command(path .. " " .. sub, subcmd, { table.unpack(argv, 2) })
  end
  local spec = { help = { kind = "flag", short = "h", help = "show this help" } }
  for k, v in pairs(cmd.options or {}) do spec[k] = v end
  local ok, opts, positional = pcall(args.parse, spec, argv)
  if not ok then
    if getmetatable(opts) == args.UsageError then
      io.stderr:write(("hcs %s: %s\n%s"):format(path, opts.message, "usage: " .. (cmd.usage or ("hcs " .. path)) .. "\n"))
      return 2
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
    io.stderr:write(("hcs %s: expected %s argument%s, got %d\nusage: %s\n"):format(
      path, want, (min == 1 and max == 1) and "" or "s", #positional, cmd.usage or ("hcs " .. path)))
    return 2
  end
  local results = table.pack(xpcall(cmd.run, function(e)
    if getmetatable(e) == CliError or getmetatable(e) == args.UsageError then return e end
    return debug.traceback(e, 2)
  end, opts, positional))
  if not results[1] then
    local e = results[2]
    if getmetatable(e) == CliError then
      io.stderr:write(("hcs %s: %s\n"):format(path, e.message))
      return e.status
    elseif getmetatable(e) == args.UsageError then
      io.stderr:write(("hcs %s: %s\nusage: %s\n"):format(path, e.message, cmd.usage or ("hcs " .. path)))
      return 2
    end
    error(e, 0)
  end
  local status = results[2]
  return math.type(status) == "integer" and status or 0
end

--- Entry point used by the host: main(command, args...) -> exit status.
function cli.main(name, ...)
  local argv = { ... }
  if name == "--help" or name == "-h" then name = "help" end
  local cmd = cli.load(name)
  if not cmd then
    io.stderr:write(("hcs: unknown command '%s' (see 'hcs help')\n"):format(tostring(name)))
    return 2
  end
  return run_command(name, cmd, argv)
end

return cli
