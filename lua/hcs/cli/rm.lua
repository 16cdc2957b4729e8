--- `hcs rm [-f] ID...`: delete stopped compute systems.  A system realized
-- from an image (`hcs run IMAGE`, `hcs realize`) is destroyed whole: its
-- network, scratch layer, image reference and plan go with it.
local cu = require "hcs.util.compute_cli"
local hcs = require "hcs"

local function remove(opts, id)
  local wf = hcs.workflow
  local ok, plan = pcall(wf.plans.load, id)
  if ok and plan and plan.State ~= "Planned" then
    if not opts.force and plan.State == "Realized" then
      local cs = hcs.compute.open(plan.Realized.SystemId)
      local props = cs and cs:properties()
      if cs then cs:close() end
      if props and props.State ~= "Stopped" then
        return nil, ("delete `%s`: the system is %s (stop it first or force)"):format(id, props.State)
      end
    end
    return wf.destroy_named(id, nil, { kill = opts.force })
  end
  local cs, err = hcs.compute.open(id)
  if not cs then return nil, err end
  local okd, derr = cs:delete(opts.force)
  cs:close()
  return okd, derr
end

-- As compute_cli.each, over ids rather than opened systems (a realized
-- system may have lost its compute system already).
local function each_id(opts, ids, fn)
  local failed, results = 0, {}
  for _, id in ipairs(ids) do
    local ok, msg = fn(id)
    if not ok then
      failed = failed + 1
      results[#results + 1] = { Id = id, Ok = false, Error = tostring(msg) }
      if not opts.json then io.stderr:write(("hcs: %s: %s\n"):format(id, tostring(msg))) end
    else
      results[#results + 1] = { Id = id, Ok = true }
      if not opts.json then print(id) end
    end
  end
  if opts.json then require("hcs.cli").print_json(results) end
  return failed > 0 and 1 or 0
end

return {
  summary = "delete compute systems (running ones need --force); realized systems are destroyed whole",
  usage = "hcs rm [--json] [-f] ID...",
  options = { json = cu.json_option, force = { kind = "flag", short = "f", help = "kill running systems first" } },
  min_args = 1,
  run = function(opts, ids) return each_id(opts, ids, function(id) return remove(opts, id) end) end,
}
