--- Utilities shared by the busted specs.
local M = {}

M.source_dir = os.getenv("HCS_SOURCE_DIR") or "."
M.build_dir = os.getenv("HCS_BUILD_DIR") or (M.source_dir .. "/build")
M.hcs_bin = os.getenv("HCS_BIN") or (M.build_dir .. "/hcs")

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = shell_quote

--- Run a shell command; returns ok, exit code, stdout, stderr.
function M.run(cmd)
  local errfile = os.tmpname()
  local p = assert(io.popen(cmd .. " 2>" .. errfile, "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  local f = io.open(errfile, "r")
  local err = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errfile)
  return ok == true, code, out, err
end

--- Run the built hcs with arguments (a list, quoted for the shell).
-- env: optional table of environment variables.
function M.hcs(argv, env, stdin)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  parts[#parts + 1] = shell_quote(M.hcs_bin)
  for _, a in ipairs(argv) do parts[#parts + 1] = shell_quote(a) end
  local cmd = table.concat(parts, " ")
  if stdin then cmd = "printf '%s' " .. shell_quote(stdin) .. " | " .. cmd end
  return M.run(cmd)
end

--- A fresh temporary directory /tmp/hcs-test.XXXXXX (check-leaks looks there).
function M.tmpdir()
  local ok, _, out = M.run("mktemp -d /tmp/hcs-test.XXXXXX")
  assert(ok, "mktemp failed")
  return (out:gsub("%s+$", ""))
end

--- Remove a directory tree (after unmounting anything left below it).
function M.rmtree(path)
  assert(path:match("^/tmp/hcs%-test%."), "refusing to remove " .. path)
  M.run("grep -o ' " .. path .. "[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l")
  M.run("rm -rf " .. shell_quote(path))
end

--- Lines of a file, or {} if missing.
function M.read_lines(path)
  local t = {}
  local f = io.open(path, "r")
  if not f then return t end
  for line in f:lines() do t[#t + 1] = line end
  f:close()
  return t
end

--- Mount points below a prefix (from /proc/self/mountinfo).
function M.mounts_under(prefix)
  local found = {}
  for _, line in ipairs(M.read_lines("/proc/self/mountinfo")) do
    local mp = line:match("^%S+ %S+ %S+ %S+ (%S+)")
    if mp and mp:sub(1, #prefix) == prefix then found[#found + 1] = mp end
  end
  return found
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

return M
