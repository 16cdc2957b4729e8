-- Every code block of README.md and docs/*.md runs as written.  A fenced
-- block with a language is code: ```sh and ```lua blocks run (sh with bash
-- -e, lua with the hcs host), ```json blocks must parse; a block marked
-- ```LANG no-test is a reference listing, not something to run; a block
-- without a language is text (layouts, diagrams).  Each file runs in a
-- fresh state root holding the busybox base image, inside a network
-- namespace of its own (nsenter: /sys and its cgroups stay visible), from the repository's top directory (`build/` means
-- the build tree under test); afterwards nothing it made may be left:
-- no compute system, no plan, no mount.
local u = require "spec_util"
local json = require("hcs").json

local function doc_files()
  local files = { "README.md" }
  local _, _, out = u.run(("ls %s/docs/*.md"):format(u.quote(u.source_dir)))
  for path in out:gmatch("[^\n]+") do files[#files + 1] = path:sub(#u.source_dir + 2) end
  return files
end

--- The fenced blocks of a Markdown text: { lang, flags, line, text }.
local function blocks(text)
  local out, cur, n = {}, nil, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        out[#out + 1] = cur
        cur = nil
      else
        cur.text = cur.text .. line .. "\n"
      end
    else
      local info = line:match("^```(.*)$")
      if info then
        local lang, flags = info:match("^(%S*)%s*(.*)$")
        cur = { lang = lang, flags = flags, line = n, text = "" }
      end
    end
  end
  assert(cur == nil, "an unterminated code block")
  return out
end

describe("the code blocks of README.md and docs/ #root", function()
  local dir, NS

  setup(function()
    dir = u.tmpdir()
    NS = "hcs-test-docs-" .. dir:match("hcs%-test%.(.*)$")
    assert(u.run("ip netns add " .. NS))
    assert(u.run(("ip -n %s link set lo up"):format(NS)))
  end)

  teardown(function()
    u.run("ip netns del " .. NS)
    u.rmtree(dir)
  end)

  it("knows every block's kind: run, parse, no-test or text", function()
    for _, file in ipairs(doc_files()) do
      for _, b in ipairs(blocks(assert(u.read_file(u.source_dir .. "/" .. file)))) do
        local known = b.lang == "" or b.flags == "no-test" or b.lang == "sh" or b.lang == "lua" or b.lang == "json"
        assert.is_true(known, ("%s:%d: ```%s %s: mark it no-test or make it runnable"):format(file, b.line, b.lang,
          b.flags))
      end
    end
  end)

  for _, file in ipairs(doc_files()) do
    it(file .. ": every block runs and leaves nothing", function()
      local list = blocks(assert(u.read_file(u.source_dir .. "/" .. file)))
      local root = dir .. "/" .. file:gsub("[/.]", "-")
      local prepared = false
      local env = ("HCS_ROOT=%s"):format(u.quote(root))
      if os.getenv("HCS_SANITIZE") == "ON" then
        -- the stock lua5.4 of the README loads a sanitized core.so
        env = env .. " LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0"
      end
      for i, b in ipairs(list) do
        local where = ("%s:%d"):format(file, b.line)
        if b.flags ~= "no-test" and b.lang == "json" then
          local ok, err = pcall(json.decode, b.text)
          assert.is_true(ok, where .. ": " .. tostring(err))
        elseif b.flags ~= "no-test" and (b.lang == "sh" or b.lang == "lua") then
          -- The suite itself must never run from here (it would run this test again).
          assert.is_nil(b.text:find("scripts/test", 1, true), where .. ": runs the test suite: mark it no-test")
          assert.is_nil(b.text:find("scripts/demo", 1, true), where .. ": runs the demo: mark it no-test")
          if not prepared then
            assert(u.run(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, u.quote(root))))
            prepared = true
          end
          local code = b.text:gsub("build/", u.build_dir .. "/")
          local script = ("%s/block-%s-%d.%s"):format(dir, file:gsub("[/.]", "-"), i, b.lang)
          u.write_file(script, code)
          local runner = b.lang == "sh" and "bash -e " .. u.quote(script)
            or u.quote(u.hcs_bin) .. " " .. u.quote(script)
          local ok, status, out, err = u.run(("cd %s && nsenter --net=/run/netns/%s env %s %s"):format(
            u.quote(u.source_dir), NS, env, runner))
          assert.is_true(ok, ("%s: status %s\n%s%s"):format(where, tostring(status), out, err))
          assert.not_matches("error object is", err)
        end
      end
      if prepared then
        local _, _, systems = u.run(("HCS_ROOT=%s %s list -q"):format(u.quote(root), u.quote(u.hcs_bin)))
        assert.equal("", systems, file .. " left compute systems running")
        local _, _, plans = u.run(("HCS_ROOT=%s %s plan ls -q"):format(u.quote(root), u.quote(u.hcs_bin)))
        assert.equal("", plans, file .. " left plans")
        assert.same({}, u.mounts_under(root))
      end
    end)
  end
end)
