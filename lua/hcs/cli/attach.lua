--- `hcs attach ID`: connect the terminal to a running system's init (its
-- console, or its output and, when created with -i, its stdin) through the
-- monitor's attach socket, until the detach keys (the system goes on) or
-- its end (the exit status is the system's), as `docker attach`.
local cli = require "hcs.cli"
local cu = require "hcs.util.compute_cli"

return {
  summary = "attach the terminal to a running compute system",
  usage = "hcs attach [--detach-keys KEYS] [--no-stdin] ID",
  description = "Output (and a console) live from the system's monitor; several clients may attach at once.\n" ..
    "KEYS detach and leave the system running (default ctrl-p,ctrl-q; docker's format: a character or\n" ..
    "ctrl-<key>, comma-separated; '' for none).  Exit status: the system's once it stopped, 0 when detached.",
  options = {
    ["detach-keys"] = cu.detach_keys_option,
    ["no-stdin"] = { kind = "flag", help = "do not connect stdin (output only)" },
  },
  min_args = 1,
  max_args = 1,
  run = function(opts, ids)
    local cs = cu.open(ids[1])
    return cu.attach(cs, { stdin = not opts["no-stdin"] and nil,
      detach_keys = cu.detach_keys(opts["detach-keys"]) })
  end,
}
