--- `hcs build FILE.lua`: run an authoring recipe and capture the result
-- (hcs.workflow.build; a recipe's relative copy sources are taken from its
-- folder).
local cli = require "hcs.cli"
local hcs = require "hcs"

return {
  summary = "build an image from an authoring recipe (plan, realize, author, capture)",
  usage = "hcs build RECIPE.lua [--name IMAGE] [--version V] [--keep] [--json]",
  description = "A recipe returns { from, name, version, publisher, customize, author = function(sys) ... end };\n" ..
    "relative paths given to sys:copy are taken from the recipe's folder.",
  options = {
    name = { kind = "string", short = "n", help = "image name (overrides the recipe)" },
    version = { kind = "string", help = "image version (overrides the recipe)" },
    keep = { kind = "flag", help = "keep the build system after capture" },
    json = { kind = "flag", short = "j", help = "print JSON" },
  },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local recipe, err = hcs.workflow.build_recipe(args[1])
    if not recipe then cli.fail("%s", err) end
    local ok, img = pcall(hcs.workflow.build, recipe, opts)
    if not ok then cli.fail("%s", cli.message(img)) end
    cli.output(opts, img, function(i) print(("built %s:%s %s"):format(i.Name, i.Version, i.Id:sub(1, 12))) end)
  end,
}
