-- hcs.net end to end, as root, on real kernel objects -- but never on the
-- real host's network: each run makes a "host" netns (hcs-test-host-*) and a
-- "remote host" netns wired to it, and runs `hcs` inside the host netns with
-- nsenter (only the netns changes, so compartment bind mounts persist).
-- Traffic flows only between these namespaces.
local u = require "spec_util"

local id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
local HOST, REMOTE = "hcs-test-host-" .. id, "hcs-test-remote-" .. id
local root

local function sh(cmd)
  local ok, _, out, err = u.run(cmd)
  return ok, out, err
end

local function must(cmd)
  local ok, out, err = sh(cmd)
  assert(ok, ("command failed: %s\n%s%s"):format(cmd, out, err))
  return out
end

local function in_host(cmd) return ("nsenter --net=/run/netns/%s %s"):format(HOST, cmd) end

--- Run hcs inside the test host netns; returns ok, stdout, stderr.
local function hcs(args, env)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. u.quote(v) end
  parts[#parts + 1] = in_host(u.quote(u.hcs_bin) .. " --root " .. u.quote(root))
  for _, a in ipairs(args) do parts[#parts + 1] = u.quote(a) end
  return sh(table.concat(parts, " "))
end

local function hcs_ok(args, env)
  local ok, out, err = hcs(args, env)
  assert(ok, ("hcs %s failed: %s%s"):format(table.concat(args, " "), out, err))
  return out
end

--- The root's nftables table in the host netns (`ip hcs<hash of the root>`).
local function nft_table()
  local t = must(in_host("nft list tables")):match("table (ip hcs%x+)")
  assert(t, "no hcs table in the host netns")
  return t
end

local function hcs_json(args) return require("hcs").json.decode(hcs_ok(args)) end

local function netns_path(ns)
  if ns == HOST or ns == REMOTE then return "/run/netns/" .. ns end
  return root .. "/run/netns/" .. ns
end

local servers = {}

--- A one-shot TCP echo server (busybox nc) in a namespace, bounded in time;
-- its pid is kept so kill_servers ends exactly what this spec started.
local function echo_server(ns, port)
  local p = netns_path(ns)
  local _, pid = sh(("timeout 10 nsenter --net=%s busybox nc -l -p %d -e /bin/cat >/dev/null 2>&1 & echo $!"):format(p,
    port))
  servers[#servers + 1] = pid:match("%d+")
  for _ = 1, 40 do
    local _, out = sh(("nsenter --net=%s busybox netstat -ltn 2>/dev/null"):format(p))
    if out:find(":" .. port .. " ", 1, true) then return end
    os.execute("sleep 0.05")
  end
  error("echo server did not start in " .. ns)
end

--- Send a line from a namespace to ip:port; returns what came back.
local function talk(ns, ip, port, msg)
  local _, out = sh(("echo %s | timeout 5 nsenter --net=%s busybox nc -w 1 %s %d"):format(msg, netns_path(ns), ip, port))
  return (out:gsub("%s+$", ""))
end

local function kill_servers()
  for _, pid in ipairs(servers) do sh("kill " .. pid .. " 2>/dev/null; true") end
  servers = {}
end

describe("hcs.net #root", function()
  setup(function()
    root = u.tmpdir()
    must("ip netns add " .. HOST)
    must("ip netns add " .. REMOTE)
    must(("ip -n %s link set lo up && ip -n %s link set lo up"):format(HOST, REMOTE))
    -- The remote host reaches the host at 192.168.77.1 through a veth.
    must(("ip -n %s link add up0 type veth peer name up0 netns %s"):format(HOST, REMOTE))
    must(("ip -n %s addr add 192.168.77.1/24 dev up0 && ip -n %s link set up0 up"):format(HOST, HOST))
    must(("ip -n %s addr add 192.168.77.2/24 dev up0 && ip -n %s link set up0 up"):format(REMOTE, REMOTE))
  end)

  teardown(function()
    sh("ip netns del " .. HOST)
    sh("ip netns del " .. REMOTE)
    u.rmtree(root)
  end)

  it("creates a NAT network, compartments and endpoints, listable with routes", function()
    hcs_ok({ "network", "create", "nat1", "--subnet", "10.61.0.0/24" })
    for _, c in ipairs({ "c1", "c2" }) do hcs_ok({ "compartment", "create", "--id", c, "--container", "web-" .. c }) end
    local e1 = hcs_json({ "endpoint", "create", "--network", "nat1", "--name", "e1", "--namespace", "c1", "-p",
      "8080:80", "--json" })
    assert.are.equal("10.61.0.2", e1.IpConfigurations[1].IpAddress)
    assert.are.equal("c1", e1.HostComputeNamespace)
    local e2 = hcs_json({ "endpoint", "create", "--network", "nat1", "--name", "e2", "--json" })
    assert.are.equal(require("hcs").json.null, e2.HostComputeNamespace)
    hcs_ok({ "endpoint", "attach", "e2", "c2" })
    local list = hcs_json({ "compartment", "ls", "--json" })
    assert.are.equal(2, #list)
    local c1 = list[1].Id == "c1" and list[1] or list[2]
    assert.are.equal("Container_web-c1", c1.Description)
    local default
    for _, r in ipairs(c1.Routes) do
      if r.DestinationPrefix == "0.0.0.0/0" then default = r end
    end
    assert.are.same({ "10.61.0.1", "eth0" }, { default.NextHop, default.InterfaceAlias })
    local text = hcs_ok({ "compartment", "ls", "--routes", "--interfaces" })
    assert.truthy(text:find("\\Container_web-c2", 1, true))
    assert.truthy(text:find("10.61.0.3/24", 1, true))
  end)

  it("lets two endpoints on one NAT network reach each other (TCP echo)", function()
    finally(kill_servers)
    echo_server("c2", 7000)
    assert.are.equal("ping-c1-c2", talk("c1", "10.61.0.3", 7000, "ping-c1-c2"))
  end)

  it("forwards a port mapping from the host itself (host address and loopback)", function()
    finally(kill_servers)
    echo_server("c1", 80)
    assert.are.equal("via-host-ip", talk(HOST, "192.168.77.1", 8080, "via-host-ip"))
    echo_server("c1", 80)
    assert.are.equal("via-loopback", talk(HOST, "127.0.0.1", 8080, "via-loopback"))
  end)

  it("keeps what the host binds to 127.0.0.1 out of a container's reach (CVE-2020-8558)", function()
    local dir = u.tmpdir()
    finally(function() -- one finally per test: busted keeps the last
      kill_servers()
      hcs({ "endpoint", "rm", "lo1" })
      hcs({ "compartment", "rm", "lo1" })
      u.rmtree(dir)
    end)
    hcs_ok({ "compartment", "create", "--id", "lo1" })
    hcs_ok({ "endpoint", "create", "--network", "nat1", "--name", "lo1", "--namespace", "lo1", "-p", "8085:80" })
    -- A service the host binds to loopback only.
    u.write_file(dir .. "/s.txt", "loopback-only\n")
    local _, pid = sh(("timeout 20 nsenter --net=%s busybox httpd -f -p 127.0.0.1:8999 -h %s >/dev/null 2>&1 & echo $!")
      :format(netns_path(HOST), dir))
    servers[#servers + 1] = pid:match("%d+")
    local function fetch(ns)
      local _, out = sh(("printf 'GET /s.txt HTTP/1.0\\r\\n\\r\\n' | timeout 5 nsenter --net=%s busybox nc -w 2 127.0.0.1 8999")
        :format(netns_path(ns)))
      return out
    end
    local served
    for _ = 1, 40 do
      served = fetch(HOST):find("loopback-only", 1, true)
      if served then break end
      os.execute("sleep 0.05")
    end
    assert.truthy(served, "the host reaches its own loopback service")
    -- A hostile container sends to 127.0.0.1 through its gateway: the NAT
    -- bridge has route_localnet (for 127.0.0.1:port mappings), so without a
    -- drop rule the host would deliver it to its loopback service.
    must(("nsenter --net=%s sh -c 'sysctl -qw net.ipv4.conf.eth0.route_localnet=1 && ip addr flush dev lo && " ..
      "ip route flush table local dev lo && ip route add 127.0.0.1/32 via 10.61.0.1 dev eth0'"):format(netns_path("lo1")))
    assert.falsy(fetch("lo1"):find("loopback-only", 1, true))
    -- A port mapping used from the host as 127.0.0.1:port still works.
    echo_server("lo1", 80)
    assert.are.equal("mapped-loopback", talk(HOST, "127.0.0.1", 8085, "mapped-loopback"))
  end)

  it("forwards a port mapping from a neighbour through the gateway (hairpin)", function()
    finally(kill_servers)
    echo_server("c1", 80)
    assert.are.equal("hairpin", talk("c2", "10.61.0.1", 8080, "hairpin"))
  end)

  it("forwards a port mapping from another host", function()
    finally(kill_servers)
    echo_server("c1", 80)
    assert.are.equal("from-remote", talk(REMOTE, "192.168.77.1", 8080, "from-remote"))
  end)

  it("binds a port mapping to one host address (VIP) when asked", function()
    finally(kill_servers)
    hcs_ok({ "endpoint", "create", "--network", "nat1", "--name", "vip", "--namespace", "c2", "-p",
      "192.168.77.1:8090:90" })
    echo_server("c2", 90)
    assert.are.equal("", talk(HOST, "127.0.0.1", 8090, "not-here"))
    assert.are.equal("vip", talk(REMOTE, "192.168.77.1", 8090, "vip"))
    hcs_ok({ "endpoint", "rm", "vip" })
    assert.falsy(must(in_host("nft list map " .. nft_table() .. " portmap_addr")):find("8090", 1, true))
  end)

  it("masquerades outbound traffic of a NAT network", function()
    finally(kill_servers)
    echo_server(REMOTE, 9100)
    assert.are.equal("outbound", talk("c1", "192.168.77.2", 9100, "outbound"))
  end)

  it("skips masquerade for an endpoint's OutBoundNAT exceptions", function()
    finally(kill_servers)
    hcs_ok({ "compartment", "create", "--id", "c4" })
    local spec = require("hcs").json.encode({ Name = "nonat", HostComputeNetwork = "nat1", HostComputeNamespace = "c4",
      Policies = { { Type = "OutBoundNAT", Settings = { Exceptions = { "192.168.77.0/24" } } } } })
    hcs_ok({ "-e", ("assert(require('hcs').net.endpoint.create(%q))"):format(spec) })
    -- Not masqueraded: the remote host sees 10.61.0.x and has no route back...
    echo_server(REMOTE, 9200)
    assert.are.equal("", talk("c4", "192.168.77.2", 9200, "unrouted"))
    -- ...until it gets one.
    must(("ip -n %s route add 10.61.0.0/24 via 192.168.77.1"):format(REMOTE))
    finally(function() sh(("ip -n %s route del 10.61.0.0/24"):format(REMOTE)) end)
    echo_server(REMOTE, 9201)
    assert.are.equal("routed", talk("c4", "192.168.77.2", 9201, "routed"))
    hcs_ok({ "endpoint", "rm", "nonat" })
    hcs_ok({ "compartment", "rm", "c4" })
  end)

  it("adds and removes port mappings as map elements (no rule growth)", function()
    local before = must(in_host("nft -a list chain " .. nft_table() .. " prerouting"))
    hcs_ok({ "endpoint", "create", "--network", "nat1", "--name", "e3", "-p", "8081:81", "-p", "8082:82/udp" })
    local after = must(in_host("nft -a list chain " .. nft_table() .. " prerouting"))
    assert.are.equal(before, after)
    local map = must(in_host("nft list map " .. nft_table() .. " portmap"))
    assert.truthy(map:find("tcp . 8081 : 10.61.0.4 . 81", 1, true))
    assert.truthy(map:find("udp . 8082 : 10.61.0.4 . 82", 1, true))
    hcs_ok({ "endpoint", "rm", "e3" })
    map = must(in_host("nft list map " .. nft_table() .. " portmap"))
    assert.falsy(map:find("8081", 1, true))
  end)

  it("isolates two networks from each other", function()
    finally(kill_servers)
    hcs_ok({ "network", "create", "nat2", "--subnet", "10.62.0.0/24" })
    hcs_ok({ "compartment", "create", "--id", "c3" })
    hcs_ok({ "endpoint", "create", "--network", "nat2", "--name", "e4", "--namespace", "c3" })
    echo_server("c1", 7100)
    assert.are.equal("", talk("c3", "10.61.0.2", 7100, "leak"))
    -- ...while the same server is reachable inside its own network.
    assert.are.equal("same-net", talk("c2", "10.61.0.2", 7100, "same-net"))
  end)

  it("refuses invalid specs with clear errors", function()
    local ok, _, err = hcs({ "network", "create", "dup", "--subnet", "10.61.0.128/25" })
    assert.falsy(ok)
    assert.truthy(err:find("overlaps `10.61.0.0/24` of network `nat1`", 1, true))
    ok, _, err = hcs({ "endpoint", "create", "--network", "nat2", "-p", "8080:90" })
    assert.falsy(ok)
    assert.truthy(err:find("host port tcp/8080 is already mapped by endpoint `e1`", 1, true))
    ok, _, err = hcs({ "network", "create", "bad", "--subnet", "10.70.0.0/24", "--gateway", "10.71.0.1" })
    assert.falsy(ok)
    assert.truthy(err:find("outside the subnet", 1, true))
    ok, _, err = hcs({ "endpoint", "create", "--network", "nat2", "--mac", "01-00-5E-00-00-01" })
    assert.falsy(ok)
    assert.truthy(err:find("multicast MAC", 1, true))
  end)

  it("writes DNS files that work behind a systemd-resolved stub", function()
    local dir = u.tmpdir()
    finally(function() u.rmtree(dir) end)
    u.write_file(dir .. "/stub.conf", "nameserver 127.0.0.53\nsearch corp.example\n")
    u.write_file(dir .. "/upstream.conf", "nameserver 192.0.2.53\nsearch corp.example\n")
    local e = require("hcs").json.decode(hcs_ok({ "endpoint", "create", "--network", "nat2", "--name", "dns", "--json" },
      { HCS_HOST_RESOLV_CONF = dir .. "/stub.conf", HCS_RESOLVED_CONF = dir .. "/upstream.conf" }))
    local conf = u.read_file(e.Linux.ResolvConf)
    assert.truthy(conf:find("nameserver 192.0.2.53", 1, true))
    assert.falsy(conf:find("127.0.0.53", 1, true))
    assert.truthy(u.read_file(e.Linux.Hosts):find("10.62.0.3\tdns", 1, true))
    hcs_ok({ "endpoint", "rm", "dns" })
  end)

  it("drives the same model from Lua (hcs.net)", function()
    local script = [[
      local net = require("hcs").net
      local n = assert(net.network.create{ Name = "lua", Type = "NAT", Subnet = "10.63.0.0/24" })
      local ns = assert(net.namespace.create{ ContainerId = "lua" })
      local e = assert(net.endpoint.create{ Name = "lua-ep", HostComputeNetwork = n.Id, HostComputeNamespace = ns.Id })
      local c = assert(net.namespace.inspect(ns.Id, { details = true }))
      assert(#c.Resources == 1 and c.Resources[1].Id == e.Id, "namespace lists its endpoint")
      assert(net.endpoint.detach(e.Id))
      assert(net.endpoint.delete(e.Id))
      assert(net.namespace.delete(ns.Id))
      local ok, msg = net.network.delete("no-such-network")
      assert(ok == nil and msg:find("no such id or name"), msg)
      assert(net.network.delete(n.Id))
      print("lua-ok")
    ]]
    local out = hcs_ok({ "-e", script })
    assert.truthy(out:find("lua-ok", 1, true))
  end)

  it("picks a subnet clear of the host's routes for a NAT network given none; makes the default network once",
    function()
      -- The pool starts at 10.88.0.0/16; the host routes 10.88.0.0/16 here.
      must(in_host("ip route add blackhole 10.88.0.0/16"))
      finally(function() sh(in_host("ip route del blackhole 10.88.0.0/16")) end)
      local n = hcs_json({ "network", "create", "auto", "--json" })
      assert.are.equal("10.89.0.0/16", n.Ipams[1].Subnets[1].IpAddressPrefix)
      local out = hcs_ok({ "-e", "local net = require('hcs').net; local a = assert(net.default_network()); " ..
        "local b = assert(net.default_network()); print(a.Name, a.Type, a.Id == b.Id, a.Ipams[1].Subnets[1].IpAddressPrefix)" })
      assert.are.equal("nat\tNAT\ttrue\t10.90.0.0/16\n", out)
      hcs_ok({ "network", "rm", "auto", "nat" })
    end)

  it("deletes everything and leaves no link, netns, nftables table or lease", function()
    for _, e in ipairs({ "e1", "e2", "e4" }) do hcs_ok({ "endpoint", "rm", e }) end
    for _, c in ipairs({ "c1", "c2", "c3" }) do hcs_ok({ "compartment", "rm", c }) end
    hcs_ok({ "network", "rm", "nat1", "nat2" })
    local links = must(("ip -n %s -o link show"):format(HOST))
    assert.falsy(links:find(": hcs", 1, true))
    assert.falsy(links:find(": vh", 1, true))
    assert.are.equal("", must(in_host("nft list tables")))
    -- Nothing but the store's lock file: no document, lease, DNS file or netns
    -- (the event journal stays: it is the run root's history).
    local _, files = sh(("find %s/net %s/run -type f ! -name lock ! -path '*/run/events/*'"):format(root, root))
    assert.are.equal("", files)
    assert.are.same({}, u.mounts_under(root))
  end)
end)
