-- hcs.cli: the command dispatcher, driven in-process.
local cli = require "hcs.cli"

local function capture(fn)
  local out_path, err_path = os.tmpname(), os.tmpname()
  local saved_out, saved_err = io.output(), io.stderr
  local out_f, err_f = assert(io.open(out_path, "w")), assert(io.open(err_path, "w"))
  io.output(out_f)
  local real_stdout = io.stdout
  -- Redirect the standard handles the commands write to.
  local ok, status = pcall(function()
    io.stdout = out_f
    io.stderr = err_f
    return fn()
  end)
  io.stdout, io.stderr = real_stdout, saved_err
  io.output(saved_out)
  out_f:close()
  err_f:close()
  local out = assert(io.open(out_path)):read("a")
  local err = assert(io.open(err_path)):read("a")
  os.remove(out_path)
  os.remove(err_path)
  assert(ok, status)
  return status, out, err
end

describe("hcs.cli", function()
  it("lists commands, each loadable and with a summary", function()
    local names = cli.commands()
    assert.truthy(#names >= 3)
    for _, name in ipairs(names) do
      local cmd = cli.load(name)
      assert.is_table(cmd, name)
      assert.is_string(cmd.summary, name)
      assert.truthy(cmd.run or cmd.subcommands, name)
    end
  end)

  it("refuses command names that are not plain words", function()
    assert.is_nil(cli.load("../init"))
    assert.is_nil(cli.load("Info"))
    assert.is_nil(cli.load("no-such-command"))
  end)

  it("main() returns 2 for an unknown command", function()
    local status, _, err = capture(function() return cli.main("no-such-command") end)
    assert.equal(2, status)
    assert.matches("unknown command 'no%-such%-command'", err)
  end)

  it("main() returns 2 and the usage for a bad option", function()
    local status, _, err = capture(function() return cli.main("version", "--bogus") end)
    assert.equal(2, status)
    assert.matches("unknown option", err)
    assert.matches("usage: hcs version", err)
  end)

  it("main() returns 2 for too many arguments", function()
    local status, _, err = capture(function() return cli.main("version", "extra") end)
    assert.equal(2, status)
    assert.matches("expected 0 arguments, got 1", err)
  end)

  it("prints --json output that parses", function()
    local status, out = capture(function() return cli.main("version", "--json") end)
    assert.equal(0, status)
    local v = require("cjson").decode(out)
    assert.equal(require("hcs").version, v.Version)
  end)

  it("fail() ends a command with status 1 and its message", function()
    package.loaded["hcs.cli.test_failing"] = nil
    local cmd = { summary = "t", run = function() cli.fail("could not %s", "frob") end }
    package.preload["hcs.cli.test_failing"] = function() return cmd end
    local saved = package.searchpath
    package.searchpath = function(name, path)
      if name == "hcs.cli.test_failing" then return "preloaded" end
      return saved(name, path)
    end
    local status, _, err = capture(function() return cli.main("test-failing") end)
    package.searchpath = saved
    assert.equal(1, status)
    assert.equal("hcs test-failing: could not frob\n", err)
  end)

  it("check() passes values through and fails on nil, message", function()
    assert.equal(5, cli.check(5))
    local ok, e = pcall(cli.check, nil, "open `x`: No such file or directory", 2)
    assert.is_false(ok)
    assert.equal("open `x`: No such file or directory", e.message)
  end)

  describe("generated man pages and bash completion", function()
    local docgen = require "hcs.util.docgen"

    local function complete(line)
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(docgen.bash_completion())
      f:close()
      -- COMP_WORDS as bash splits the line; a trailing space starts a new word.
      local words = {}
      for w in line:gmatch("%S+") do words[#words + 1] = "'" .. w .. "'" end
      if line:sub(-1) == " " then words[#words + 1] = "''" end
      local body = ("compopt() { :; }; source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _hcs; " ..
        "printf '%%s\\n' \"${COMPREPLY[@]}\""):format(script, table.concat(words, " "), #words - 1)
      local cmd = "bash -c '" .. body:gsub("'", "'\\''") .. "'"
      local p = assert(io.popen("PATH=/nonexistent:$PATH " .. cmd))
      local out = p:read("a")
      p:close()
      os.remove(script)
      local got = {}
      for w in out:gmatch("%S+") do got[#got + 1] = w end
      table.sort(got)
      return got
    end

    it("completes commands, subcommands and each command's options", function()
      assert.same({ "realize", "resume", "rm", "run" }, complete("hcs r"))
      assert.same({ "import", "inspect", "install", "install-os" }, complete("hcs image i"))
      assert.same({ "--rm", "--rootfs" }, complete("hcs run --r"))
      assert.same({ "--quiet" }, complete("hcs image ls --q"))
      -- every option the CLI takes is offered
      for _, name in ipairs(cli.commands()) do
        local cmd = cli.load(name)
        if not cmd.subcommands then
          local offered = table.concat(complete("hcs " .. name .. " --"), " ") .. " "
          for opt in pairs(cmd.options or {}) do
            assert.truthy(offered:find("--" .. opt .. " ", 1, true), name .. " --" .. opt)
          end
        end
      end
    end)

    it("writes a man page per command with every option", function()
      for _, name in ipairs(cli.commands()) do
        local cmd = cli.load(name)
        local page = docgen.man_page(name, cmd, "0")
        assert.matches("^%.TH HCS\\%-", page)
        local all = { cmd }
        for _, sub in pairs(cmd.subcommands or {}) do all[#all + 1] = sub end
        for _, c in ipairs(all) do
          for opt in pairs(c.options or {}) do
            assert.truthy(page:find("\\fB\\-\\-" .. opt:gsub("%-", "\\-"), 1, true), name .. " --" .. opt)
          end
        end
      end
      assert.matches("EXIT STATUS", docgen.man_index("0"))
    end)
  end)
end)
