-- The security defaults of container processes against the real kernel
-- (root): capabilities, the seccomp profile, /dev modes whatever the umask,
-- the working directory of a new process, limits without cgroups.
local hcs = require "hcs"
local u = require "spec_util"

describe("compute security defaults #root", function()
  local root, rootfs, parent, env

  local function hcs_run(...)
    return u.hcs({ "run", "--rm", "--cgroup-parent", parent, "--rootfs", rootfs, "--", ... }, env)
  end

  -- The host's /proc/self/fd entry of an fd this process holds on `path`.
  local function fd_of(path)
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("n")
    f:close()
    local _, _, out = u.run(("ls -l /proc/%d/fd"):format(pid))
    for n, target in out:gmatch(" (%d+) %-> ([^\n]+)") do
      if target == path then return tonumber(n) end
    end
  end

  setup(function()
    root = u.tmpdir()
    rootfs = root .. "/rootfs"
    assert(u.run(("%s/tests/fixtures/make-busybox-rootfs.sh %s"):format(u.source_dir, rootfs)))
    assert(u.run(("cp %s/tests/syscall_probe %s/bin/"):format(u.build_dir, rootfs)))
    parent = "hcs-test-sec-" .. root:match("hcs%-test%.(.*)$")
    env = { HCS_ROOT = root }
  end)

  teardown(function()
    for _, s in ipairs(hcs.compute.enumerate(nil, root) or {}) do
      local cs = hcs.compute.open(s.Id, root)
      if cs then cs:delete(true) end
    end
    u.rmtree(root)
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. parent .. "' -exec rmdir {} +")
    local _, _, dirs = u.run("find /sys/fs/cgroup -maxdepth 3 -type d -name '" .. parent .. "*'")
    assert.equal("", dirs)
  end)

  describe("capabilities", function()
    it("start with empty inheritable and ambient sets (CVE-2022-24769)", function()
      local ok, _, out, err = hcs_run("/bin/grep", "-E", "^Cap(Inh|Amb|Bnd)", "/proc/self/status")
      assert.is_true(ok, err)
      assert.matches("CapInh:%s+0000000000000000", out)
      assert.matches("CapAmb:%s+0000000000000000", out)
      assert.matches("CapBnd:%s+00000000a80425fb", out) -- Docker's 14
    end)
  end)

  describe("the default seccomp profile", function()
    local function probe(...)
      local _, _, out, err = hcs_run("/bin/syscall_probe", ...)
      return (out:gsub("\n$", "")), err
    end

    it("denies io_uring", function()
      local got, err = probe("io_uring_setup")
      assert.is_truthy(got == "EPERM" or got == "ENOSYS", got .. " " .. err)
    end)

    it("denies AF_VSOCK and AF_ALG sockets, allows the others", function()
      assert.equal("EPERM", (probe("vsock")))
      assert.equal("EPERM", (probe("alg")))
      assert.equal("ok", (probe("inet")))
    end)

    it("allows querying personality and the personas Docker allows, denies the rest", function()
      assert.equal("ok", (probe("personality", "ffffffff")))
      assert.equal("ok", (probe("personality", "0")))
      assert.equal("ok", (probe("personality", "8")))
      assert.equal("EPERM", (probe("personality", "400000"))) -- READ_IMPLIES_EXEC
      assert.equal("EPERM", (probe("personality", "40000"))) -- ADDR_NO_RANDOMIZE
    end)

    it("denies new namespaces without CAP_SYS_ADMIN", function()
      assert.equal("EPERM", (probe("unshare-user")))
    end)

    it("keeps Linux.Seccomp.Deny on top of the profile", function()
      local doc = hcs.compute.config { rootfs = rootfs, cgroup_parent = parent }
      doc.Linux.Seccomp = { Deny = { "socket" } }
      doc.Linux.Init = { CommandArgs = { "/bin/syscall_probe", "inet" }, CreateStdOutPipe = true }
      local cs = assert(hcs.compute.create("deny1", doc, { root = root }))
      assert(cs:start())
      local _, stdout = cs:stdio()
      local out = stdout:read("a")
      cs:wait()
      cs:delete(true)
      cs:close()
      assert.equal("EPERM\n", out)
    end)
  end)

  describe("/dev", function()
    it("has exact device modes whatever the caller's umask", function()
      local ok, _, out, err = u.run(("umask 077; HCS_ROOT=%s %s run --rm --cgroup-parent %s -u nobody --rootfs %s -- "
        .. "/bin/sh -c 'stat -c \"%%n %%a\" /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty "
        .. "/dev/pts /dev/shm /dev/mqueue /dev; echo > /dev/null && echo written'")
        :format(u.quote(root), u.quote(u.hcs_bin), parent, u.quote(rootfs)))
      assert.is_true(ok, err)
      for _, n in ipairs({ "null", "zero", "full", "random", "urandom", "tty" }) do
        assert.matches("/dev/" .. n .. " 666\n", out, 1, true)
      end
      assert.matches("/dev/pts 755\n", out, 1, true)
      assert.matches("/dev/shm 1777\n", out, 1, true)
      assert.matches("/dev/mqueue 1777\n", out, 1, true)
      assert.matches("/dev 755\n", out, 1, true)
      assert.matches("written\n", out, 1, true)
    end)

    it("gives container processes umask 022 whatever the caller's", function()
      local ok, _, out, err = u.run(("umask 077; HCS_ROOT=%s %s run --rm --cgroup-parent %s --rootfs %s -- "
        .. "/bin/sh -c umask"):format(u.quote(root), u.quote(u.hcs_bin), parent, u.quote(rootfs)))
      assert.is_true(ok, err)
      assert.equal("0022\n", out)
      -- and a process created later in the running system
      assert(u.hcs({ "run", "-d", "--name", "um1", "--cgroup-parent", parent, "--rootfs", rootfs }, env))
      ok, _, out, err = u.run(("umask 077; HCS_ROOT=%s %s exec um1 -- /bin/sh -c umask")
        :format(u.quote(root), u.quote(u.hcs_bin)))
      u.hcs({ "rm", "-f", "um1" }, env)
      assert.is_true(ok, err)
      assert.equal("0022\n", out)
    end)
  end)

  describe("a process created in a running system", function()
    local cs, hostdir, held

    before_each(function()
      hostdir = root .. "/host-secret"
      assert(u.run("mkdir -p " .. hostdir .. " && echo host > " .. hostdir .. "/marker"))
      cs = assert(hcs.compute.create("cwd1", hcs.compute.config { rootfs = rootfs, cgroup_parent = parent }, { root = root }))
      assert(cs:start())
      -- An fd the caller holds on a host directory, not close-on-exec.
      held = assert(io.open(hostdir, "r"))
    end)

    after_each(function()
      held:close()
      cs:terminate()
      cs:wait()
      cs:delete(true)
      cs:close()
    end)

    local function run_in(params)
      params.CreateStdOutPipe, params.CreateStdErrPipe = true, true
      local p, err = cs:create_process(params)
      if not p then return nil, err end
      local out = p.stdout:read("a")
      p:wait()
      p:close()
      return out
    end

    it("cannot reach the host through WorkingDirectory /proc/self/fd/N (CVE-2024-21626)", function()
      local n = assert(fd_of(hostdir), "the spec holds an fd on the host directory")
      local out, err = run_in { CommandArgs = { "/bin/cat", "marker" }, WorkingDirectory = "/proc/self/fd/" .. n }
      assert.is_nil(out, "the process ran in the host directory: " .. tostring(out))
      assert.matches("working directory `/proc/self/fd/" .. n .. "` inside the container", err, 1, true)
      out, err = run_in { CommandArgs = { "/bin/pwd" }, WorkingDirectory = "/proc/1/cwd" }
      assert.is_nil(out, "a magic link was followed")
      assert.matches("working directory", err)
    end)

    it("inherits none of the caller's fds but stdio", function()
      local out = assert(run_in { CommandArgs = { "/bin/ls", "/proc/self/fd" } })
      local fds = {}
      for fd in out:gmatch("%d+") do fds[#fds + 1] = tonumber(fd) end
      table.sort(fds)
      -- 0, 1, 2 and the directory ls itself reads
      assert.same({ 0, 1, 2, 3 }, fds)
    end)

    it("still enters an ordinary working directory, through symlinks inside the root", function()
      assert(u.run("ln -sfn /home/user " .. rootfs .. "/linkdir"))
      assert.equal("/home/user\n", run_in { CommandArgs = { "/bin/pwd", "-P" }, WorkingDirectory = "/linkdir" })
      assert.equal("/tmp\n", run_in { CommandArgs = { "/bin/pwd" }, WorkingDirectory = "/tmp" })
    end)
  end)

  describe("ids", function()
    it("a 65 to 128 character id runs, its host name the id cut to 64 characters", function()
      local id = ("a"):rep(60) .. "-long-" .. ("b"):rep(62) -- 128
      local ok, _, out, err = u.hcs({ "run", "--rm", "--name", id, "--cgroup-parent", parent, "--rootfs", rootfs, "--",
        "/bin/hostname" }, env)
      assert.is_true(ok, err)
      assert.equal(id:sub(1, 64) .. "\n", out)
      ok, _, _, err = u.hcs({ "run", "--rm", "--name", id .. "c", "--cgroup-parent", parent, "--rootfs", rootfs, "--",
        "/bin/true" }, env)
      assert.is_false(ok)
      assert.matches("longer than 128 characters", err, 1, true)
    end)
  end)

  describe("limits", function()
    it("are refused when no cgroup hierarchy is visible", function()
      -- As `ip netns exec` does: a new network namespace's sysfs on /sys
      -- hides /sys/fs/cgroup.
      local ok, code, out, err = u.run(("unshare -m -n sh -c 'mount --make-rprivate / && mount -t sysfs sysfs /sys && "
        .. "HCS_ROOT=%s %s run --rm -m 64 --rootfs %s -- /bin/true'")
        :format(u.quote(root), u.quote(u.hcs_bin), u.quote(rootfs)))
      assert.is_false(ok, out)
      assert.is_not.equal(0, code)
      assert.matches("Container.Memory.SizeInMB` needs a cgroup hierarchy", err, 1, true)
      ok, _, out, err = u.run(("unshare -m -n sh -c 'mount --make-rprivate / && mount -t sysfs sysfs /sys && "
        .. "HCS_ROOT=%s %s run --rm --cpus 1 --rootfs %s -- /bin/true'")
        :format(u.quote(root), u.quote(u.hcs_bin), u.quote(rootfs)))
      assert.is_false(ok, out)
      assert.matches("Container.Processor.Count` needs a cgroup hierarchy", err, 1, true)
      -- Without limits the system still runs there.
      ok, _, out, err = u.run(("unshare -m -n sh -c 'mount --make-rprivate / && mount -t sysfs sysfs /sys && "
        .. "HCS_ROOT=%s %s run --rm --rootfs %s -- /bin/echo fine'")
        :format(u.quote(root), u.quote(u.hcs_bin), u.quote(rootfs)))
      assert.is_true(ok, err)
      assert.equal("fine\n", out)
    end)

    it("without a device allowlist, the default set loses CAP_MKNOD and an explicit one is refused", function()
      local script = root .. "/nocg.sh"
      local f = assert(io.open(script, "w"))
      f:write(([[
mount --make-rprivate / && mount -t sysfs sysfs /sys || exit 9
export HCS_ROOT=%s
%s run --rm --rootfs %s -- /bin/grep CapBnd /proc/self/status
%s run -d --name nm1 --rootfs %s >/dev/null
%s exec nm1 -- /bin/grep CapBnd /proc/self/status
%s rm -f nm1 >/dev/null
%s -e 'local hcs = require "hcs"
local d = hcs.compute.config { rootfs = %q }
d.Linux = d.Linux or {}
d.Linux.Capabilities = { "CAP_CHOWN", "CAP_MKNOD" }
print(hcs.compute.create("mk1", d, { root = os.getenv("HCS_ROOT") }))'
]]):format(u.quote(root), u.quote(u.hcs_bin), u.quote(rootfs), u.quote(u.hcs_bin), u.quote(rootfs),
        u.quote(u.hcs_bin), u.quote(u.hcs_bin), u.quote(u.hcs_bin), rootfs))
      f:close()
      local ok, _, out, err = u.run("unshare -m -n sh " .. u.quote(script))
      assert.is_true(ok, err)
      -- Docker's 14 (a80425fb) without CAP_MKNOD (bit 27), for init and exec
      assert.matches("^CapBnd:%s+00000000a00425fb\nCapBnd:%s+00000000a00425fb\n", out)
      assert.matches("grants CAP_MKNOD, and with no cgroup hierarchy", out, 1, true)
    end)
  end)
end)
