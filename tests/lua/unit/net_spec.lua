-- hcs.net facade helpers that need no kernel objects.
local net = require "hcs.net"

describe("hcs.net", function()
  describe("port_mapping()", function()
    it("reads HOSTPORT:PORT as TCP", function()
      assert.are.same({ Type = "PortMapping", Settings = { Protocol = "TCP", ExternalPort = 8080, InternalPort = 80 } },
        net.port_mapping("8080:80"))
    end)

    it("reads a protocol and a host address", function()
      local p = net.port_mapping("127.0.0.1:5353:53/udp")
      assert.are.same({ Protocol = "UDP", ExternalPort = 5353, InternalPort = 53, VIP = "127.0.0.1" }, p.Settings)
    end)

    it("refuses what it cannot read, saying what it expected", function()
      local p, msg = net.port_mapping("80")
      assert.is_nil(p)
      assert.truthy(msg:find("expected [ADDRESS:]HOSTPORT:PORT", 1, true))
    end)
  end)

  it("exposes the raw handle type through hcs.core.net", function()
    assert.are.equal("function", type(require("hcs.core").net.open))
    assert.are.equal(net.namespace, net.compartment)
  end)
end)
