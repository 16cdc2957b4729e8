-- Start 20 compute systems at once from one coroutine loop (no threads),
-- and collect each one's output and exit code as it finishes.
-- Usage: hcs examples/many-systems.lua ROOTFS [COUNT]
--   ROOTFS: a root directory with /bin/sh (tests/fixtures/make-busybox-rootfs.sh makes one)
local hcs = require "hcs"
local loop = hcs.loop

local rootfs = assert(arg[1], "usage: hcs examples/many-systems.lua ROOTFS [COUNT]")
local count = math.tointeger(tonumber(arg[2] or "20"))

-- Each task creates and starts its system (a few ms of work each), then
-- waits for it: the waits overlap, and the loop polls all of them at once.
local function run_one(i)
  local id = ("many-%d-%d"):format(i, os.time())
  local script = ("sleep 0.$((%d %% 5)); echo system %d says hello; exit %d"):format(i, i, i % 4)
  local cs <close> = assert(hcs.compute.create(id, hcs.compute.config {
    rootfs = rootfs, command = { "/bin/sh", "-c", script } }, { stdio = "log" }))
  assert(cs:start())
  local props = assert(loop.wait_system(cs))
  local out = io.tmpfile()
  cs:logs { stdout = out, stderr = out }
  out:seek("set")
  local text = out:read("a")
  out:close()
  assert(cs:delete())
  return { i = i, code = props.ExitCode, output = text }
end

-- Events of every system of this root, printed as they happen.
local events = 0
local sub = hcs.events.subscribe({ Types = { "system" }, Actions = { "exited" } }, function(e)
  events = events + 1
end)

local tasks = {}
for i = 1, count do tasks[i] = loop.spawn(run_one, i) end

loop.run(function()
  local left = {}
  for i, t in ipairs(tasks) do left[i] = t end
  while #left > 0 do
    local k, t = loop.wait_any(left)
    table.remove(left, k)
    local r = t:wait()
    io.write(("system %2d exited %d: %s"):format(r.i, r.code, r.output))
  end
  loop.sleep(100) -- let the subscription see the last exits
  sub:close()
end)
print(("%d systems done, %d exited events seen"):format(count, events))
