-- Plan, customize, validate and realize a system step by step, then look at
-- it and tear it down.  Usage: hcs examples/plan-and-realize.lua [IMAGE]
local hcs = require "hcs"
local wf = hcs.workflow

local image = arg[1] or "busybox"
local plan = wf.plan { image = image, name = "example-web" }
wf.customize(plan, { memory = 64, cpus = 1, env = { MODE = "example" }, command = "sleep 3600" })
local ok, problems = wf.validate(plan)
if not ok then
  wf.plans.remove(plan.Name)
  error("not valid:\n  " .. table.concat(problems, "\n  "))
end
local sys <close> = wf.realize(plan)
local code, out = sys:run { "sh", "-c", "echo $MODE; hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes" }
io.write(out)
print(hcs.json.encode(sys:properties { PropertyTypes = { "Statistics" } }, { pretty = true }))
assert(wf.destroy(sys))
