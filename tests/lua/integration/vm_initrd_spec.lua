-- `hcs vm initrd` and hcs.vm.initrd: the guest initramfs, read back with
-- cpio(1); hostile modules directories (paths that climb, symlinks out)
-- and bad options are refused with clear errors.  Booting it is
-- tests/c/test_vm_agent.c.
local u = require "spec_util"
local hcs = require "hcs"

local function kernel_version()
  local ok, _, out = u.run("ls /lib/modules")
  if not ok then return nil end
  for v in out:gmatch("[^\n]+") do
    if u.run("test -f /lib/modules/" .. u.quote(v) .. "/modules.dep") then return v end
  end
end

-- A fake kernel's modules directory: modules.dep lines and files.
local function fake_modules(dir, version, dep, files)
  local d = dir .. "/" .. version
  assert(u.run("mkdir -p " .. u.quote(d .. "/kernel")))
  u.write_file(d .. "/modules.dep", dep)
  for name, data in pairs(files) do u.write_file(d .. "/" .. name, data) end
  return d
end

local function list(initrd)
  local ok, _, out = u.run("zcat " .. u.quote(initrd) .. " | cpio -t --quiet")
  assert(ok, "cpio -t failed")
  local t = {}
  for l in out:gmatch("[^\n]+") do t[l] = true end
  return t
end

local function extract(initrd, name)
  local ok, _, out = u.run("zcat " .. u.quote(initrd) .. " | cpio -i --quiet --to-stdout " .. u.quote(name))
  assert(ok, "cpio -i failed")
  return out
end

local basic_dep = "kernel/virtio_console.ko: kernel/virtio.ko kernel/virtio_ring.ko\n"
  .. "kernel/virtio.ko: kernel/virtio_ring.ko\nkernel/virtio_ring.ko:\nkernel/virtio_pci.ko: kernel/virtio.ko\n"
  .. "kernel/unrelated.ko:\n"
local basic_files = {
  ["kernel/virtio_console.ko"] = "console", ["kernel/virtio.ko"] = "virtio", ["kernel/virtio_ring.ko"] = "ring",
  ["kernel/virtio_pci.ko"] = "pci", ["kernel/unrelated.ko"] = "no",
}

describe("hcs vm initrd", function()
  local dir
  before_each(function() dir = u.tmpdir() end)
  after_each(function() u.rmtree(dir) end)

  it("packs the agent as /init, busybox and a real kernel's VM modules with their dependencies", function()
    local version = kernel_version()
    assert.is_not_nil(version, "no kernel modules in /lib/modules (scripts/bootstrap installs linux-image-amd64)")
    local out = dir .. "/initrd.gz"
    local ok, code, stdout, stderr = u.hcs({ "vm", "initrd", "--kernel-modules", "/lib/modules", "--kernel", version,
      "-o", out, "--json" })
    assert.is_true(ok, stderr)
    assert.equal(0, code)
    local sum = hcs.json.decode(stdout)
    assert.equal(version, sum.KernelVersion)
    local names = {}
    for _, m in ipairs(sum.Modules) do names[m] = true end
    for _, m in ipairs { "virtio_console", "virtio_pci", "virtio_ring", "virtio_net", "9pnet_virtio", "overlay",
      "ext4", "jbd2" } do
      assert.is_true(names[m], m .. " is missing")
    end
    local files = list(out)
    assert.is_true(files["init"] and files["bin/busybox"] and files["dev/console"] and files["etc/passwd"])
    local moddir = "lib/modules/" .. version
    assert.is_true(files[moddir .. "/modules.dep"])
    assert.is_true(files[moddir .. "/kernel/drivers/char/virtio_console.ko"])
    local f = assert(io.open(u.build_dir .. "/hcs-agent", "rb"))
    local agent = f:read("a")
    f:close()
    assert.is_true(extract(out, "init") == agent, "/init is the built hcs-agent")
    -- the packed modules.dep lists exactly the packed modules
    local count = 0
    for line in extract(out, moddir .. "/modules.dep"):gmatch("[^\n]+") do
      count = count + 1
      assert.is_true(files[moddir .. "/" .. line:match("^([^:]+):")], line)
    end
    assert.equal(#sum.Modules, count)
  end)

  it("resolves modules.dep of a modules directory given as the version directory itself", function()
    local d = fake_modules(dir, "9.9.9-test", basic_dep, basic_files)
    local sum = assert(hcs.vm.initrd { modules = d, output = dir .. "/i.gz" })
    assert.equal("9.9.9-test", sum.KernelVersion)
    table.sort(sum.Modules)
    assert.same({ "virtio", "virtio_console", "virtio_pci", "virtio_ring" }, sum.Modules)
    local files = list(dir .. "/i.gz")
    assert.is_nil(files["lib/modules/9.9.9-test/kernel/unrelated.ko"])
    assert.equal("console", extract(dir .. "/i.gz", "lib/modules/9.9.9-test/kernel/virtio_console.ko"))
  end)

  it("replaces the output atomically and leaves no temporary file", function()
    fake_modules(dir, "1.0-test", basic_dep, basic_files)
    local out = dir .. "/out/i.gz"
    assert(u.run("mkdir " .. u.quote(dir .. "/out")))
    u.write_file(out, "old")
    assert(hcs.vm.initrd { modules = dir, output = out })
    local _, _, ls = u.run("ls -A " .. u.quote(dir .. "/out"))
    assert.equal("i.gz\n", ls)
    assert.is_true(list(out)["init"])
  end)

  it("refuses an unknown kernel version with the directory it looked in", function()
    -- regression: the failed lookup freed the directory name twice (abort)
    fake_modules(dir, "1.0-test", basic_dep, basic_files)
    local ok, code, _, stderr = u.hcs({ "vm", "initrd", "--kernel-modules", dir, "--kernel", "9.9", "-o", dir .. "/x" })
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("find the modules of kernel `9.9` in `" .. dir:gsub("%p", "%%%0") .. "` %(no modules.dep%)",
      stderr)
    assert.is_false(u.run("test -e " .. u.quote(dir .. "/x")))
  end)

  it("asks for --kernel when the directory holds several kernels", function()
    fake_modules(dir, "1.0-a", basic_dep, basic_files)
    fake_modules(dir, "1.0-b", basic_dep, basic_files)
    local sum, err = hcs.vm.initrd { modules = dir, output = dir .. "/x" }
    assert.is_nil(sum)
    assert.matches("choose a kernel with %-%-kernel: `.*` holds 2 kernels' modules", err)
    assert.is_truthy(hcs.vm.initrd { modules = dir, kernel = "1.0-b", output = dir .. "/x" })
    assert.is_nil((hcs.vm.initrd { modules = dir, kernel = "../etc", output = dir .. "/x" }))
  end)

  it("refuses a modules.dep path that climbs out of the modules directory", function()
    local d = fake_modules(dir, "1.0-test", basic_dep .. "kernel/virtio_ring.ko: ../../../../etc/shadow\n", basic_files)
    local sum, err = hcs.vm.initrd { modules = d, output = dir .. "/x" }
    assert.is_nil(sum)
    assert.matches("unsafe module path `%.%./%.%./%.%./%.%./etc/shadow`", err)
  end)

  it("refuses a module that is a symlink (never read through it)", function()
    local d = fake_modules(dir, "1.0-test", basic_dep, basic_files)
    assert(u.run("ln -sf /etc/passwd " .. u.quote(d .. "/kernel/virtio_ring.ko")))
    local sum, err = hcs.vm.initrd { modules = d, output = dir .. "/x" }
    assert.is_nil(sum)
    assert.matches("open module `.*/kernel/virtio_ring.ko`", err)
    assert.is_false(u.run("test -e " .. u.quote(dir .. "/x")))
  end)

  it("refuses a modules directory without virtio_console", function()
    local d = fake_modules(dir, "1.0-test", "kernel/virtio_pci.ko:\n", { ["kernel/virtio_pci.ko"] = "pci" })
    local sum, err = hcs.vm.initrd { modules = d, output = dir .. "/x" }
    assert.is_nil(sum)
    assert.matches("find module `virtio_console` in `.*`: neither in modules.dep nor built in", err)
  end)

  it("refuses a dynamically linked agent", function()
    local d = fake_modules(dir, "1.0-test", basic_dep, basic_files)
    local sum, err = hcs.vm.initrd { modules = d, output = dir .. "/x", agent = "/bin/ls" }
    assert.is_nil(sum)
    assert.matches("`/bin/ls`.*dynamically linked", err)
  end)

  it("requires --kernel-modules and -o (usage errors, status 2)", function()
    local ok, code, _, stderr = u.hcs({ "vm", "initrd", "-o", dir .. "/x" })
    assert.is_false(ok)
    assert.equal(2, code)
    assert.matches("option '%-%-kernel%-modules' is required", stderr)
    ok, code, _, stderr = u.hcs({ "vm", "initrd", "--kernel-modules", dir })
    assert.equal(2, code)
    assert.matches("option '%-o' %(%-%-output%) is required", stderr)
  end)
end)
