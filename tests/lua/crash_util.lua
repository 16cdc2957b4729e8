--- Crash-consistency harness: kill an hcs operation at each of its
-- persistence points in turn and check what the next process sees.
--
-- libhcs calls hcs_crash_point(label) at every persistence point (each
-- atomic write's rename, each directory fsync, each directory renamed into
-- or out of a store, each journal step; see src/core/crash.h).  With
-- HCS_CRASH_AT=N the Nth point reached kills the process with SIGKILL.
--
-- How to add a case (realize/destroy, networks, endpoints, ...):
--
--   local crash = require "crash_util"
--   local points = crash.each_point {
--     root = root,                       -- the state root the operation changes
--     snapshot = snap,                   -- optional: a copy of root restored before each attempt
--     command = function() return ("%s --root %s image import %s"):format(u.hcs_bin, root, archive) end,
--     check = function(n, label)         -- after the kill at point n (label: its name); assert the
--       ...                              -- invariants: stores open, same objects or the whole result,
--     end,                               -- nothing half-written visible, no mount left
--     done = function() ... end,         -- optional: after the run that was not killed
--   }
--   assert.truthy(points > 0)
--
-- each_point runs command() under HCS_CRASH_AT=1, 2, ... until a run is
-- not killed (the operation completed with fewer points than N), calling
-- check after each kill; it returns the number of points the operation
-- has.  Runs are sequential and under a cap (max, default 400), and every
-- kill is reported with its label when an assertion fails.  Without a
-- snapshot, each attempt starts from what the previous kill left (the
-- recovery itself is then killed too); with one, each starts afresh.
local u = require "spec_util"

local M = {}

--- Run a shell command with HCS_CRASH_AT=n; returns killed (bool), the
-- label of the point (or nil), ok, exit code, stdout, stderr.
function M.run_at(n, cmd)
  local ok, code, out, err = u.run(("HCS_CRASH_AT=%d %s"):format(n, cmd))
  local label = err:match("hcs: killed at crash point %d+: ([^\n]*)")
  -- a shell reports a child killed by SIGKILL as status 137
  local killed = label ~= nil and (code == 137 or code == 9 or not ok)
  return killed, label, ok, code, out, err
end

function M.each_point(opts)
  assert(type(opts.command) == "function", "each_point: command is required")
  assert(type(opts.check) == "function", "each_point: check is required")
  local max = opts.max or 400
  for n = 1, max do
    if opts.snapshot then
      assert(u.run(("rm -rf %s && cp -a %s %s"):format(u.quote(opts.root), u.quote(opts.snapshot),
        u.quote(opts.root))))
    end
    local killed, label, ok, code, out, err = M.run_at(n, opts.command())
    if not killed then
      assert(ok, ("the operation failed after %d crash points (%s): %s%s"):format(n - 1, tostring(code), out, err))
      if opts.done then opts.done(n - 1) end
      return n - 1
    end
    local passed, msg = pcall(opts.check, n, label)
    if not passed then error(("after the kill at crash point %d (%s): %s"):format(n, label, tostring(msg)), 0) end
  end
  error(("the operation still had crash points after %d runs"):format(max), 0)
end

--- Mount points below a directory (none may be left by a killed process).
function M.mounts_under(dir) return u.mounts_under(dir) end

return M
