-- Plan, customize, validate and realize a system step by step, look at it,
-- and tear it down (also when something fails on the way).
-- Usage: hcs examples/plan-and-realize.lua [IMAGE]
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
local sys = wf.realize(plan)
local done, err = pcall(function()
  local _, out = sys:run { "sh", "-c", "echo mode=$MODE host=$(hostname) init=$(cat /proc/1/cmdline | tr '\\0' ' ')" }
  io.write(out)
  local props = sys:properties { PropertyTypes = { "Statistics", "ProcessList" } }
  print(("%s: %s, memory in use %d kB, %d process(es)"):format(props.Id, props.State,
    props.Statistics.Memory.UsageBytes // 1024, #props.ProcessList))
end)
assert(wf.destroy(sys))
if not done then error(err, 0) end
