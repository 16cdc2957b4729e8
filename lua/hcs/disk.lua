--- hcs.disk: virtual disks for virtual machines over qemu-img (docs/vm.md).
-- `create(path, {format="qcow2"|"raw", size=BYTES, backing=PATH})`,
-- `resize(path, size [, shrink])`, `inspect(path)` -> {Path, Format,
-- VirtualSize, ActualSize, BackingFile?, BackingFormat?}.  Sizes are bytes
-- or strings with a suffix K, M, G, T (powers of 1024).
local core = require("hcs.core").disk

local M = {}

--- "10G" -> bytes; integers pass through.
function M.parse_size(s)
  if math.type(s) == "integer" then return s end
  local n, unit = tostring(s):match("^(%d+)([KkMmGgTt]?)[iI]?[bB]?$")
  if not n then return nil, ("invalid size %q (expected bytes or N[K|M|G|T])"):format(tostring(s)) end
  local shift = ({ k = 10, m = 20, g = 30, t = 40 })[unit:lower()] or 0
  return math.tointeger(n) << shift
end

function M.create(path, o)
  o = o or {}
  local size, err = 0, nil
  if o.size then
    size, err = M.parse_size(o.size)
    if not size then error(err, 2) end
  end
  return core.create(path, { format = o.format, size = size, backing = o.backing })
end

function M.resize(path, size, shrink)
  local n, err = M.parse_size(size)
  if not n then error(err, 2) end
  return core.resize(path, n, shrink)
end

M.inspect = core.inspect

return M
