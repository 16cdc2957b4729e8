-- The registry parts of the CLI (hcs.util.registry_cli) and of hcs.registry
-- that need no registry: the progress display, option mapping, policies.
local rc = require "hcs.util.registry_cli"
local registry = require "hcs.registry"

describe("hcs.util.registry_cli", function()
  describe("display_enabled()", function()
    it("is off with --quiet or --json and up to the terminal otherwise", function()
      assert.is_false(rc.display_enabled { quiet = true })
      assert.is_false(rc.display_enabled { json = true })
      assert.is_nil(rc.display_enabled {})
    end)
  end)

  describe("display()", function()
    it("draws one line per layer and a total, redrawn in place", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      local saved = io.stderr
      io.stderr = f
      local ok, err = pcall(function()
        local d = rc.display("pull x", true)
        local layers = {
          { digest = "sha256:" .. ("a"):rep(64), done = 512, total = 1024, state = "transferring" },
          { digest = "sha256:" .. ("b"):rep(64), done = 2048, total = 2048, state = "present" },
        }
        d.callback(layers)
        d.callback(layers)
      end)
      io.stderr = saved
      f:close()
      local text = io.open(path):read("a")
      os.remove(path)
      assert(ok, err)
      assert.matches("aaaaaaaaaaaa transferring  50%% 512 B / 1.0 KiB", text)
      assert.matches("bbbbbbbbbbbb present      100%% 2.0 KiB / 2.0 KiB", text)
      assert.matches("pull x: 2.5 KiB / 3.0 KiB", text, 1, true)
      assert.matches("\27[3A", text, 1, true) -- the second frame moves up over the first
    end)

    it("draws nothing when disabled", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      local saved = io.stderr
      io.stderr = f
      rc.display("pull x", false).callback({ { digest = "sha256:" .. ("a"):rep(64), done = 1, total = 2,
        state = "waiting" } })
      io.stderr = saved
      f:close()
      assert.equal("", io.open(path):read("a"))
      os.remove(path)
    end)
  end)

  describe("opts()", function()
    it("maps command-line options to registry options", function()
      local o = rc.opts { ["tls-verify"] = "false", creds = "u:p:w", authfile = "/a", ["cert-dir"] = "/c",
        parallel = 2, timeout = 5 }
      assert.is_false(o.tls_verify)
      assert.equal("u", o.username)
      assert.equal("p:w", o.password)
      assert.equal("/a", o.auth_file)
      assert.equal("/c", o.certs_dir)
      assert.equal(2, o.parallel)
      assert.equal(5, o.timeout)
    end)
  end)
end)

describe("hcs.registry", function()
  it("tells a registry reference from a local name", function()
    assert.is_true(registry.names_registry("127.0.0.1:5000/a/b:1"))
    assert.is_true(registry.names_registry("quay.io/org/x"))
    assert.is_true(registry.names_registry("localhost/x"))
    assert.is_false(registry.names_registry("busybox"))
    assert.is_false(registry.names_registry("nosuch:1"))
    assert.is_false(registry.names_registry("user/app:1"))
  end)

  it("refuses an unknown pull policy", function()
    assert.has_error(function() registry.ensure({}, "x", "sometimes") end,
      'pull policy "sometimes": expected missing, always or never')
  end)
end)
