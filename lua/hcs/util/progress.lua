--- A progress bar on stderr for long operations (imports, exports).
-- Drawn only when stderr is a terminal, so scripts and logs stay clean.
--   local bar = progress.new{ label = "import" }
--   hcs.layer.import(path, { progress = bar:callback() })
--   bar:finish()
local M = {}

local Bar = {}
Bar.__index = Bar

local function human(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d %s"):format(n, units[i]) or ("%.1f %s"):format(n, units[i])
end
M.human = human

-- A wall clock: hcs.core.layer.now (monotonic) when the binding is there.
local function default_clock()
  local ok, core = pcall(require, "hcs.core")
  if ok and core.layer and core.layer.now then return core.layer.now end
  return os.time
end

local tty_cache
--- Is stderr a terminal?  (asks the shell: `[ -t 2 ]` sees our stderr)
function M.stderr_is_tty()
  if tty_cache == nil then tty_cache = os.execute("[ -t 2 ]") == true end
  return tty_cache
end

--- opts: label, width (bar cells, default 30), stream (default io.stderr),
-- enabled (default: stream is a tty), clock (function returning wall seconds).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    label = opts.label or "",
    width = opts.width or 30,
    stream = opts.stream or io.stderr,
    clock = opts.clock or default_clock(),
    drawn = false,
  }, Bar)
  if opts.enabled == nil then self.enabled = M.stderr_is_tty() else self.enabled = opts.enabled end
  self.start = self.clock()
  return self
end

--- The text of one frame (without the carriage return), for done/total bytes.
function Bar:render(done, total)
  local elapsed = math.max(self.clock() - self.start, 1e-6)
  local rate = human(done / elapsed) .. "/s"
  if total and total > 0 then
    local frac = math.min(done / total, 1)
    local full = math.floor(frac * self.width + 0.5)
    return ("%s [%s%s] %3d%% %s / %s %s"):format(self.label, ("#"):rep(full), ("."):rep(self.width - full),
      math.floor(frac * 100), human(done), human(total), rate)
  end
  return ("%s %s %s"):format(self.label, human(done), rate)
end

function Bar:update(done, total)
  if not self.enabled then return end
  self.stream:write("\r", self:render(done, total), "\27[K")
  self.stream:flush()
  self.drawn = true
end

--- A function(done, total) to pass as a `progress` option; nil when the bar
-- is not drawn, so the operation does not count its work for nothing (an
-- export walks the tree twice to know its total).
function Bar:callback()
  if not self.enabled then return nil end
  return function(done, total) self:update(done, total) end
end

function Bar:finish()
  if self.enabled and self.drawn then
    self.stream:write("\r\27[K")
    self.stream:flush()
  end
  self.drawn = false
end

return M
