--- hcs.workflow.build: an image from an authoring recipe (plan, realize
-- with an idle init, author, capture, destroy), the engine of `hcs build`.
-- A recipe is a table, or a Lua file returning one:
--   { from = "busybox", name = "demo/app", version = "1.0", publisher = "Demo",
--     customize = { memory = 128, network = "nat" },   -- optional
--     author = function(sys) sys:run "..."; sys:copy("app.sh", "/app/app.sh"); sys:config{ Cmd = {...} } end }
-- A relative source of sys:copy is taken from the recipe's folder (not the
-- caller's working directory), so a recipe builds the same from anywhere.
-- Any failure rolls back everything the build created.
local hcs = require "hcs"

local M = {}

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return require("lfs").currentdir() .. "/" .. path
end

--- Load and check a recipe file; returns the recipe, or nil and a message
-- naming the field that is wrong.
function M.load(path)
  if type(path) ~= "string" then error("load: expected the path of a recipe file", 2) end
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  local ok, r = pcall(chunk)
  if not ok then return nil, ("%s: %s"):format(path, tostring(r)) end
  local okc, cerr = M.check(r, path)
  if not okc then return nil, cerr end
  r.dir = r.dir or dirname(absolute(path))
  return r
end

--- Check a recipe table; returns true, or nil and what is wrong.
function M.check(r, where)
  where = where or "recipe"
  if type(r) ~= "table" then return nil, ("%s: must return a table, got %s"):format(where, type(r)) end
  local fields = { from = "string", name = "string", author = "function" }
  for _, field in ipairs({ "from", "name", "author" }) do
    if type(r[field]) ~= fields[field] then
      return nil, ("%s: field '%s' must be a %s, got %s"):format(where, field, fields[field], type(r[field]))
    end
  end
  for _, field in ipairs({ "version", "publisher", "dir" }) do
    if r[field] ~= nil and type(r[field]) ~= "string" then
      return nil, ("%s: field '%s' must be a string, got %s"):format(where, field, type(r[field]))
    end
  end
  if r.customize ~= nil and type(r.customize) ~= "table" then
    return nil, ("%s: field 'customize' must be a table, got %s"):format(where, type(r.customize))
  end
  return true
end

--- The system as the recipe's author sees it: the System object, with
-- relative copy sources taken from the recipe's folder.
local function author_view(sys, dir)
  local view = {}
  function view.copy(_, src, dst)
    if type(src) == "string" and src:sub(1, 1) ~= "/" then src = dir .. "/" .. src end
    return sys:copy(src, dst)
  end
  return setmetatable(view, {
    __index = function(_, k)
      local v = sys[k]
      if type(v) ~= "function" then return v end
      return function(self, ...)
        if self == view then self = sys end
        return v(self, ...)
      end
    end,
    __tostring = function() return tostring(sys) end,
  })
end

--- Build an image from a recipe (a table or a file path).
-- opts: { name, version (override the recipe's), keep = true (keep the
-- build system: it is not destroyed and the changes are copied), root }.
-- Returns the image (as image inspect); raises on failure after rolling back.
function M.build(recipe, opts)
  opts = opts or {}
  if type(recipe) == "string" then
    local r, err = M.load(recipe)
    if not r then error(err, 0) end
    recipe = r
  else
    local ok, err = M.check(recipe)
    if not ok then error(err, 2) end
  end
  local dir = recipe.dir or require("lfs").currentdir()
  local wf = hcs.workflow
  local spec = { image = recipe.from, name = ("build-%d-%d"):format(os.time(), math.random(1, 1e6)), root = opts.root }
  for k, v in pairs(recipe.customize or {}) do spec[k] = v end
  local plan = wf.plan(spec)
  local ok, sys = pcall(wf.realize, plan, { idle = true })
  if not ok then
    wf.plans.remove(plan.Name, opts.root)
    error(sys, 0)
  end
  local results = table.pack(pcall(function()
    recipe.author(author_view(sys, dir))
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

return M
