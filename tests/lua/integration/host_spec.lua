-- The `hcs` host program: lua(1)-compatible flags, scripts, exit codes,
-- errors with tracebacks, SIGINT, CLI dispatch, the REPL on a pty, and the
-- module from the stock lua5.4 interpreter.
local u = require "spec_util"

describe("hcs host", function()
  local dir

  setup(function() dir = u.tmpdir() end)
  teardown(function() u.rmtree(dir) end)

  it("runs inside itself (busted is running under the hcs host)", function()
    assert.is_function(package.preload["hcs.core"])
    assert.equal("Lua 5.4", _VERSION)
  end)

  it("-v prints the version", function()
    local ok, _, out = u.hcs({ "-v" })
    assert.is_true(ok)
    assert.matches("^hcs " .. require("hcs").version:gsub("%.", "%%.") .. " %(Lua 5%.4", out)
  end)

  it("-e runs code with the module available", function()
    local ok, _, out = u.hcs({ "-e", 'print(require("hcs").version)' })
    assert.is_true(ok)
    assert.equal(require("hcs").version .. "\n", out)
  end)

  it("takes a command with hundreds of arguments (hcs rm -f $(hcs list -q))", function()
    local args = { "rm", "-f" }
    for i = 1, 500 do args[#args + 1] = "no-such-system-" .. i end
    local ok, code, out, err = u.hcs(args, { HCS_ROOT = dir .. "/many-args" })
    assert.is_false(ok)
    assert.equal(1, code, err) -- each id fails by itself: not a crash (134)
    assert.equal("", out)
    local _, n = err:gsub("[^\n]*no%-such%-system%-%d+[^\n]*\n", "")
    assert.equal(500, n) -- one line per id
  end)

  it("starts without loading the libraries it only needs on first use", function()
    local probe = [[
      local libs = { "libarchive", "libnftables", "libcrypto", "libzstd", "libdeflate", "libisal", "libmnl",
        "libseccomp", "libcap", "libreadline" }
      local function loaded()
        local t = {}
        for l in io.lines("/proc/self/maps") do
          for _, lib in ipairs(libs) do
            if l:find("/" .. lib, 1, true) then t[lib] = true end
          end
        end
        return t
      end
      local before, names = loaded(), {}
      for _, lib in ipairs(libs) do if before[lib] then names[#names + 1] = lib end end
      print("loaded at start: " .. table.concat(names, " "))
      local s = assert(require("hcs").layer.open(os.getenv("PROBE_ROOT")))
      local tar = os.getenv("PROBE_ROOT") .. "/empty.tar"
      os.execute("tar -cf " .. tar .. " -T /dev/null")
      assert(s:import(tar))
      local after = loaded()
      print(after.libarchive, after.libcrypto)
    ]]
    local ok, _, out, err = u.hcs({ "-e", probe }, { PROBE_ROOT = dir })
    assert.is_true(ok, err)
    assert.equal("loaded at start: \ntrue\ttrue\n", out)
  end)

  it("loads precompiled modules unless their source is newer", function()
    local src, bc = dir .. "/bc-src", dir .. "/bc-out"
    assert(u.run(("mkdir -p %s/hcs %s/hcs"):format(src, bc)))
    -- The bytecode and the source say different things, so the output tells
    -- which one was loaded.
    u.write_file(dir .. "/other.lua", 'return "bytecode"')
    assert(u.run(("luac5.4 -o %s/hcs/probe.lua %s/other.lua"):format(bc, dir)))
    u.write_file(src .. "/hcs/probe.lua", 'return "source"')
    local function run()
      local ok, _, out, err = u.hcs({ "-e", 'print((require "hcs.probe"))' },
        { HCS_LUA_DIR = src, HCS_LUA_BYTECODE_DIR = bc })
      assert.is_true(ok, err)
      return out
    end
    assert(u.run(("touch -d '1 minute ago' %s/hcs/probe.lua"):format(src)))
    assert.equal("bytecode\n", run())
    -- An edited source (newer than its bytecode) wins until the next build.
    assert(u.run(("touch -d '1 minute' %s/hcs/probe.lua"):format(src)))
    assert.equal("source\n", run())
  end)

  it("names a bytecode file it can't load", function()
    local src, bc = dir .. "/bc2-src", dir .. "/bc2-out"
    assert(u.run(("mkdir -p %s/hcs %s/hcs"):format(src, bc)))
    u.write_file(dir .. "/boom.lua", 'return function() error("boom") end')
    local env = { HCS_LUA_DIR = src, HCS_LUA_BYTECODE_DIR = bc }
    -- a truncated chunk: an error that says which file and why, not a crash
    assert(u.run(("luac5.4 -o %s/full.luac %s/boom.lua && head -c 40 %s/full.luac > %s/hcs/trunc.lua"):format(dir, dir,
      dir, bc)))
    local ok, _, _, err = u.hcs({ "-e", 'require("hcs.trunc")' }, env)
    assert.is_false(ok)
    assert.matches("error loading module 'hcs.trunc' from file '" .. bc .. "/hcs/trunc.lua'", err, 1, true)
    assert.matches("truncated", err, 1, true)
  end)

  it("-l loads a module into a global", function()
    local ok, _, out = u.hcs({ "-l", "h=hcs", "-e", "print(type(h.host.capabilities))" })
    assert.is_true(ok)
    assert.equal("function\n", out)
  end)

  it("passes script arguments as arg and ...", function()
    local script = dir .. "/args.lua"
    u.write_file(script, 'print(arg[0], arg[1], arg[2], select("#", ...), ...)')
    local ok, _, out = u.hcs({ script, "one", "two words" })
    assert.is_true(ok)
    assert.equal(script .. "\tone\ttwo words\t2\tone\ttwo words\n", out)
  end)

  it("exits with the integer a script returns, and with os.exit's status", function()
    local script = dir .. "/status.lua"
    u.write_file(script, "return 7")
    local ok, code = u.hcs({ script })
    assert.is_false(ok)
    assert.equal(7, code)
    _, code = u.hcs({ "-e", "os.exit(3)" })
    assert.equal(3, code)
  end)

  it("reports a runtime error with a traceback and exit status 1", function()
    local script = dir .. "/fail.lua"
    u.write_file(script, "local function inner() error('boom') end\ninner()\n")
    local ok, code, _, err = u.hcs({ script })
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("fail%.lua:1: boom", err)
    assert.matches("stack traceback:", err)
    assert.matches("in local 'inner'", err)
  end)

  it("reports a syntax error with the file and line", function()
    local script = dir .. "/syntax.lua"
    u.write_file(script, "x = = 1\n")
    local ok, code, _, err = u.hcs({ script })
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("syntax%.lua:1:", err)
  end)

  it("reports a missing script", function()
    local ok, code, _, err = u.hcs({ dir .. "/missing.lua" })
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("cannot open .*missing%.lua", err)
  end)

  it("runs stdin when it is not a terminal, and with -", function()
    local ok, _, out = u.hcs({}, nil, "print(6 * 7)")
    assert.is_true(ok)
    assert.equal("42\n", out)
    ok, _, out = u.hcs({ "-", "x" }, nil, "print(arg[1])")
    assert.is_true(ok)
    assert.equal("x\n", out)
  end)

  it("rejects an unknown option with the usage", function()
    local ok, code, _, err = u.hcs({ "-z" })
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("unrecognized option '%-z'", err)
    assert.matches("usage:", err)
  end)

  it("sets HCS_ROOT from --root", function()
    local ok, _, out = u.hcs({ "--root", dir, "-e", "print(os.getenv('HCS_ROOT'))" })
    assert.is_true(ok)
    assert.equal(dir .. "\n", out)
  end)

  it("dispatches commands and lists them in help", function()
    local ok, _, out = u.hcs({ "help" })
    assert.is_true(ok)
    assert.matches("info%s+show the hcs version", out)
    local code, err
    ok, code, _, err = u.hcs({ "frobnicate" })
    assert.is_false(ok)
    assert.equal(2, code)
    assert.matches("unknown command 'frobnicate'", err)
  end)

  it("runs a command even when a directory of that name is in the way", function()
    local ok, _, out = u.run(("cd %s && mkdir -p help && %s help"):format(u.quote(dir), u.quote(u.hcs_bin)))
    assert.is_true(ok)
    assert.matches("commands:", out)
  end)

  it("info --json describes the host", function()
    local ok, _, out = u.hcs({ "info", "--json" })
    assert.is_true(ok)
    local caps = require("cjson").decode(out)
    assert.is_string(caps.Kernel.Release)
    assert.truthy(({ v1 = true, v2 = true, hybrid = true, none = true })[caps.Cgroup.Mode])
    assert.is_boolean(caps.Overlayfs)
    assert.is_true(caps.Namespaces.mnt)
  end)

  it("turns SIGINT into a Lua error that ends the script cleanly", function()
    local marker = dir .. "/started"
    local script = dir .. "/spin.lua"
    u.write_file(script, ("io.open(%q, 'w'):close()\nwhile true do end\n"):format(marker))
    local cmd = ("%s %s 2>%s/spin.err & pid=$!; for i in $(seq 100); do [ -e %s ] && break; sleep 0.05; done; " ..
      "kill -INT $pid; wait $pid; echo $?"):format(u.quote(u.hcs_bin), script, dir, marker)
    local _, _, out = u.run(cmd)
    assert.equal("1\n", out)
    assert.matches("interrupted!", u.read_file(dir .. "/spin.err"))
  end)

  it("-i on piped input reads plain lines (no readline) and prints results", function()
    local ok, _, out, err = u.run(("printf 'x = 20\\nx * 2 + 2\\n' | HCS_HISTORY=%s/h2 %s -i"):format(dir,
      u.quote(u.hcs_bin)))
    assert.is_true(ok, err)
    assert.matches("42", out)
  end)

  describe("REPL", function()
    local ptyrun = u.build_dir .. "/tests/ptyrun"
    local function repl(input)
      local ok, code, out = u.run(("HCS_HISTORY=%s/history %s %s -- %s"):format(dir, ptyrun, u.quote(input),
        u.quote(u.hcs_bin)))
      return ok, code, (out:gsub("\27%[%?2004[hl]", ""):gsub("\r", ""))
    end

    it("prints expression results and keeps state between lines", function()
      local ok, _, out = repl("x = 41\\nx + 1\\n")
      assert.is_true(ok)
      assert.matches("hcs> x %+ 1\n42\n", out)
    end)

    it("pretty-prints tables", function()
      local _, _, out = repl("{b = {1}, a = 'x'}\\n")
      assert.matches('a = "x",\n  b = {\n    1,\n  },\n}', out)
    end)

    it("completes hcs.* names with Tab", function()
      local _, _, out = repl("hcs.ver\\t\\n")
      assert.matches("hcs> hcs%.version\n" .. require("hcs").version:gsub("%.", "%%.") .. "\n", out)
    end)

    it("accepts multi-line input", function()
      local _, _, out = repl("function f(a)\\nreturn a * 2\\nend\\nf(21)\\n")
      assert.matches("hcs>> end\nhcs> f%(21%)\n42\n", out)
    end)

    it("reports errors and goes on", function()
      local _, _, out = repl("error('bad thing')\\n1 + 1\\n")
      assert.matches("bad thing", out)
      assert.matches("hcs> 1 %+ 1\n2\n", out)
    end)

    it("keeps a history file", function()
      repl("local remembered = 1\\n")
      assert.matches("local remembered = 1", u.read_file(dir .. "/history") or "")
    end)

    it("writes each line to the history as it is entered, so a killed REPL keeps it", function()
      os.remove(dir .. "/history")
      -- The REPL kills itself: nothing after this line runs, no clean exit.
      local ok, code = repl("before_the_kill = 1\\nlocal pid = io.open('/proc/self/stat'):read('n'); " ..
        "os.execute('kill -9 ' .. pid)\\n")
      assert.is_false(ok)
      assert.equal(137, code)
      assert.matches("before_the_kill = 1", u.read_file(dir .. "/history") or "")
    end)

    it("cancels the line with Ctrl-C at the prompt and goes on", function()
      local ok, code, out = repl("x = 20\\nx = 1000 +\\n\\cx + 22\\n")
      assert.is_true(ok)
      assert.equal(0, code)
      assert.matches("\n42\n", out)
      -- and the cancelled continuation line never ran
      assert.not_matches("1042", out)
      local _, _, out2 = repl("partial\\cprint('still here')\\n")
      assert.matches("still here", out2)
    end)
  end)

  it("loads from the stock lua5.4 interpreter with the documented LUA_CPATH", function()
    -- A sanitized core.so needs the ASan runtime loaded first into the stock interpreter.
    local preload = os.getenv("HCS_SANITIZE") == "ON"
        and "LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 " or ""
    local cmd = ("cd %s && " .. preload .. "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH=%s lua5.4 -e %s"):format(
      u.quote(u.source_dir), u.quote(u.build_dir .. "/lua/?.so;;"),
      u.quote('local h = require "hcs"; print(h.version, h.host.cgroup_mode())'))
    local ok, _, out, err = u.run(cmd)
    assert.is_true(ok, err)
    assert.matches("^" .. require("hcs").version:gsub("%.", "%%.") .. "\t%a", out)
  end)

  it("never searches the working directory or a RUNPATH for libraries", function()
    local ok, _, out, err = u.run("readelf -d " .. u.quote(u.hcs_bin))
    assert.is_true(ok, err)
    local runpath = out:match("RUNPATH%)%s+Library runpath: %[([^%]]*)%]")
    if out:find("[libhcs.so", 1, true) then
      -- Linked with the shared library (HCS_HOST_STATIC=OFF): found along a
      -- RUNPATH without an empty entry (the loader reads it as ".").
      assert.is_truthy(runpath)
      for entry in (runpath .. ":"):gmatch("([^:]*):") do assert.not_equal("", entry) end
    else
      -- The library's objects and Lua are inside: no RUNPATH to probe
      -- (glibc-hwcaps, tls, x86_64 directories) on every command's start.
      assert.is_nil(runpath, out)
      assert.is_nil(out:find("liblua", 1, true), out)
      assert.is_nil(out:find("libjansson", 1, true), out)
    end
  end)

  it("loads C modules built for the stock interpreter (lfs, cjson) against its own Lua", function()
    local probe = [[
      local cjson, lfs = require "cjson", require "lfs"
      print(cjson.encode({ 1, "a" }), lfs.attributes("/", "mode"), cjson.decode('{"k":[true]}').k[1])
    ]]
    local ok, _, out, err = u.hcs({ "-e", probe })
    assert.is_true(ok, err)
    assert.equal('[1,"a"]\tdirectory\ttrue\n', out)
  end)

  it("installs library, headers, pkg-config file, module, Lua sources and host", function()
    local dest = dir .. "/destdir"
    local ok, _, _, err = u.run(("DESTDIR=%s cmake --install %s"):format(u.quote(dest), u.quote(u.build_dir)))
    assert.is_true(ok, err)
    local _, _, found = u.run(("cd %s && find . -type f -o -type l | sort"):format(u.quote(dest)))
    for _, pattern in ipairs({ "/libhcs%.so", "/include/hcs/hcs%.h", "/pkgconfig/hcs%.pc", "/lua/5%.4/hcs/core%.so",
      "/lua/5%.4/hcs/init%.lua", "/lua/5%.4/hcs/cli/help%.lua", "/hcs/lua%-bytecode/hcs/cli/help%.lua",
      "/bin/hcs\n", "/man/man1/hcs%.1\n", "/man/man1/hcs%-run%.1\n", "/man/man1/hcs%-image%.1\n",
      "/bash%-completion/completions/hcs\n" }) do
      assert.matches(pattern, found)
    end
    local bin = dest .. "/usr/local/bin/hcs"
    local libdir = found:match("%./([^\n]*)/libhcs%.so\n")
    local luadir = found:match("%./([^\n]*)/hcs/init%.lua")
    ok, _, found, err = u.run(("LD_LIBRARY_PATH=%s/%s HCS_LUA_DIR=%s/%s %s help"):format(dest, libdir, dest, luadir,
      u.quote(bin)))
    assert.is_true(ok, err)
    assert.matches("info%s+show the hcs version", found)
  end)
end)
