-- The system log: init's output and that of `exec -d` processes, kept by
-- the monitor in <run root>/compute/<id>/ctr.log (CRI format), rotated at
-- Linux.Log's cap, read by `hcs logs`; through the real `hcs` binary.
local u = require "spec_util"
local json = require("hcs").json

describe("hcs logs #root", function()
  local root, rootfs, parent, env

  local function hcs(...)
    return u.hcs({ ... }, env)
  end

  local function config(id, script, log, mapped)
    local path = ("%s/%s.json"):format(root, id)
    u.write_file(path, json.encode {
      SchemaVersion = { Major = 2, Minor = 1 },
      Container = { Storage = { Path = rootfs }, MappedDirectories = mapped },
      Linux = { CgroupParent = parent, Log = log, Init = { CommandArgs = { "/bin/sh", "-c", script } } },
    })
    return path
  end

  local function wait_stopped(id)
    assert.is_true((u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin),
      u.quote(("local cs = assert(require('hcs').compute.open(%q)); assert(cs:wait())"):format(id))))))
  end

  setup(function()
    root = u.tmpdir()
    rootfs = root .. "/rootfs"
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, rootfs)))
    parent = "hcs-test-log-" .. root:match("hcs%-test%.(.*)$")
    env = { HCS_ROOT = root }
  end)

  teardown(function()
    local _, _, out = hcs("list", "--json")
    for _, s in ipairs(json.decode(out ~= "" and out or "[]")) do hcs("rm", "-f", s.Id) end
    u.rmtree(root)
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
  end)

  it("keeps a detached system's output after its creator exited, stdout and stderr apart", function()
    local ok, _, out = hcs("run", "-d", "--name", "l1", "--cgroup-parent", parent, rootfs, "--", "/bin/sh", "-c",
      "echo one; echo oops >&2; printf 'half'; sleep 0.1; echo ' whole'; echo two")
    assert.is_true(ok)
    assert.equal("l1\n", out)
    wait_stopped("l1")
    -- The file itself is CRI: TIMESTAMP STREAM F|P MESSAGE.
    local lines = u.read_lines(root .. "/run/compute/l1/ctr.log")
    assert.equal(5, #lines)
    for _, l in ipairs(lines) do
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%d%d%d%dZ std[oe][ur][tr] [FP] ", l)
    end
    -- Each stream keeps its order (the two are read apart, as with conmon).
    local streams = { stdout = {}, stderr = {} }
    for _, l in ipairs(lines) do
      local stream, rest = l:match("^%S+ (%S+) (.*)$")
      table.insert(streams[stream], rest)
    end
    assert.same({ "F one", "P half", "F  whole", "F two" }, streams.stdout)
    assert.same({ "F oops" }, streams.stderr)
    local _, code, lout, lerr = hcs("logs", "l1")
    assert.equal(0, code)
    -- A partial line is joined with the rest of it.
    assert.equal("one\nhalf whole\ntwo\n", lout)
    assert.equal("oops\n", lerr)
    local _, _, tout = hcs("logs", "--tail", "2", "l1")
    assert.equal("half whole\ntwo\n", tout)
    local _, _, ts = hcs("logs", "-t", "--tail", "1", "l1")
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z two\n$", ts)
    local _, _, none = hcs("logs", "--since", "2999-01-01T00:00:00Z", "l1")
    assert.equal("", none)
    local _, _, old = hcs("logs", "--until", "2000-01-01T00:00:00Z", "l1")
    assert.equal("", old)
    local _, _, recent = hcs("logs", "--since", "1h", "l1")
    assert.equal("one\nhalf whole\ntwo\n", recent)
    local _, bcode, _, berr = hcs("logs", "--since", "yesterday", "l1")
    assert.equal(2, bcode)
    assert.matches("--since: expected a time", berr, 1, true)
    assert.is_true((hcs("rm", "l1")))
  end)

  it("rotates at Linux.Log.MaxSize, keeps MaxFiles files, and reads across them", function()
    local n = 12000
    local cfg = config("l2", ("i=0; while [ $i -lt %d ]; do echo line$i; i=$((i+1)); done"):format(n),
      { MaxSize = 131072, MaxFiles = 3 })
    assert.is_true((hcs("create", "--name", "l2", cfg)))
    assert.is_true((hcs("start", "l2")))
    wait_stopped("l2")
    local dir = root .. "/run/compute/l2/"
    for _, name in ipairs { "ctr.log", "ctr.log.1", "ctr.log.2" } do
      local _, _, size = u.run("stat -c %s " .. dir .. name)
      assert.is_true(tonumber(size) <= 131072, name .. " is " .. size)
    end
    assert.is_nil(io.open(dir .. "ctr.log.3", "r"))
    -- What is left is the newest part, consecutive and ending with the last line.
    local _, _, out = hcs("logs", "l2")
    local first, count, expect = nil, 0, nil
    for line in out:gmatch("[^\n]+") do
      local k = tonumber(line:match("^line(%d+)$"))
      assert.is_not_nil(k, line)
      if expect then assert.equal(expect, k) end
      first, count, expect = first or k, count + 1, k + 1
    end
    assert.equal(n, expect)
    assert.is_true(first > 0 and count < n)
    assert.is_true((hcs("rm", "l2")))
  end)

  it("splits a line longer than a read into P records that never straddle two files", function()
    -- 300000 bytes without a newline, written in pieces (dd), then the
    -- newline after a pause: several reads, several P records (at most 64
    -- KiB of message each), across rotated files; read back as one line.
    local cfg = config("l7", "dd if=/dev/zero bs=1000 count=300 2>/dev/null | tr '\\0' x; sleep 0.2; echo; echo after",
      { MaxSize = 131072, MaxFiles = 20 })
    assert.is_true((hcs("create", "--name", "l7", cfg)))
    assert.is_true((hcs("start", "l7")))
    wait_stopped("l7")
    local dir = root .. "/run/compute/l7/"
    local tags, pbytes = {}, 0
    assert.is_nil(io.open(dir .. "ctr.log.19", "r")) -- nothing was dropped
    for i = 18, 0, -1 do
      local name = i > 0 and "ctr.log." .. i or "ctr.log"
      local f = io.open(dir .. name, "r")
      if f then
        local size = f:seek("end")
        f:seek("set")
        assert.is_true(size <= 131072, name .. " is " .. size)
        for l in f:lines() do
          local tag, msg = l:match("^%S+ stdout ([FP]) (.*)$")
          assert.is_not_nil(tag, l:sub(1, 80))
          assert.is_true(#msg <= 65536)
          tags[#tags + 1] = tag
          if tag == "P" then pbytes = pbytes + #msg end
        end
        f:close()
      end
    end
    assert.is_true(#tags >= 6) -- at least 5 P records (300000 / 65536) and the two F
    assert.equal(300000, pbytes)
    assert.same({ "P", "F", "F" }, { tags[#tags - 2], tags[#tags - 1], tags[#tags] })
    local _, code, out = hcs("logs", "l7")
    assert.equal(0, code)
    assert.equal(string.rep("x", 300000) .. "\nafter\n", out)
    assert.is_true((hcs("rm", "l7")))
  end)

  it("logs -f follows the log through rotations until the system stops", function()
    local n = 8000
    local sync = root .. "/sync"
    assert(u.run("mkdir -p " .. sync))
    local cfg = config("l3", ("while [ ! -e /sync/go ]; do sleep 0.01; done; " ..
      "i=0; while [ $i -lt %d ]; do echo line$i; i=$((i+1)); done; echo end >&2"):format(n),
      { MaxSize = 131072, MaxFiles = 4 }, { { HostPath = sync, ContainerPath = "/sync" } })
    assert.is_true((hcs("run", "-d", "--name", "l3", cfg)))
    local errfile = root .. "/l3.err"
    local p = assert(io.popen(("echo $$; HCS_ROOT=%s exec %s logs -f l3 2>%s"):format(u.quote(root),
      u.quote(u.hcs_bin), errfile)))
    local pid = p:read("l")
    -- Init writes once the follower watches the directory (its inotify fd
    -- has a watch); the output takes three files, so the follower goes from
    -- file to file however far the writer is ahead.
    local watching = false
    for _ = 1, 2000 do
      local _, _, out = u.run("cat /proc/" .. pid .. "/fdinfo/* 2>/dev/null | grep -c '^inotify wd:'")
      if tonumber(out) and tonumber(out) > 0 then
        watching = true
        break
      end
      if not u.run("test -d /proc/" .. pid) then break end -- the follower ended: say why below
      u.run("sleep 0.01")
    end
    assert.is_true(watching, "hcs logs -f never watched the log directory; its stderr: " ..
      tostring(io.open(errfile) and u.read_file(errfile)))
    u.write_file(sync .. "/go", "")
    local out = p:read("a")
    assert.is_true((p:close()))
    local count, last = 0, nil
    for line in out:gmatch("[^\n]+") do
      count, last = count + 1, line
    end
    assert.equal(n, count)
    assert.equal("line" .. (n - 1), last)
    assert.equal("end\n", u.read_file(errfile))
    assert.is_not_nil(io.open(root .. "/run/compute/l3/ctr.log.2", "r"))
    assert.is_nil(io.open(root .. "/run/compute/l3/ctr.log.3", "r"))
    assert.is_true((hcs("rm", "l3")))
  end)

  it("sends exec -d output to the log, and says why when a system has none", function()
    assert.is_true((hcs("run", "-d", "--name", "l4", "--cgroup-parent", parent, rootfs)))
    local ok, _, pid = hcs("exec", "-d", "l4", "--", "/bin/sh", "-c", "echo from-exec; echo to-err >&2")
    assert.is_true(ok)
    assert.matches("^%d+\n$", pid)
    -- The exec'd process is a child of the exited `hcs exec`: wait on the log.
    local out, err
    for _ = 1, 200 do
      _, _, out, err = hcs("logs", "l4")
      if out == "from-exec\n" and err == "to-err\n" then break end
      u.run("sleep 0.05")
    end
    assert.equal("from-exec\n", out)
    assert.equal("to-err\n", err)
    assert.is_true((hcs("stop", "-t", "2", "l4")))
    assert.is_true((hcs("rm", "l4")))
    -- A system created without the log (stdio null).
    assert.is_true((u.run(("HCS_ROOT=%s %s -e %s"):format(u.quote(root), u.quote(u.hcs_bin), u.quote(([[
      local hcs = require "hcs"
      local cs = assert(hcs.compute.create("l5", hcs.compute.config{ rootfs = %q, cgroup_parent = %q }))
      assert(cs:start())]]):format(rootfs, parent))))))
    local _, code, _, eerr = hcs("exec", "-d", "l5", "--", "/bin/true")
    assert.equal(125, code) -- hcs itself failed (docker's status for exec)
    assert.matches("the system has no log reader", eerr, 1, true)
    local _, lcode, _, lerr = hcs("logs", "l5")
    assert.equal(1, lcode)
    assert.matches("the system has none", lerr, 1, true)
    assert.is_true((hcs("rm", "-f", "l5")))
  end)

  it("refuses a bad Linux.Log naming the field", function()
    local cfg = config("l6", "true", { MaxSize = 100 })
    local _, code, _, err = hcs("create", "--name", "l6", cfg)
    assert.equal(125, code)
    assert.matches("`Linux.Log.MaxSize`: expected an integer in [131072", err, 1, true)
    cfg = config("l6", "true", { MaxFiles = 2, Keep = 1 })
    _, code, _, err = hcs("create", "--name", "l6", cfg)
    assert.equal(125, code)
    assert.matches("`Linux.Log.Keep`: unknown field", err, 1, true)
  end)
end)
