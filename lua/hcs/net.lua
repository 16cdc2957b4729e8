--- hcs.net: networks, endpoints and compartments (network namespaces), the
-- HNS model.  Documents are HCN-shaped tables:
--   hcs.net.network.create{ Name = "nat", Type = "NAT",
--     Ipams = { { Subnets = { { IpAddressPrefix = "10.0.0.0/24" } } } } }
--   hcs.net.namespace.create{ ContainerId = "web" }
--   hcs.net.endpoint.create{ HostComputeNetwork = "nat", HostComputeNamespace = ns.Id,
--     Policies = { { Type = "PortMapping", Settings = { InternalPort = 80, ExternalPort = 8080 } } } }
-- Every function takes an optional last `opts` table ({ root = DIR }) and
-- returns the document, or nil, message, errno.
local core = require("hcs.core").net

local M = { network = {}, endpoint = {}, namespace = {} }
M.compartment = M.namespace

local stores = {}

--- The store handle for a root (cached; root nil = $HCS_ROOT or /var/lib/hcs).
function M.open(root)
  local key = root or ""
  local s = stores[key]
  if s then return s end
  local h, msg, code = core.open(root)
  if not h then return nil, msg, code end
  stores[key] = h
  return h
end

local function with_store(opts, fn, ...)
  local s, msg, code = M.open(opts and opts.root)
  if not s then return nil, msg, code end
  return fn(s, ...)
end

-- Conveniences accepted besides the HCN shape: Subnet = "10.0.0.0/24",
-- Gateway = "10.0.0.1" (becomes the default route of the subnet).
local function normalize_network(spec)
  if type(spec) ~= "table" or (spec.Subnet == nil and spec.Gateway == nil) then return spec end
  local t = {}
  for k, v in pairs(spec) do t[k] = v end
  local subnet = { IpAddressPrefix = t.Subnet }
  if t.Gateway then subnet.Routes = { { NextHop = t.Gateway, DestinationPrefix = "0.0.0.0/0" } } end
  t.Ipams = { { Type = "Static", Subnets = { subnet } } }
  t.Subnet, t.Gateway = nil, nil
  return t
end

function M.network.create(spec, opts)
  return with_store(opts, function(s) return s:network_create(normalize_network(spec)) end)
end
--- The name of the default network (HNS's and Docker for Windows' `nat`).
M.DEFAULT_NETWORK = "nat"

--- The default NAT network, created on first use with a subnet picked clear
-- of the host's routes and the other networks (the network `hcs run -p`
-- uses without --network).  Returns its document, or nil, message, errno.
function M.default_network(opts)
  local name = M.DEFAULT_NETWORK
  local n, msg, code = M.network.inspect(name, opts)
  if not n then
    n, msg, code = M.network.create({ Name = name, Type = "NAT" }, opts)
    -- Another process may have made it in between: use that one.
    if not n then
      local other = M.network.inspect(name, opts)
      if not other then return nil, msg, code end
      n = other
    end
  end
  if n.Type ~= "NAT" then
    return nil, ("default network `%s` is a %s network; port mappings need NAT (give a network)"):format(name,
      tostring(n.Type))
  end
  return n
end

function M.network.list(opts) return with_store(opts, function(s) return s:network_list() end) end
function M.network.inspect(ref, opts) return with_store(opts, function(s) return s:network_query(ref) end) end
M.network.query = M.network.inspect
function M.network.modify(ref, request, opts)
  return with_store(opts, function(s) return s:network_modify(ref, request) end)
end
function M.network.delete(ref, opts)
  return with_store(opts, function(s) return s:network_delete(ref, opts and opts.force) end)
end

function M.endpoint.create(spec, opts) return with_store(opts, function(s) return s:endpoint_create(spec) end) end
function M.endpoint.list(opts)
  return with_store(opts, function(s) return s:endpoint_list(opts and opts.network) end)
end
function M.endpoint.inspect(ref, opts) return with_store(opts, function(s) return s:endpoint_query(ref) end) end
M.endpoint.query = M.endpoint.inspect
function M.endpoint.modify(ref, request, opts)
  return with_store(opts, function(s) return s:endpoint_modify(ref, request) end)
end
function M.endpoint.delete(ref, opts) return with_store(opts, function(s) return s:endpoint_delete(ref) end) end
function M.endpoint.attach(ref, ns, opts)
  return with_store(opts, function(s) return s:endpoint_attach(ref, ns) end)
end
function M.endpoint.detach(ref, opts) return with_store(opts, function(s) return s:endpoint_detach(ref) end) end

--- Port mappings as PortMapping policies: "8080:80", "8080:80/udp",
-- "127.0.0.1:8080:80/tcp" (host address, host port, container port).
function M.port_mapping(text)
  local vip, ext, int, proto = text:match("^([%d%.]+):(%d+):(%d+)/?(%a*)$")
  if not vip then ext, int, proto = text:match("^(%d+):(%d+)/?(%a*)$") end
  if not ext then return nil, ("port mapping '%s': expected [ADDRESS:]HOSTPORT:PORT[/tcp|/udp]"):format(text) end
  local settings = { Protocol = (proto ~= "" and proto or "tcp"):upper(), ExternalPort = tonumber(ext),
    InternalPort = tonumber(int), VIP = vip }
  return { Type = "PortMapping", Settings = settings }
end

function M.namespace.create(spec, opts)
  return with_store(opts, function(s) return s:namespace_create(spec) end)
end
function M.namespace.list(opts)
  return with_store(opts, function(s) return s:namespace_list(opts and opts.details) end)
end
function M.namespace.inspect(id, opts)
  return with_store(opts, function(s) return s:namespace_query(id, opts and opts.details) end)
end
M.namespace.query = M.namespace.inspect
function M.namespace.delete(id, opts) return with_store(opts, function(s) return s:namespace_delete(id) end) end
function M.namespace.path(id, opts) return with_store(opts, function(s) return s:namespace_path(id) end) end

function M.reconcile(opts) return with_store(opts, function(s) return s:reconcile() end) end

return M
