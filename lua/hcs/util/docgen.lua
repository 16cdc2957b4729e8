--- Man pages and bash completion generated from the command definitions
-- the CLI itself runs (lua/hcs/cli/*.lua: summary, usage, description,
-- options, subcommands), so they can never disagree with `hcs COMMAND
-- --help`.  Used by `hcs help --man DIR` and `hcs help --completion`,
-- which the build runs (CMakeLists.txt) and `cmake --install` installs.
local M = {}

local function cli() return require "hcs.cli" end

--- Every command as { name, cmd }, sorted.
local function commands()
  local out = {}
  for _, name in ipairs(cli().commands()) do
    local ok, cmd = pcall(cli().load, name)
    if ok and cmd then out[#out + 1] = { name = name, cmd = cmd } end
  end
  return out
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- Option words of a command: --long and -s forms, --help included.
local function option_words(cmd)
  local words = { "--help", "-h" }
  for _, name in ipairs(sorted_keys(cmd.options)) do
    words[#words + 1] = "--" .. name
    local s = cmd.options[name].short
    if s then words[#words + 1] = "-" .. s end
  end
  return words
end

-- roff ------------------------------------------------------------------------

--- Text made safe for roff: backslashes doubled, a leading . or ' escaped.
local function roff(text)
  text = tostring(text or ""):gsub("\\", "\\e"):gsub("%-", "\\-")
  return (text:gsub("\n([.'])", "\n\\&%1"):gsub("^([.'])", "\\&%1"))
end

local function options_section(lines, options)
  local all = { help = { kind = "flag", short = "h", help = "show this help" } }
  for k, v in pairs(options or {}) do all[k] = v end
  for _, name in ipairs(sorted_keys(all)) do
    local o = all[name]
    local left = "\\fB\\-\\-" .. roff(name) .. "\\fR"
    if o.short then left = "\\fB\\-" .. roff(o.short) .. "\\fR, " .. left end
    if o.kind ~= "flag" then left = left .. " \\fI" .. roff(o.metavar or o.kind:upper()) .. "\\fR" end
    if o.kind == "list" then left = left .. " (repeatable)" end
    lines[#lines + 1] = ".TP"
    lines[#lines + 1] = left
    lines[#lines + 1] = roff(o.help or "")
  end
end

local function date()
  -- SOURCE_DATE_EPOCH keeps generated pages reproducible.
  local epoch = tonumber(os.getenv("SOURCE_DATE_EPOCH") or "")
  return os.date("!%Y-%m-%d", epoch)
end

--- The man page of one command (hcs-NAME.1), as text.
function M.man_page(name, cmd, version)
  local lines = {
    (".TH HCS\\-%s 1 %s \"hcs %s\" \"hcs manual\""):format(roff(name:upper()), date(), roff(version)),
    ".SH NAME",
    ("hcs\\-%s \\- %s"):format(roff(name), roff(cmd.summary or "")),
    ".SH SYNOPSIS",
  }
  if cmd.subcommands then
    for _, sub in ipairs(sorted_keys(cmd.subcommands)) do
      local s = cmd.subcommands[sub]
      lines[#lines + 1] = ".B " .. roff(s.usage or ("hcs " .. name .. " " .. sub))
      lines[#lines + 1] = ".br"
    end
  else
    lines[#lines + 1] = ".B " .. roff(cmd.usage or ("hcs " .. name))
  end
  if cmd.description then
    lines[#lines + 1] = ".SH DESCRIPTION"
    lines[#lines + 1] = roff(cmd.description:gsub("\n", " "))
  end
  if cmd.subcommands then
    lines[#lines + 1] = ".SH SUBCOMMANDS"
    for _, sub in ipairs(sorted_keys(cmd.subcommands)) do
      local s = cmd.subcommands[sub]
      lines[#lines + 1] = ".SS " .. roff(sub)
      lines[#lines + 1] = ".B " .. roff(s.usage or ("hcs " .. name .. " " .. sub))
      lines[#lines + 1] = ".PP"
      lines[#lines + 1] = roff(s.summary or "")
      if s.description then
        lines[#lines + 1] = ".PP"
        lines[#lines + 1] = roff(s.description:gsub("\n", " "))
      end
      options_section(lines, s.options)
    end
  else
    lines[#lines + 1] = ".SH OPTIONS"
    options_section(lines, cmd.options)
  end
  lines[#lines + 1] = ".SH SEE ALSO"
  lines[#lines + 1] = ".BR hcs (1)"
  return table.concat(lines, "\n") .. "\n"
end

--- The overview page hcs.1: the host's flags and the list of commands.
function M.man_index(version)
  local lines = {
    (".TH HCS 1 %s \"hcs %s\" \"hcs manual\""):format(date(), roff(version)),
    ".SH NAME", "hcs \\- Linux host compute service: containers, layers, networks, images, workflows",
    ".SH SYNOPSIS",
    ".B hcs", "[\\fIoptions\\fR] [\\fIscript.lua\\fR [\\fIargs\\fR]]", ".br",
    ".B hcs", "\\fICOMMAND\\fR [\\fIargs\\fR]", ".br", ".B hcs",
    ".SH DESCRIPTION",
    "Runs a Lua script or workflow, a command, or (on a terminal, without arguments) an interactive REPL.",
    ".SH OPTIONS",
    ".TP", "\\fB\\-\\-root\\fR \\fIDIR\\fR", "state root (default $HCS_ROOT or /var/lib/hcs)",
    ".TP", "\\fB\\-\\-log\\-level\\fR \\fILEVEL\\fR",
    "debug, info, warning, error, none; with debug a failing command also prints its Lua traceback",
    ".TP", "\\fB\\-e\\fR \\fICODE\\fR, \\fB\\-l\\fR \\fIMOD\\fR, \\fB\\-i\\fR, \\fB\\-v\\fR, \\fB\\-E\\fR, \\fB\\-W\\fR",
    "as lua(1)",
    ".TP", "\\fB\\-h\\fR, \\fB\\-\\-help\\fR, \\fB\\-\\-version\\fR", "the command list, the version",
    ".SH COMMANDS",
  }
  local see = {}
  for _, c in ipairs(commands()) do
    lines[#lines + 1] = ".TP"
    lines[#lines + 1] = ("\\fBhcs %s\\fR"):format(roff(c.name))
    lines[#lines + 1] = roff(c.cmd.summary or "")
    see[#see + 1] = (".BR hcs\\-%s (1)"):format(roff(c.name))
  end
  lines[#lines + 1] = ".SH EXIT STATUS"
  lines[#lines + 1] = "0 success, 1 failure, 2 usage error; run, create and exec: the command's own status, " ..
    "125 when hcs fails, 126 when the command cannot be executed, 127 when it is not found."
  lines[#lines + 1] = ".SH SEE ALSO"
  for i, s in ipairs(see) do lines[#lines + 1] = s .. (i < #see and "," or "") end
  return table.concat(lines, "\n") .. "\n"
end

--- Write hcs.1 and hcs-COMMAND.1 into dir; returns the file names.
function M.write_man(dir, version)
  local written = {}
  local function write(name, text)
    local path = dir .. "/" .. name
    local tmp = path .. ".tmp"
    local f = assert(io.open(tmp, "w"))
    f:write(text)
    f:close()
    assert(os.rename(tmp, path))
    written[#written + 1] = name
  end
  write("hcs.1", M.man_index(version))
  for _, c in ipairs(commands()) do write("hcs-" .. c.name .. ".1", M.man_page(c.name, c.cmd, version)) end
  return written
end

-- bash completion -------------------------------------------------------------

local function words(list) return table.concat(list, " ") end

--- A bash completion script for hcs: commands, subcommands and options
-- from the definitions; image references after run/create, system ids
-- after the commands that take one (asked from hcs itself at Tab time).
function M.bash_completion()
  local lines = {
    "# bash completion for hcs, generated by `hcs help --completion bash` from the CLI's",
    "# command definitions (lua/hcs/cli/*.lua).  Do not edit.",
    "_hcs() {",
    "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" cmd='' sub='' i w",
    "  for ((i = 1; i < COMP_CWORD; i++)); do",
    "    w=\"${COMP_WORDS[i]}\"",
    "    case \"$w\" in --root|--log-level) ((i++)); continue ;; -*) continue ;; esac",
    "    if [ -z \"$cmd\" ]; then cmd=\"$w\"; elif [ -z \"$sub\" ]; then sub=\"$w\"; break; fi",
    "  done",
    "  local opts='' subs='' more=''",
    "  case \"$cmd\" in",
  }
  local names = {}
  for _, c in ipairs(commands()) do
    names[#names + 1] = c.name
    lines[#lines + 1] = ("    %s)"):format(c.name)
    if c.cmd.subcommands then
      local subs = sorted_keys(c.cmd.subcommands)
      lines[#lines + 1] = ("      subs='%s'"):format(words(subs))
      lines[#lines + 1] = "      case \"$sub\" in"
      for _, sub in ipairs(subs) do
        lines[#lines + 1] = ("        %s) opts='%s' ;;"):format(sub, words(option_words(c.cmd.subcommands[sub])))
      end
      lines[#lines + 1] = "      esac"
      lines[#lines + 1] = "      [ -n \"$sub\" ] && subs=''"
    else
      lines[#lines + 1] = ("      opts='%s'"):format(words(option_words(c.cmd)))
      if c.name == "run" or c.name == "create" then
        lines[#lines + 1] = "      [ -z \"$sub\" ] && more=\"$(hcs image ls --json 2>/dev/null | " ..
          "sed -n 's/^ *\"\\([^\"]*:[^\"]*\\)\",\\?$/\\1/p' | grep -v '^sha256:')\""
        lines[#lines + 1] = "      [ -n \"$sub\" ] && opts='' && compopt -o default 2>/dev/null"
      elseif ({ exec = 1, start = 1, stop = 1, kill = 1, pause = 1, resume = 1, rm = 1, inspect = 1, stats = 1,
        ps = 1, destroy = 1, commit = 1 })[c.name] then
        lines[#lines + 1] = "      [ -z \"$sub\" ] && more=\"$(hcs list -q 2>/dev/null)\""
      end
    end
    lines[#lines + 1] = "      ;;"
  end
  lines[#lines + 1] = ("    '') subs='%s'; opts='--help --version --root --log-level' ;;"):format(words(names))
  lines[#lines + 1] = "  esac"
  lines[#lines + 1] = "  if [[ \"$cur\" == -* ]]; then"
  lines[#lines + 1] = "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))"
  lines[#lines + 1] = "  else"
  lines[#lines + 1] = "    COMPREPLY=($(compgen -W \"$subs $more\" -- \"$cur\"))"
  lines[#lines + 1] = "  fi"
  lines[#lines + 1] = "}"
  lines[#lines + 1] = "complete -F _hcs hcs"
  return table.concat(lines, "\n") .. "\n"
end

return M
