-- hcs.util.args (CLI option parsing) and hcs.util.pretty (the REPL printer).
local args = require "hcs.util.args"
local pretty = require "hcs.util.pretty"

describe("hcs.util.args", function()
  local spec = {
    json = { kind = "flag", short = "j" },
    memory = { kind = "number", short = "m" },
    name = { kind = "string" },
    env = { kind = "list", short = "e" },
  }

  describe("parse()", function()
    it("parses long, short, = and separate values", function()
      local o, p = args.parse(spec, { "--json", "-m", "64", "--name=web", "-eA=1", "--env", "B=2", "x", "y" })
      assert.is_true(o.json)
      assert.equal(64, o.memory)
      assert.equal("web", o.name)
      assert.same({ "A=1", "B=2" }, o.env)
      assert.same({ "x", "y" }, p)
    end)
    it("stops at --", function()
      local o, p = args.parse(spec, { "a", "--", "--json", "-m" })
      assert.is_nil(o.json)
      assert.same({ "a", "--json", "-m" }, p)
    end)
    it("rejects unknown options with a usage error", function()
      local ok, e = pcall(args.parse, spec, { "--bogus" })
      assert.is_false(ok)
      assert.equal(args.UsageError, getmetatable(e))
      assert.matches("unknown option '%-%-bogus'", e.message)
      assert.is_nil(e.message:find("did you mean", 1, true))
    end)
    it("suggests the option a typo was meant to be", function()
      local ok, e = pcall(args.parse, spec, { "--jsno" })
      assert.is_false(ok)
      assert.equal("unknown option '--jsno', did you mean '--json'?", e.message)
      ok, e = pcall(args.parse, spec, { "--memroy=2" })
      assert.is_false(ok)
      assert.equal("unknown option '--memroy', did you mean '--memory'?", e.message)
    end)
    it("rejects a missing or non-numeric value", function()
      local ok, e = pcall(args.parse, spec, { "--memory" })
      assert.is_false(ok)
      assert.matches("needs a value", e.message)
      ok, e = pcall(args.parse, spec, { "--memory", "lots" })
      assert.is_false(ok)
      assert.matches("expects a number, got 'lots'", e.message)
    end)
    it("rejects a value given to a flag", function()
      local ok, e = pcall(args.parse, spec, { "--json=yes" })
      assert.is_false(ok)
      assert.matches("takes no value", e.message)
    end)
    it("treats negative numbers as positional", function()
      local _, p = args.parse(spec, { "-5" })
      assert.same({ "-5" }, p)
    end)
  end)

  it("help() lists every option", function()
    local h = args.help(spec)
    for _, name in ipairs({ "--json", "--memory", "--name", "--env" }) do
      assert.truthy(h:find(name, 1, true))
    end
  end)
end)

describe("hcs.util.pretty", function()
  it("formats nested tables with sorted keys", function()
    assert.equal('{\n  a = 1,\n  b = {\n    "x",\n  },\n}', pretty.format({ b = { "x" }, a = 1 }))
  end)
  it("quotes odd keys and marks cycles", function()
    local t = { ["odd key"] = true }
    t.self = t
    local s = pretty.format(t)
    assert.truthy(s:find('["odd key"] = true', 1, true))
    assert.truthy(s:find("self = <cycle>", 1, true))
  end)
  it("formats scalars", function()
    assert.equal('"s"', pretty.format("s"))
    assert.equal("nil", pretty.format(nil))
    assert.equal("{}", pretty.format({}))
  end)
end)
