-- Strings that name something (ids, names, paths) entering libhcs from Lua:
-- an embedded NUL is refused, never cut (C would name another object).
local core = require("hcs").core
local u = require "spec_util"

describe("hcs.core names", function()
  local root

  setup(function() root = u.tmpdir() end)
  teardown(function() u.rmtree(root) end)

  local function refuses(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "accepted a string with a NUL byte")
    assert.matches("NUL byte", err)
  end

  it("refuses a compute id or root with a NUL byte", function()
    refuses(core.compute.open, "web\0-other", root)
    refuses(core.compute.open, "web", root .. "\0/elsewhere")
    refuses(core.compute.open, "web", { root = root .. "\0/elsewhere" })
    refuses(core.compute.create, "web\0x", { Container = {} }, { root = root })
  end)

  it("refuses paths with a NUL byte", function()
    refuses(core.fs.copy_in, root .. "\0/x", "/etc/hostname", "/x")
    refuses(core.fs.copy_in, root, "/etc/hostname\0.bak", "/x")
    refuses(core.fs.copy_in, root, "/etc/hostname", "/x\0/../y")
  end)

  it("refuses store roots, ids and references with a NUL byte", function()
    local layers = assert(core.layer.open(root .. "/layers"))
    refuses(layers.exists, layers, "abc\0def")
    refuses(layers.create_scratch, layers, "s\0x", { "a" })
    refuses(layers.create_scratch, layers, "s", { "a\0b" })
    layers:close()
    refuses(core.layer.open, root .. "\0x")
    local images = assert(core.image.open(root .. "/images"))
    refuses(images.resolve, images, "busybox\0:latest")
    images:close()
  end)

  it("refuses registry references, paths and options with a NUL byte", function()
    local reg = require("hcs").core.registry
    refuses(reg.inspect, "127.0.0.1:1/busybox\0:latest")
    refuses(reg.download, "127.0.0.1:1/busybox", root .. "/a\0b")
    refuses(reg.logout, "127.0.0.1:1\0x")
    refuses(reg.inspect, "127.0.0.1:1/busybox", { auth_file = root .. "/auth\0.json" })
  end)

  it("refuses a document string value with a NUL byte", function()
    local ok, err = pcall(core.json.encode, { Container = { GuestOs = { HostName = "a\0b" } } })
    assert.is_false(ok)
    assert.matches("Container.GuestOs.HostName: string contains a NUL byte", err, 1, true)
  end)
end)
