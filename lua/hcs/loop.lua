--- hcs.loop: one thread, many waits.  Coroutines (tasks) wait for fds
-- (a system's or process's event fd, an event subscription) without
-- blocking each other; the loop polls all the fds at once.  In the hcs
-- host Ctrl-C interrupts the poll with an error, as any wait.
--
--   local loop = require "hcs.loop"
--   local t = loop.spawn(function(cs) loop.wait_system(cs); return cs:properties() end, cs)
--   loop.run()                       -- until every task is done
--   local props = t:wait()           -- (or t:wait() inside another task)
--   local i, item = loop.wait_any{ t1, cs2, p3 }   -- the first finished
--
-- Outside a task (the main chunk), every wait runs the loop until it is
-- satisfied, so scripts can mix both styles.
local core = require "hcs.core"

local M = {}

local have_interrupt, interrupt = pcall(require, "hcs.interrupt")
local poll = have_interrupt and interrupt.wait or core.host.poll

local Task = {}
Task.__index = Task
Task.__name = "hcs.loop.task"

local runnable = {} -- { task, args... } to resume
local waiting = {}  -- task -> { fds = {...}, tasks = {...}, deadline = s|nil }
local current = {}  -- coroutine -> task

local clock = core.host.monotonic

function Task:__tostring() return ("hcs.loop.task (%s)"):format(self.done and "done" or "running") end

--- Start fn(...) as a task; it runs at the next turn of the loop.
function M.spawn(fn, ...)
  local t = setmetatable({ done = false }, Task)
  t.co = coroutine.create(function(...)
    return fn(...)
  end)
  current[t.co] = t
  runnable[#runnable + 1] = { t, table.pack(...) }
  return t
end

local function finish(t, ok, ...)
  t.done = true
  current[t.co] = nil
  if ok then
    t.results = table.pack(...)
  else
    t.error = ...
    -- Fail fast: a task's error ends the loop (with its traceback).
    error(debug.traceback(t.co, tostring(t.error)), 0)
  end
end

local function resume(t, args)
  local r = table.pack(coroutine.resume(t.co, table.unpack(args, 1, args.n)))
  if coroutine.status(t.co) == "dead" then
    finish(t, table.unpack(r, 1, r.n))
  else
    waiting[t] = r[2] -- the wait request it yielded
  end
end

--- One turn: run what is runnable, then poll the fds of the waiting tasks.
local function step()
  while #runnable > 0 do
    local batch = runnable
    runnable = {}
    for _, item in ipairs(batch) do resume(item[1], item[2]) end
    -- Tasks waiting on tasks that are done now.
    for t, w in pairs(waiting) do
      for _, other in ipairs(w.tasks or {}) do
        if other.done then
          waiting[t] = nil
          runnable[#runnable + 1] = { t, table.pack(true, other) }
          break
        end
      end
    end
  end
  if next(waiting) == nil then return false end
  local fds, timeout = {}, -1
  local t0 = clock()
  for _, w in pairs(waiting) do
    for _, fd in ipairs(w.fds or {}) do fds[#fds + 1] = fd end
    if w.deadline then
      local left = math.max(0, math.ceil(w.deadline - t0))
      if timeout < 0 or left < timeout then timeout = left end
    end
  end
  local ready = poll(fds, timeout)
  local t1 = clock()
  local set = {}
  for _, fd in ipairs(ready or {}) do set[fd] = true end
  for t, w in pairs(waiting) do
    local hit
    for _, fd in ipairs(w.fds or {}) do
      if set[fd] then
        hit = fd
        break
      end
    end
    if hit then
      waiting[t] = nil
      runnable[#runnable + 1] = { t, table.pack(true, hit) }
    elseif w.deadline and t1 >= w.deadline then
      waiting[t] = nil
      runnable[#runnable + 1] = { t, table.pack(false) }
    end
  end
  return true
end

--- Run the loop until every task is done (with fn: spawn it first and
-- return its results).
function M.run(fn, ...)
  local t = fn and M.spawn(fn, ...)
  while #runnable > 0 or next(waiting) ~= nil do step() end
  if t then return table.unpack(t.results, 1, t.results.n) end
end

--- Wait for { fds = {...}, tasks = {...}, ms = n }: true, the fd or task
-- that is ready; false on time-out.  Inside a task it yields; outside, it
-- runs the loop meanwhile.
local function wait(req)
  if req.ms and req.ms >= 0 then req.deadline = clock() + req.ms end
  local co = coroutine.running()
  if current[co] then return coroutine.yield(req) end
  -- The main chunk: a task of its own for the wait, run to completion.
  local result
  M.spawn(function() result = table.pack(coroutine.yield(req)) end)
  while result == nil do
    if #runnable == 0 and next(waiting) == nil then break end
    step()
  end
  return table.unpack(result or { false })
end

--- Wait until fd is readable (true) or ms passed (false).
function M.wait_fd(fd, ms)
  return (wait { fds = { fd }, ms = ms })
end

--- Wait for a compute system to stop; its properties.
function M.wait_system(cs, ms)
  local fd = cs:event_fd()
  if fd and not M.wait_fd(fd, ms) then return nil, "timed out" end
  return cs:properties()
end

--- Wait for a process to exit; true, its exit code.
function M.wait_process(p, ms)
  if not M.wait_fd(p:event_fd(), ms) then return false end
  return p:wait(0)
end

--- A task's results, once it is done (its error is raised again).
function Task:wait()
  if not self.done then wait { tasks = { self } } end
  if self.error then error(self.error, 0) end
  return table.unpack(self.results, 1, self.results.n)
end

local function is_task(x) return getmetatable(x) == Task end

--- The first of items (tasks, systems, processes, subscriptions: anything
-- with event_fd() or fd()) to be done: its index and the item; nil on
-- time-out (ms).
function M.wait_any(items, ms)
  local fds, tasks, by_fd = {}, {}, {}
  for i, item in ipairs(items) do
    if is_task(item) then
      if item.done then return i, item end
      tasks[#tasks + 1] = item
    else
      local fd = item.event_fd and item:event_fd() or item:fd()
      if not fd then return i, item end -- nothing alive to wait for
      fds[#fds + 1] = fd
      by_fd[fd] = i
    end
  end
  local ok, what = wait { fds = fds, tasks = tasks, ms = ms }
  if not ok then return nil end
  if is_task(what) then
    for i, item in ipairs(items) do if item == what then return i, item end end
  end
  return by_fd[what], items[by_fd[what]]
end

--- op:wait([ms]) for hcs.operation handles (cs:start_async() ...): yields
-- in a task, runs the loop outside one; then op:result() (true [, doc] or
-- nil, message, errno), or nil, "timed out".
if core.operation then
  function core.operation.wait(op, ms)
    if not op:done() and not M.wait_fd(op:fd(), ms) then return nil, "timed out" end
    return op:result()
  end
end

--- Pause the calling task for ms milliseconds.
function M.sleep(ms)
  wait { fds = {}, ms = ms }
end

return M
