--- Rollback for workflows: each step that creates something registers how
-- to undo it; when a later step fails, the undo actions run in reverse
-- order, and the original error is raised again (with any undo failures
-- appended, never hiding the first error).
--
--   local tx = txn.new("realize web")
--   local id = tx:step("create scratch layer", function() ... return id end,
--                      function(id) layers:destroy(id, true) end)
--   tx:commit()   -- or tx:rollback(err)
local M = {}
local Txn = {}
Txn.__index = Txn

function M.new(name)
  return setmetatable({ name = name, undo = {}, done = false }, Txn)
end

--- Run fn(); on success remember undo(results...) for a rollback.
-- fn may return nil, message like the hcs API: that is a failure.
function Txn:step(what, fn, undo)
  assert(not self.done, "transaction already finished")
  local results = table.pack(fn())
  if results[1] == nil and results.n >= 2 then
    error(("%s: %s"):format(what, tostring(results[2])), 0)
  end
  if undo then
    self.undo[#self.undo + 1] = { what = what, fn = function() return undo(table.unpack(results, 1, results.n)) end }
  end
  return table.unpack(results, 1, results.n)
end

--- Register an undo action on its own.
function Txn:on_rollback(what, fn)
  self.undo[#self.undo + 1] = { what = what, fn = fn }
end

--- Undo everything done so far, newest first.  Returns the list of undo
-- failures (strings).
function Txn:rollback()
  local failures = {}
  for i = #self.undo, 1, -1 do
    local u = self.undo[i]
    local ok, a, b = pcall(u.fn)
    if not ok then
      failures[#failures + 1] = ("undo %s: %s"):format(u.what, tostring(a))
    elseif a == nil and b ~= nil then
      failures[#failures + 1] = ("undo %s: %s"):format(u.what, tostring(b))
    end
  end
  self.undo = {}
  self.done = true
  return failures
end

function Txn:commit()
  self.undo = {}
  self.done = true
end

--- Run body(tx) in a transaction: commit on success, roll back and
-- re-raise on error.
function M.run(name, body)
  local tx = M.new(name)
  local results = table.pack(xpcall(body, debug.traceback, tx))
  if results[1] then
    tx:commit()
    return table.unpack(results, 2, results.n)
  end
  local failures = tx:rollback()
  local msg = tostring(results[2])
  if #failures > 0 then msg = msg .. "\n(rollback problems: " .. table.concat(failures, "; ") .. ")" end
  error(msg, 0)
end

return M
