-- podman driving hcs-runtime (`podman --runtime`): run, -d, logs, exec,
-- -t, pause/unpause, stop, rm, with a busybox image imported from an
-- archive into podman storage in a temporary root.  No network.
local u = require "spec_util"

local have_podman = u.run("command -v podman >/dev/null && command -v conmon >/dev/null")

describe("hcs-runtime under podman #root", function()
  if not have_podman then
    pending("podman and conmon are not installed (scripts/bootstrap installs them)")
    return
  end
  local root, parent, base
  local bin = u.build_dir .. "/hcs-runtime"
  -- The rlimits podman asks for by default exceed this machine's hard
  -- limits (runc refuses them too).
  local run_opts = "--network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --cgroup-parent /"

  local function podman(args)
    return u.run(base .. " " .. args)
  end

  setup(function()
    root = u.tmpdir()
    parent = "hcs-test-podman-" .. root:match("hcs%-test%.(.*)$")
    run_opts = run_opts .. parent
    base = ("podman --root %s/storage --runroot %s/run --tmpdir %s/tmp --storage-driver vfs --cgroup-manager cgroupfs " ..
      "--events-backend none --runtime %s"):format(root, root, root, u.quote(bin))
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, root .. "/rootfs")))
    local ok, _, _, err = u.run(("tar -C %s -c . | %s import - localhost/hcs-bb:latest"):format(u.quote(root .. "/rootfs"),
      base))
    assert(ok, err)
  end)

  teardown(function()
    podman("rm -af -t 0")
    podman("rmi -af")
    u.run(base .. " system reset -f")
    u.rmtree(root)
    -- podman puts conmon in <parent>/conmon; the containers were below it.
    u.run("find /sys/fs/cgroup -depth -mindepth 2 -maxdepth 4 -type d -path '*/" .. parent .. "*' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
    -- conmon and the containers name the root; "[/]" keeps pgrep's shell out.
    local _, _, procs = u.run("pgrep -f " .. u.quote("[/]" .. root:sub(2)))
    assert.equal("", procs)
  end)

  it("run passes the output and the exit status, --rm removes the container", function()
    -- podman's default seccomp profile (an allow-list) is compiled and loaded
    local ok, code, out, err = podman("run --rm " .. run_opts ..
      " localhost/hcs-bb sh -c 'echo hello; grep Seccomp: /proc/self/status; exit 4'")
    assert.is_false(ok, err)
    assert.equal(4, code)
    assert.equal("hello\nSeccomp:\t2\n", out)
    local _, _, ps = podman("ps -aq")
    assert.equal("", ps)
  end)

  it("run -d, logs, exec, pause, unpause, stop and rm", function()
    local ok, _, _, err = podman("run -d --name d1 " .. run_opts ..
      " localhost/hcs-bb sh -c 'echo started; trap \"echo bye; exit 0\" TERM; while :; do sleep 0.1; done'")
    assert.is_true(ok, err)
    local logs
    for _ = 1, 100 do
      logs = select(3, podman("logs d1"))
      if logs ~= "" then break end
      u.run("sleep 0.05")
    end
    assert.equal("started\n", logs)
    -- exec: output and exit status (a process that exits at once too)
    local _, code, out = podman("exec d1 sh -c 'echo in; exit 7'")
    assert.equal(7, code)
    assert.equal("in\n", out)
    local _, tcode, tout = podman("exec -t d1 sh -c 'tty; exit 3'")
    assert.equal(3, tcode)
    assert.equal("/dev/pts/0\r\n", tout)
    assert.is_true((podman("pause d1")))
    assert.equal("paused\n", select(3, podman("inspect -f '{{.State.Status}}' d1")))
    assert.is_true((podman("unpause d1")))
    assert.equal("running\n", select(3, podman("inspect -f '{{.State.Status}}' d1")))
    ok, _, _, err = podman("stop -t 10 d1")
    assert.is_true(ok, err)
    assert.equal("exited 0\n", select(3, podman("inspect -f '{{.State.Status}} {{.State.ExitCode}}' d1")))
    assert.equal("started\nbye\n", select(3, podman("logs d1")))
    assert.is_true((podman("rm d1")))
    local _, _, ps = podman("ps -aq")
    assert.equal("", ps)
  end)

  it("stop kills a container that ignores SIGTERM", function()
    assert.is_true((podman("run -d --name d2 " .. run_opts .. " localhost/hcs-bb sh -c 'trap \"\" TERM; sleep 100'")))
    assert.is_true((podman("stop -t 1 d2")))
    assert.equal("exited 137\n", select(3, podman("inspect -f '{{.State.Status}} {{.State.ExitCode}}' d2")))
    assert.is_true((podman("rm d2")))
  end)

  it("run -t gives the container a terminal", function()
    local ok, code, out, err = podman("run --rm -t " .. run_opts .. " localhost/hcs-bb sh -c 'tty; exit 5'")
    assert.is_false(ok, err)
    assert.equal(5, code)
    assert.equal("/dev/pts/0\r\n", out)
  end)
end)
