-- containerd driving hcs-runtime through its runc v2 shim (`ctr run
-- --runc-binary`): a containerd started by the test with its config,
-- socket and state in a temporary directory; run, -t, -d, task exec
-- (with and without a terminal), pause, resume, ps, kill, delete.
local u = require "spec_util"

local have = u.run("command -v containerd >/dev/null && command -v ctr >/dev/null && command -v podman >/dev/null")

describe("hcs-runtime under containerd #root", function()
  if not have then
    pending("containerd, ctr and podman are not installed (scripts/bootstrap installs them)")
    return
  end
  local root, cg, ctr, pid, had_run_dir
  local bin = u.build_dir .. "/hcs-runtime"
  local ptyrun = u.build_dir .. "/tests/ptyrun"

  local function run_opts(id)
    return ("--snapshotter native --runc-binary %s --runc-root %s --cgroup /%s/%s"):format(u.quote(bin),
      u.quote(root .. "/runc"), cg, id)
  end

  setup(function()
    root = u.tmpdir()
    -- ctr and the shim keep fifos and sockets in /run/containerd whatever
    -- the config says: removed again (when empty) unless they were there.
    had_run_dir = u.run("test -e /run/containerd")
    cg = "hcs-test-ctr-" .. root:match("hcs%-test%.(.*)$")
    -- The image: the busybox rootfs imported into podman (storage in the
    -- temporary root) and saved as an OCI archive.
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, root .. "/rootfs")))
    local p = ("podman --root %s/ps --runroot %s/pr --tmpdir %s/pt --storage-driver vfs --events-backend none")
      :format(root, root, root)
    local ok, _, _, err = u.run(("tar -C %s -c . | %s import -q - localhost/hcs-bb:latest >/dev/null && %s save -q " ..
      "--format oci-archive -o %s localhost/hcs-bb:latest")
      :format(u.quote(root .. "/rootfs"), p, p, u.quote(root .. "/bb.tar")))
    assert(ok, err)
    u.write_file(root .. "/config.toml", ([[
version = 2
root = "%s/croot"
state = "%s/cstate"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "%s/containerd.sock"
[ttrpc]
  address = "%s/containerd.sock.ttrpc"
[debug]
  address = "%s/debug.sock"
]]):format(root, root, root, root, root))
    local _, _, out = u.run(("containerd --config %s >%s 2>&1 </dev/null & echo $!"):format(u.quote(root .. "/config.toml"),
      u.quote(root .. "/containerd.log")))
    pid = assert(tonumber(out:match("%d+")))
    ctr = "ctr --address " .. u.quote(root .. "/containerd.sock")
    local up = false
    for _ = 1, 200 do
      up = u.run(ctr .. " version >/dev/null 2>&1")
      if up then break end
      u.run("sleep 0.05")
    end
    assert(up, u.read_file(root .. "/containerd.log"))
    ok, _, _, err = u.run(ctr .. " images import --snapshotter native " .. u.quote(root .. "/bb.tar"))
    assert(ok, err)
  end)

  teardown(function()
    if ctr then
      local _, _, ids = u.run(ctr .. " containers ls -q")
      for id in ids:gmatch("%S+") do
        u.run(ctr .. " task kill -s KILL " .. id)
        u.run(ctr .. " task delete -f " .. id)
        u.run(ctr .. " containers rm " .. id)
      end
    end
    if pid then
      u.run("kill " .. pid)
      for _ = 1, 200 do
        if not u.run("kill -0 " .. pid .. " 2>/dev/null") then break end
        u.run("sleep 0.05")
      end
    end
    u.rmtree(root)
    if not had_run_dir then u.run("rmdir /run/containerd/fifo /run/containerd/s /run/containerd") end
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. cg .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. cg .. "*'")
    assert.equal("", dirs)
    local _, _, procs = u.run("pgrep -f " .. u.quote("[/]" .. root:sub(2)))
    assert.equal("", procs)
  end)

  it("ctr run passes the output and the exit status", function()
    local ok, code, out, err = u.run(ctr .. " run --rm " .. run_opts("r1") ..
      " localhost/hcs-bb:latest r1 sh -c 'echo hi; exit 3'")
    assert.is_false(ok, err)
    assert.equal(3, code, err .. "\n" .. (u.read_file(root .. "/containerd.log") or ""):sub(-3000))
    assert.equal("hi\n", out)
    local _, _, ls = u.run(ctr .. " containers ls -q")
    assert.equal("", ls)
  end)

  it("ctr run -t gives the container a terminal (console socket)", function()
    local _, _, out = u.run(("%s -t 20 '' -- %s run -t --rm %s localhost/hcs-bb:latest t1 sh -c 'tty; sleep 0.5'")
      :format(u.quote(ptyrun), ctr, run_opts("t1")))
    assert.matches("/dev/pts/0", out)
    local _, _, ls = u.run(ctr .. " containers ls -q")
    assert.equal("", ls)
  end)

  it("a detached task: exec, pause, resume, ps, kill and delete", function()
    local ok, _, _, err = u.run(ctr .. " run -d " .. run_opts("d1") ..
      " localhost/hcs-bb:latest d1 sh -c 'trap \"exit 9\" TERM; while :; do sleep 0.1; done' >/dev/null")
    assert.is_true(ok, err)
    local _, code, out = u.run(ctr .. " task exec --exec-id e1 d1 sh -c 'echo exec; exit 6'")
    assert.equal(6, code)
    assert.equal("exec\n", out)
    -- (the process outlives ctr's attach: output a pty held when its last
    -- slave closed before the shim read it can be lost, with runc too)
    local _, _, tout = u.run(("%s -t 20 '' -- %s task exec -t --exec-id e2 d1 sh -c 'tty; sleep 0.5'")
      :format(u.quote(ptyrun), ctr))
    assert.matches("/dev/pts/%d", tout)
    assert.is_true((u.run(ctr .. " task pause d1")))
    assert.matches("d1%s+%d+%s+PAUSED", select(3, u.run(ctr .. " task ls")))
    assert.is_true((u.run(ctr .. " task resume d1")))
    assert.matches("d1%s+%d+%s+RUNNING", select(3, u.run(ctr .. " task ls")))
    local _, _, ps = u.run(ctr .. " task ps d1")
    assert.matches("PID", ps)
    assert.is_true((u.run(ctr .. " task kill d1")))
    local stopped
    for _ = 1, 200 do
      stopped = select(3, u.run(ctr .. " task ls")):match("d1%s+%d+%s+STOPPED")
      if stopped then break end
      u.run("sleep 0.05")
    end
    assert.is_truthy(stopped)
    local _, _, _, del = u.run(ctr .. " task delete d1")
    assert.is_true((u.run(ctr .. " containers rm d1")))
    assert.equal("", select(3, u.run(ctr .. " containers ls -q")))
    -- the shim learnt init's exit status (9, from the TERM trap)
    assert.matches("exit code 9", del)
    local _, _, left = u.run("ls -A " .. u.quote(root .. "/runc/default/oci"))
    assert.equal("", left)
  end)
end)
