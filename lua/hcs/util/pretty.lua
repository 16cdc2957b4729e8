--- Pretty printer for Lua values: sorted keys, indentation, cycle marks.
-- Used by the REPL to show results and by CLI commands for human output.
local M = {}

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function format_scalar(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if v == nil then return "nil" end
  return tostring(v)
end

--- Format a value as a string.
-- @param v any value
-- @param opts optional {indent = "  ", depth = 8}
function M.format(v, opts)
  opts = opts or {}
  local indent = opts.indent or "  "
  local max_depth = opts.depth or 8
  local out, seen = {}, {}
  local function emit(x, level)
    if type(x) ~= "table" then
      out[#out + 1] = format_scalar(x)
      return
    end
    if seen[x] then
      out[#out + 1] = "<cycle>"
      return
    end
    local mt = getmetatable(x)
    if mt and mt.__tostring then
      out[#out + 1] = tostring(x)
      return
    end
    if level >= max_depth then
      out[#out + 1] = "{...}"
      return
    end
    local n = #x
    local keys = sorted_keys(x)
    if #keys == 0 then
      out[#out + 1] = "{}"
      return
    end
    seen[x] = true
    local pad = indent:rep(level + 1)
    out[#out + 1] = "{\n"
    for i = 1, n do
      out[#out + 1] = pad
      emit(x[i], level + 1)
      out[#out + 1] = ",\n"
    end
    for _, k in ipairs(keys) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then
        out[#out + 1] = pad
        out[#out + 1] = is_identifier(k) and k or ("[" .. format_scalar(k) .. "]")
        out[#out + 1] = " = "
        emit(x[k], level + 1)
        out[#out + 1] = ",\n"
      end
    end
    out[#out + 1] = indent:rep(level) .. "}"
    seen[x] = nil
  end
  emit(v, 0)
  return table.concat(out)
end

--- Print each argument formatted, tab-separated (the REPL's printer).
-- Top-level strings print raw, as in the stock lua REPL.
function M.print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    local v = select(i, ...)
    parts[i] = type(v) == "string" and v or M.format(v)
  end
  io.stdout:write(table.concat(parts, "\t"), "\n")
end

return M
