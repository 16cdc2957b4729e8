--- Command-line parsing for hcs CLI commands (GNU style).
-- spec: { name = { kind = "flag"|"string"|"number"|"list", short = "j", help = "..." }, ... }
-- Accepts --name, --name=value, --name value, -j, and `--` to end options.
-- Returns opts, positional; raises a usage error (see hcs.cli) on bad input.
local M = {}

local UsageError = {}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.message end
M.UsageError = UsageError

local function usage_error(fmt, ...)
  error(setmetatable({ message = fmt:format(...), usage = true }, UsageError), 0)
end
M.usage_error = usage_error

function M.parse(spec, argv)
  local opts, positional = {}, {}
  local by_short = {}
  for name, s in pairs(spec) do
    if s.short then by_short[s.short] = name end
    if s.kind == "list" then opts[name] = {} end
    if s.default ~= nil then opts[name] = s.default end
  end
  local function set(name, value, has_value, i)
    local s = spec[name]
    if not s then usage_error("unknown option '--%s'", name) end
    if s.kind == "flag" then
      if has_value then usage_error("option '--%s' takes no value", name) end
      opts[name] = true
      return i
    end
    if not has_value then
      i = i + 1
      value = argv[i]
      if value == nil then usage_error("option '--%s' needs a value", name) end
    end
    if s.kind == "number" then
      local n = tonumber(value)
      if not n then usage_error("option '--%s' expects a number, got '%s'", name, value) end
      value = n
    end
    if s.kind == "list" then
      table.insert(opts[name], value)
    else
      opts[name] = value
    end
    return i
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do positional[#positional + 1] = argv[j] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      if name then
        i = set(name, value, true, i)
      else
        i = set(a:sub(3), nil, false, i)
      end
    elseif a:sub(1, 1) == "-" and #a > 1 and not tonumber(a) then
      local name = by_short[a:sub(2, 2)]
      if not name or (#a > 2 and spec[name].kind == "flag") then usage_error("unknown option '%s'", a) end
      if #a > 2 then
        i = set(name, a:sub(3), true, i)
      else
        i = set(name, nil, false, i)
      end
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return opts, positional
end

--- Lines of option help for a spec, sorted by name.
function M.help(spec)
  local names = {}
  for name in pairs(spec) do names[#names + 1] = name end
  table.sort(names)
  local lines = {}
  for _, name in ipairs(names) do
    local s = spec[name]
    local left = (s.short and ("-" .. s.short .. ", ") or "    ") .. "--" .. name
    if s.kind ~= "flag" then left = left .. " " .. (s.metavar or s.kind:upper()) end
    lines[#lines + 1] = ("  %-28s %s"):format(left, s.help or "")
  end
  return table.concat(lines, "\n")
end

return M
