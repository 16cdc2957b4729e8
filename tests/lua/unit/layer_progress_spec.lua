-- hcs.util.progress: the progress bar used by `hcs layer import/export`.
local progress = require "hcs.util.progress"

local function fake_stream()
  local s = { buf = {} }
  function s:write(...) for _, v in ipairs { ... } do self.buf[#self.buf + 1] = v end return self end
  function s:flush() end
  return s
end

describe("hcs.util.progress", function()
  it("renders a bar with percentage, sizes and rate", function()
    local t = 0
    local bar = progress.new { label = "import", width = 10, enabled = true, stream = fake_stream(),
      clock = function() return t end }
    t = 2
    local text = bar:render(512 * 1024 * 1024, 1024 * 1024 * 1024)
    assert.matches("^import %[#####%.%.%.%.%.%]  50%% 512%.0 MiB / 1%.0 GiB 256%.0 MiB/s$", text)
  end)

  it("renders without a total", function()
    local bar = progress.new { label = "export", enabled = true, stream = fake_stream(), clock = function() return 1 end }
    assert.matches("^export 2%.0 KiB", bar:render(2048, 0))
  end)

  it("writes to the stream only when enabled, and clears the line at the end", function()
    local s = fake_stream()
    local bar = progress.new { enabled = false, stream = s }
    assert.is_nil(bar:callback()) -- no callback: the operation need not count its work
    bar:update(1, 2)
    bar:finish()
    assert.equal(0, #s.buf)
    s = fake_stream()
    bar = progress.new { enabled = true, stream = s }
    bar:callback()(1, 2)
    bar:finish()
    local all = table.concat(s.buf)
    assert.matches("^\r", all)
    assert.matches("\r\27%[K$", all)
  end)

  it("formats sizes", function()
    assert.equal("10 B", progress.human(10))
    assert.equal("1.5 KiB", progress.human(1536))
  end)
end)
