--- hcs.events: the event journal of a state root (docs/events.md).
-- `hcs.events.open([filter [, root]])` -> subscription (next([ms]), fd(),
-- ended(), close()); filter {Ids=, Owners=, Types=, Actions=, Since=,
-- Until=} (Since/Until in seconds since the epoch here, ns in C).
-- `hcs.events.subscribe(filter, fn [, root])` calls fn(event) from the
-- event loop (hcs.loop) for each event until fn returns false or the
-- subscription is closed; it returns the subscription.
local core = require("hcs.core").events

local M = {}

local function to_c_filter(filter)
  if filter == nil then return nil end
  local f = {}
  for k, v in pairs(filter) do
    if k == "Since" or k == "Until" then
      f[k] = math.tointeger(math.floor(v * 1e9)) or error("filter " .. k .. ": not a time", 3)
    else
      f[k] = v
    end
  end
  return f
end

function M.open(filter, root)
  return core.subscribe(to_c_filter(filter), root)
end

function M.subscribe(filter, fn, root)
  local loop = require "hcs.loop"
  local sub, err, code = core.subscribe(to_c_filter(filter), root)
  if not sub then return nil, err, code end
  loop.spawn(function()
    while true do
      -- Closed by the caller (from fn or elsewhere): the task ends.
      local ok, e = pcall(sub.next, sub, 0)
      if not ok then return end
      if e then
        if fn(e) == false then
          sub:close()
          return
        end
      elseif sub:ended() then
        sub:close()
        return
      else
        loop.wait_fd(sub:fd())
      end
    end
  end)
  return sub
end

return M
