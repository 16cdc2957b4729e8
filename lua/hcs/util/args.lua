--- Command-line parsing for hcs CLI commands (GNU style, as docker's).
-- spec: { name = { kind = "flag"|"string"|"number"|"list", short = "j", help = "..." }, ... }
-- Accepts --name, --name=value, --name value, -j, combined short flags
-- (-it, -dit) with a value for the last one attached or next (-p8080:80,
-- -dp 8080:80), and `--` to end options.
-- With parse_opts.stop_at_positional (commands that take a command line:
-- run, exec, create), options end at the first positional argument: in
-- `hcs run IMAGE head -n 1 FILE` the `-n` belongs to head.  One `--` right
-- after that positional is dropped, so `hcs run IMAGE -- cmd` keeps working.
-- Returns opts, positional; raises a usage error (see hcs.cli) on bad input.
local M = {}

local UsageError = {}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.message end
M.UsageError = UsageError

--- Quote an argument for a message: printable as given, else %q-escaped
-- (a non-UTF-8 or control byte never reaches the terminal raw).
local function show(s)
  s = tostring(s)
  if #s > 80 then s = s:sub(1, 77) .. "..." end
  if utf8.len(s) and not s:find("[%c]") then return "'" .. s .. "'" end
  return (("%q"):format(s):gsub("\\\n", "\\n"))
end
M.show = show

--- Levenshtein distance between two strings (bytes), for suggestions.
function M.distance(a, b)
  if #a > 200 or #b > 200 then return math.huge end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    local ai = a:byte(i)
    for j = 1, #b do
      local cost = ai == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- Close matches of `word` among candidates (a list, or the keys of a
-- table), best first: at most `max` (default 3) within a distance of a
-- third of the word's length (at least 2), or containing it.
function M.close_matches(word, candidates, max)
  word = tostring(word)
  local list = {}
  if #candidates == 0 then
    for k in pairs(candidates) do list[#list + 1] = k end
  else
    for _, k in ipairs(candidates) do list[#list + 1] = k end
  end
  local limit = math.max(2, #word // 3)
  local scored = {}
  for _, c in ipairs(list) do
    local d = M.distance(word, c)
    if #word >= 3 and (c:find(word, 1, true) or word:find(c, 1, true)) then d = math.min(d, limit) end
    if d <= limit then scored[#scored + 1] = { c, d } end
  end
  table.sort(scored, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
  local out = {}
  for i = 1, math.min(max or 3, #scored) do out[i] = scored[i][1] end
  return out
end

--- The best close match of word among candidates, or nil.
function M.suggest(word, candidates)
  return M.close_matches(word, candidates, 1)[1]
end

local function usage_error(fmt, ...)
  error(setmetatable({ message = fmt:format(...), usage = true }, UsageError), 0)
end
M.usage_error = usage_error

function M.parse(spec, argv, parse_opts)
  local stop_at_positional = parse_opts and parse_opts.stop_at_positional
  local opts, positional = {}, {}
  local by_short = {}
  for name, s in pairs(spec) do
    if s.short then by_short[s.short] = name end
    if s.kind == "list" then opts[name] = {} end
    if s.default ~= nil then opts[name] = s.default end
  end
  local function set(name, value, has_value, i, shown)
    local s = spec[name]
    if not s then
      local hint = M.suggest(name, spec)
      usage_error("unknown option %s%s", show("--" .. name), hint and (", did you mean '--" .. hint .. "'?") or "")
    end
    shown = shown or ("'--" .. name .. "'")
    if s.kind == "flag" then
      if has_value then usage_error("option %s takes no value", shown) end
      opts[name] = true
      return i
    end
    if not has_value then
      i = i + 1
      value = argv[i]
      if value == nil then usage_error("option %s needs a value", shown) end
    end
    if s.kind == "number" then
      local n = tonumber(value)
      if not n then usage_error("option %s expects a number, got %s", shown, show(value)) end
      value = n
    end
    if s.kind == "list" then
      table.insert(opts[name], value)
    else
      opts[name] = value
    end
    return i
  end
  local function rest(from)
    for j = from, #argv do positional[#positional + 1] = argv[j] end
  end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      rest(i + 1)
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      if name then
        i = set(name, value, true, i)
      else
        i = set(a:sub(3), nil, false, i)
      end
    elseif a:sub(1, 1) == "-" and #a > 1 and not tonumber(a) then
      -- A cluster of short options: flags, then at most one that takes a
      -- value (the rest of the word, or the next argument).
      local j = 2
      while j <= #a do
        local c = a:sub(j, j)
        local name = by_short[c]
        if not name then
          usage_error(#a > 2 and "unknown option '-%s' in %s" or "unknown option %s", #a > 2 and c or show(a),
            show(a))
        end
        if spec[name].kind == "flag" then
          set(name, nil, false, i)
          j = j + 1
        else
          if j < #a then
            i = set(name, a:sub(j + 1), true, i, "'-" .. c .. "'")
          else
            i = set(name, nil, false, i, "'-" .. c .. "'")
          end
          break
        end
      end
    else
      positional[#positional + 1] = a
      if stop_at_positional then
        rest(argv[i + 1] == "--" and i + 2 or i + 1)
        break
      end
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
