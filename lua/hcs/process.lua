--- hcs.process: processes inside a compute system.
-- `hcs.process.create(system, params [, {stdio="inherit"}])` (same as
-- `system:create_process(params)`) -> process with fields stdin (writable
-- Lua file), stdout, stderr (readable) when pipes or a console were
-- requested, and methods pid, signal(sig), kill(sig), terminate, wait([ms]) ->
-- true, exit_code | false, exit_code, event_fd, resize(rows, cols),
-- close_stdin, properties, close.
-- `hcs.process.open(system, pid)` (HcsOpenProcess) -> a process created
-- elsewhere (`hcs exec -d`): signal, terminate, wait, exit_code (from its
-- reaper's "process exited" event; nil, message when none was written),
-- event_fd, properties; its output is in the system log (system:logs()).
local core = require("hcs.core").process

return {
  create = core.create,
  open = core.open,
}
