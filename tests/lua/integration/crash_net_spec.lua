-- Crash consistency of networks, compartments and endpoints (issue #15.18):
-- one cycle -- network create, compartment create, endpoint create with a
-- port mapping, traffic to the gateway, then endpoint, compartment and
-- network delete -- is killed at each of its persistence points in turn
-- (HCS_CRASH_AT, tests/lua/crash_util.lua).  After each kill a fresh
-- process must open the store and list it; then an unarmed process
-- recovers from what the kill left: it removes a leftover endpoint and
-- compartment, uses a leftover network (whose set-up must be finished by its
-- next user: traffic and rules are checked) and deletes it; then the cycle
-- runs again, killed at the next point.  At the end nothing may be left: no
-- link, nftables table, lease, netns, document or marker.  All of it in a
-- "host" netns of its own.
local u = require "spec_util"
local crash = require "crash_util"

local CYCLE = [[
-- cycle.lua recover|run
local net = require("hcs").net
local mode = ...

-- An endpoint with a port mapping in a compartment on network cn: traffic
-- to the gateway and the rules are checked, then it all goes.
local function use_network()
  assert(net.namespace.create { Id = "cc" })
  local e = assert(net.endpoint.create { Name = "ce", HostComputeNetwork = "cn", HostComputeNamespace = "cc",
    Policies = { net.port_mapping("8383:80") } })
  local path = assert(net.namespace.path("cc"))
  assert(os.execute(("nsenter --net=%s busybox ping -c1 -W2 10.181.0.1 >/dev/null"):format(path)),
    "the compartment does not reach its gateway")
  local p = io.popen("nft list ruleset")
  local rules = p:read("a")
  p:close()
  assert(rules:find("tcp . 8383 : " .. e.IpConfigurations[1].IpAddress .. " . 80", 1, true), "the mapping is missing")
  assert(rules:find("10.181.0.0/24 : jump p_", 1, true), "the network's masquerade is missing")
  assert(net.endpoint.delete("ce"))
  assert(net.namespace.delete("cc"))
end

if mode == "recover" then
  -- What a kill left: the endpoint and compartment are deleted; a network
  -- left (half made or half deleted) must work for its next user, then goes.
  if net.endpoint.inspect("ce") then assert(net.endpoint.delete("ce")) end
  if net.namespace.inspect("cc") then assert(net.namespace.delete("cc")) end
  if net.network.inspect("cn") then
    use_network()
    assert(net.network.delete("cn"))
  end
else
  assert(net.network.create { Name = "cn", Type = "NAT", Subnet = "10.181.0.0/24" })
  use_network()
  assert(net.network.delete("cn"))
end
]]

describe("crash consistency of networks and endpoints #root", function()
  local id = tostring(os.time() % 100000) .. tostring(math.random(1000, 9999))
  local HOST = "hcs-test-crnet-" .. id
  local dir, root, script

  local function in_host(cmd) return ("nsenter --net=/run/netns/%s %s"):format(HOST, cmd) end
  local function sh(cmd)
    local ok, code, out, err = u.run(cmd)
    assert(ok, ("command failed (%s): %s\n%s%s"):format(tostring(code), cmd, out, err))
    return out
  end

  setup(function()
    dir = u.tmpdir()
    root = dir .. "/root"
    script = dir .. "/cycle.lua"
    u.write_file(script, CYCLE)
    sh("ip netns add " .. HOST)
    sh(("ip -n %s link set lo up"):format(HOST))
  end)

  teardown(function()
    u.run("ip netns del " .. HOST)
    u.rmtree(dir)
  end)

  it("opens, lists and finishes or undoes the cycle after a kill at any point, leaving nothing", function()
    local hcs = in_host(("%s --root %s"):format(u.quote(u.hcs_bin), u.quote(root)))
    local labels = {}
    local points = crash.each_point {
      root = root,
      -- The recovery runs unarmed, so the armed cycle always starts from a
      -- clean store and each of its points is a kill once.
      command = function()
        return ("sh -c %s"):format(u.quote(("env -u HCS_CRASH_AT %s %s recover && exec %s %s run"):format(hcs,
          u.quote(script), hcs, u.quote(script))))
      end,
      check = function(n, label)
        labels[#labels + 1] = label
        for _, what in ipairs({ "network", "endpoint", "compartment" }) do
          sh(("%s %s ls --json"):format(hcs, what))
        end
      end,
      done = function()
        assert.falsy(sh(("ip -n %s -o link show"):format(HOST)):find(": [hv][ch]", 1))
        assert.are.equal("", sh(in_host("nft list tables")))
        -- Nothing but the store's lock: no document, lease, marker or netns.
        -- (The event journal stays: it is the run root's history.)
        assert.are.equal("", sh(("find %s/net %s/run -type f ! -name lock ! -path '*/run/events/*'"):format(root, root)))
        assert.same({}, crash.mounts_under(root))
      end,
    }
    -- every point of the cycle was a kill once: network create and delete,
    -- compartment create and delete, endpoint create and delete
    assert.is_true(points >= 20, "only " .. points .. " crash points")
    assert.are.equal(points, #labels)
    local all = table.concat(labels, "\n")
    for _, label in ipairs({ "network: bridge made", "network create: policies added", "endpoint create: lease claimed",
      "endpoint attach: plumbed", "endpoint delete: unplugged", "network delete: policies removed",
      "network delete: bridge removed", "namespace delete: netns removed" }) do
      assert.truthy(all:find(label, 1, true), "never killed at " .. label)
    end
  end)
end)
