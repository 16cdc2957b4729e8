-- Every command and subcommand of the CLI, given bad arguments (not UTF-8,
-- huge, empty, unknown options, options without or with garbage values,
-- random bytes): each answers with a message and status 1, 2 or 125, never
-- a Lua traceback.  Runs the real binary against a fresh, empty state root.
local u = require "spec_util"
local cli = require "hcs.cli"

-- Never a path that exists: a directory given to run/create would be used
-- as a root file system.
local BAD = {
  "", "\xff\xfe", "\xc3\x28", "bad\x01ctl", ("x"):rep(20000), "--bogus", "-Z", "--=", "-",
  "./no-such-dir/\xff", "%s%d%n", "名前\xff",
}

describe("hcs CLI fuzzed arguments #root", function()
  local dir, env

  local NS

  setup(function()
    dir = u.tmpdir()
    env = { HCS_ROOT = dir .. "/root", HCS_WORKFLOW_PATH = dir .. "/workflows" }
    -- A network namespace of its own: a fuzzed command that did create a
    -- network would not touch the host's links and rules.
    NS = "hcs-test-fuzz-" .. dir:match("hcs%-test%.(.*)$")
    assert(u.run("ip netns add " .. NS))
  end)
  teardown(function()
    u.run("ip netns del " .. NS)
    u.rmtree(dir)
  end)

  --- Every command path: "image ls", "run", ...
  local function paths()
    local out = {}
    for _, name in ipairs(cli.commands()) do
      local cmd = cli.load(name)
      if cmd.subcommands then
        local subs = {}
        for sub in pairs(cmd.subcommands) do subs[#subs + 1] = sub end
        table.sort(subs)
        for _, sub in ipairs(subs) do out[#out + 1] = { path = { name, sub }, cmd = cmd.subcommands[sub] } end
      else
        out[#out + 1] = { path = { name }, cmd = cmd }
      end
    end
    return out
  end

  local rng = 20261206
  local function random_word()
    rng = (rng * 1103515245 + 12345) % 2147483648
    local n = rng % 24 + 1
    local b = {}
    for i = 1, n do
      rng = (rng * 1103515245 + 12345) % 2147483648
      b[i] = string.char(rng % 255 + 1)
    end
    -- Never a plain word a command could take as a valid new name.
    return "\xff" .. table.concat(b)
  end

  local function check(argv, failures)
    -- In the test's directory: whatever a command makes of a relative path
    -- (a state root given to --root...) stays in it.
    local parts = { "cd", u.quote(dir), "&&", "nsenter", "--net=/run/netns/" .. NS, "env",
      "HCS_ROOT=" .. u.quote(env.HCS_ROOT),
      "HCS_WORKFLOW_PATH=" .. u.quote(env.HCS_WORKFLOW_PATH), u.quote(u.hcs_bin) }
    for _, a in ipairs(argv) do parts[#parts + 1] = u.quote(a) end
    local ok, code, out, err = u.run(table.concat(parts, " ") .. " </dev/null")
    local shown = {}
    for i, a in ipairs(argv) do shown[i] = #a > 40 and (a:sub(1, 40) .. "...") or a end
    local label = ("hcs %s"):format(table.concat(shown, " "))
    local text = out .. err
    if ok or not (code == 1 or code == 2 or code == 125) then
      failures[#failures + 1] = ("%q: status %s"):format(label, tostring(code))
    end
    if text:find("stack traceback", 1, true) or text:find("%.lua:%d+:") or text:find("error object is") then
      failures[#failures + 1] = ("%q printed a traceback: %s"):format(label, text:sub(1, 300))
    end
    if err == "" then failures[#failures + 1] = ("%q said nothing on stderr"):format(label) end
  end

  it("answers every bad argument of every command with a message and 1, 2 or 125", function()
    local failures, runs = {}, 0
    for _, p in ipairs(paths()) do
      local function run(...)
        local argv = { table.unpack(p.path) }
        for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
        check(argv, failures)
        runs = runs + 1
      end
      for _, bad in ipairs(BAD) do run(bad) end
      run("--bogus-option", "\xff")
      run(random_word(), random_word(), random_word())
      -- each option of the command with no value, and with a garbage one
      local names = {}
      for name in pairs(p.cmd.options or {}) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        local kind = p.cmd.options[name].kind
        if kind ~= "flag" then
          run("--" .. name)
          run("--" .. name, "\xff\xfe", "\xff")
        else
          run("--" .. name .. "=x", "\xff")
        end
      end
    end
    assert.truthy(runs > 300)
    assert.same({}, failures)
  end)
end)
