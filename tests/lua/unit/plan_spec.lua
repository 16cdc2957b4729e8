-- hcs.workflow.plan: plan documents read from disk are checked for their
-- shape, so a hand-edited or hostile file gives a message naming the field
-- instead of a Lua error inside a step (fuzz_plan found validate raising on
-- a plan without an image).
local su = require "spec_util"
local plans = require "hcs.workflow.plan"

describe("hcs.workflow.plan", function()
  local T
  before_each(function()
    T = su.tmpdir()
    assert(require("hcs.core").fs.mkdir_p(T .. "/plans", 448))
  end)
  after_each(function() su.rmtree(T) end)

  local function load(text)
    su.write_file(plans.path("p", T), text)
    return plans.load("p", T)
  end

  describe("load()", function()
    it("accepts a well-formed plan and keeps unknown fields", function()
      local plan = assert(load('{"Name":"p","Image":"busybox","Memory":{"SizeInMB":64},"Command":["sh"],'
        .. '"Environment":{"A":"b"},"ImageConfig":{"x":1}}'))
      assert.equal(64, plan.Memory.SizeInMB)
      assert.equal(1, plan.ImageConfig.x)
    end)
    for _, case in ipairs({
      { "1", "expected a JSON object" },
      { "[]", "expected a JSON object" },
      { '{"Name":"p"}', "Image: expected a string" },
      { '{"Name":1,"Image":"i"}', "Name: expected a string" },
      { '{"Name":"p","Image":"i","MappedDirectories":[1]}', "plan.MappedDirectories[1]: expected an object" },
      { '{"Name":"p","Image":"i","MappedDirectories":[{"HostPath":2}]}', "plan.MappedDirectories[1].HostPath: expected a string" },
      { '{"Name":"p","Image":"i","Network":{"PortMappings":["a"]}}', "plan.Network.PortMappings[1]: expected an object" },
      { '{"Name":"p","Image":"i","Memory":"big"}', "plan.Memory: expected an object" },
      { '{"Name":"p","Image":"i","Command":[1]}', "plan.Command[1]: expected a string" },
      { '{"Name":"p","Image":"i","Environment":{"A":{}}}', "plan.Environment: expected a map of strings" },
    }) do
      it("refuses " .. case[1], function()
        local plan, err = load(case[1])
        assert.is_nil(plan)
        assert.matches(case[2], err, 1, true)
      end)
    end
  end)
end)
