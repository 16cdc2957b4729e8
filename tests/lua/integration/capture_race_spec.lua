-- Capture by copy of a running system whose process swaps a regular file
-- with a device node in a loop: the system is paused while its changes are
-- copied (and resumed after), and even unpaused no device's bytes ever
-- enter the captured layer (entries are opened, then typed on the fd).
local u = require "spec_util"
local hcs = require "hcs"
local wf = hcs.workflow

local id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
local CG = "hcs-test-cap-" .. id

local function sh(cmd)
  local ok, code, out, err = u.run(cmd)
  assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
  return out
end

describe("capture of a running system #root", function()
  local dir, root, sys

  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    sh(("%s/scripts/make-base-image --root %s >/dev/null"):format(u.source_dir, root))
    sys = wf.define({ image = "busybox", name = "swapper", root = root }, { idle = true, cgroup_parent = CG })
    -- /app/data flips between a regular file and /dev/zero's node (c 1 5)
    -- app/big sorts before app/data: copying it widens the window between
    -- the walk's stat of app/data and its open, as a large capture does
    local code, out, err = sys:run({ "sh", "-c", "mkdir -p /app && echo regular > /app/data && mknod /app/node c 1 5 " ..
      "&& dd if=/dev/urandom of=/app/big bs=1M count=24 2>/dev/null && echo ok" }, { check = false })
    assert.equal(0, code, "mknod in the container: " .. tostring(out) .. tostring(err))
    sys:run "(while :; do mv -f /app/node /app/data; mknod /app/node c 1 5; echo regular > /app/swap; mv -f /app/swap /app/data; done) </dev/null >/dev/null 2>&1 &"
  end)

  teardown(function()
    if sys then pcall(wf.destroy, sys) end
    u.run("find /sys/fs/cgroup -maxdepth 2 -type d -name '" .. CG .. "' -exec rmdir {} + 2>/dev/null")
    u.rmtree(dir)
  end)

  -- What the captured layer holds at app/data: "device", or the file's bytes.
  local function captured_data(img, n)
    local layers <close> = assert(hcs.layer.open(root))
    local tar = ("%s/cap-%d.tar"):format(dir, n)
    assert(layers:export(img.Layers[#img.Layers], tar, { compression = "none" }))
    local listing = sh(("tar -tvf %s app/data"):format(tar))
    if listing:sub(1, 1) == "c" then return "device" end
    return sh(("tar -xOf %s app/data"):format(tar))
  end

  it("pauses the system by default and resumes it after", function()
    for n = 1, 8 do
      local img = wf.capture(sys, { name = "cap", version = tostring(n) })
      assert.equal("Running", sys:properties().State)
      local data = captured_data(img, n)
      assert(data == "device" or data == "regular\n", ("capture %d holds %q at app/data"):format(n, data))
    end
  end)

  it("never copies a device's bytes, even unpaused", function()
    local failures = 0
    for n = 1, 12 do
      local ok, img = pcall(wf.capture, sys, { name = "nopause", version = tostring(n), pause = false })
      if ok then
        local data = captured_data(img, 100 + n)
        assert(data == "device" or data == "regular\n", ("capture %d holds %q at app/data"):format(n, data))
      else
        -- refused, never wrong: an entry swapped for another type, or gone
        failures = failures + 1
        local msg = tostring(img)
        assert(msg:find("changed type while being read", 1, true) or msg:find("No such file", 1, true), msg)
      end
    end
    assert.equal("Running", sys:properties().State)
    print(("# unpaused captures refused for a swapped entry: %d of 12"):format(failures))
  end)

  it("hcs commit takes --pause=false and refuses a bad value", function()
    local ok, code, _, err = u.run(("%s --root %s commit swapper --name cli --pause=maybe"):format(u.hcs_bin, root))
    assert.is_false(ok)
    assert.equal(1, code)
    assert.matches("%-%-pause expects true or false", err)
    local ok2, _, out, err2 = u.run(("%s --root %s commit swapper --name cli --version 1 --json"):format(u.hcs_bin, root))
    assert(ok2, err2)
    assert.matches('"Name": "cli"', out)
  end)
end)
