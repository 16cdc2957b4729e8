--- `hcs build FILE.lua`: run an authoring recipe and capture the result.
-- A recipe is a Lua file returning:
--   { from = "busybox", name = "demo/app", version = "1.0", publisher = "Demo",
--     customize = { memory = 128, network = "nat" },   -- optional
--     author = function(sys) sys:run "..."; sys:copy(src, dst); sys:config{ Cmd = {...} } end }
-- The build system is realized with an idle init, authored, captured and
-- destroyed; any failure rolls back everything the build created.
local cli = require "hcs.cli"
local hcs = require "hcs"

local M = {
  summary = "build an image from an authoring recipe (plan, realize, author, capture)",
  usage = "hcs build RECIPE.lua [--name IMAGE] [--version V] [--keep] [--json]",
  options = {
    name = { kind = "string", short = "n", help = "image name (overrides the recipe)" },
    version = { kind = "string", help = "image version (overrides the recipe)" },
    keep = { kind = "flag", help = "keep the build system after capture" },
    json = { kind = "flag", short = "j", help = "print JSON" },
  },
  min_args = 1,
  max_args = 1,
}

local function load_recipe(path)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then cli.fail("%s", err) end
  local ok, r = pcall(chunk)
  if not ok then cli.fail("%s", tostring(r)) end
  if type(r) ~= "table" then cli.fail("%s: must return a table, got %s", path, type(r)) end
  local fields = { from = "string", name = "string", author = "function" }
  for field, want in pairs(fields) do
    if type(r[field]) ~= want then cli.fail("%s: field '%s' must be a %s, got %s", path, field, want, type(r[field])) end
  end
  for _, field in ipairs({ "version", "publisher" }) do
    if r[field] ~= nil and type(r[field]) ~= "string" then
      cli.fail("%s: field '%s' must be a string, got %s", path, field, type(r[field]))
    end
  end
  if r.customize ~= nil and type(r.customize) ~= "table" then
    cli.fail("%s: field 'customize' must be a table, got %s", path, type(r.customize))
  end
  return r
end

--- Build an image from a recipe table; returns the image summary.
function M.build(recipe, opts)
  opts = opts or {}
  local wf = hcs.workflow
  local spec = { image = recipe.from, name = ("build-%d-%d"):format(os.time(), math.random(1, 1e6)) }
  for k, v in pairs(recipe.customize or {}) do spec[k] = v end
  local plan = wf.plan(spec)
  local ok, sys = pcall(wf.realize, plan, { idle = true })
  if not ok then
    wf.plans.remove(plan.Name)
    error(sys, 0)
  end
  local results = table.pack(pcall(function()
    recipe.author(sys)
    -- The build system is destroyed next: move its changes, do not copy them.
    return wf.capture(sys, { name = opts.name or recipe.name, version = opts.version or recipe.version,
      publisher = recipe.publisher, created_by = "hcs build", stop = not opts.keep })
  end))
  if not opts.keep or not results[1] then
    local dok, derr = wf.destroy(sys)
    if not dok and results[1] then error(derr, 0) end
  end
  if not results[1] then error(results[2], 0) end
  return results[2]
end

function M.run(opts, args)
  local recipe = load_recipe(args[1])
  local ok, img = pcall(M.build, recipe, opts)
  if not ok then cli.fail("%s", tostring(img)) end
  cli.output(opts, img, function(i) print(("built %s:%s %s"):format(i.Name, i.Version, i.Id:sub(1, 12))) end)
end

return M
