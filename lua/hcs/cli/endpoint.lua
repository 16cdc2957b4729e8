--- `hcs endpoint create|ls|inspect|rm|attach|detach`: HNS endpoints.
local cli = require "hcs.cli"
local net = require "hcs.net"

local json_opt = { kind = "flag", short = "j", help = "print JSON" }

local function addr(e)
  local c = e.IpConfigurations and e.IpConfigurations[1]
  return c and (c.IpAddress .. "/" .. tostring(c.PrefixLength)) or ""
end

local function ports(e)
  local t = {}
  for _, p in ipairs(e.Policies or {}) do
    if p.Type == "PortMapping" then
      local s = p.Settings
      t[#t + 1] = ("%s%d->%d/%s"):format(s.VIP and (s.VIP .. ":") or "", s.ExternalPort, s.InternalPort,
        tostring(s.Protocol or "TCP"):lower())
    end
  end
  return table.concat(t, ",")
end

return {
  summary = "manage endpoints (a veth into a compartment, address, DNS, port mappings)",
  subcommands = {
    create = {
      summary = "create an endpoint on a network",
      usage = "hcs endpoint create --network NET [--name NAME] [--ip IP] [--mac MAC] [--namespace NS] [-p [IP:]HOST:PORT[/udp]]...",
      options = {
        network = { kind = "string", short = "n", help = "network id or name" },
        name = { kind = "string", help = "endpoint name" },
        ip = { kind = "string", help = "address (default: from the network's IPAM)" },
        mac = { kind = "string", help = "MAC address (default: derived from the address)" },
        namespace = { kind = "string", help = "compartment id or netns path to attach to" },
        publish = { kind = "list", short = "p", help = "port mapping [ADDRESS:]HOSTPORT:PORT[/tcp|/udp]" },
        dns = { kind = "list", help = "DNS server (repeatable; default: the network's, else the host's)" },
        id = { kind = "string", help = "endpoint id (default: a new GUID)" },
        json = json_opt,
      },
      max_args = 0,
      run = function(opts)
        if not opts.network then cli.fail("--network is required") end
        local spec = { Name = opts.name, Id = opts.id, HostComputeNetwork = opts.network, MacAddress = opts.mac,
          HostComputeNamespace = opts.namespace }
        if opts.ip then spec.IpConfigurations = { { IpAddress = opts.ip } } end
        if #opts.dns > 0 then spec.Dns = { ServerList = opts.dns } end
        if #opts.publish > 0 then
          spec.Policies = {}
          for _, p in ipairs(opts.publish) do spec.Policies[#spec.Policies + 1] = cli.check(net.port_mapping(p)) end
        end
        local e = cli.check(net.endpoint.create(spec))
        cli.output(opts, e, function(v) print(v.Id) end)
      end,
    },
    ls = {
      summary = "list endpoints",
      usage = "hcs endpoint ls [--network NET] [--json|-q]",
      options = { json = json_opt, network = { kind = "string", short = "n", help = "only this network" },
        quiet = cli.quiet_option },
      max_args = 0,
      run = function(opts)
        local list = cli.check(net.endpoint.list({ network = opts.network }))
        table.sort(list, function(a, b) return a.Name < b.Name end)
        cli.output(opts, list, function(rows)
          cli.print_table({
            { key = "Id", title = "ID" }, { key = "Name", title = "NAME" },
            { key = "HostComputeNetwork", title = "NETWORK" }, { key = addr, title = "ADDRESS" },
            { key = "MacAddress", title = "MAC" }, { key = "HostComputeNamespace", title = "COMPARTMENT" },
            { key = ports, title = "PORTS" },
          }, rows)
        end, "Id")
      end,
    },
    inspect = {
      summary = "show an endpoint document",
      usage = "hcs endpoint inspect ENDPOINT",
      options = { json = json_opt },
      min_args = 1, max_args = 1,
      run = function(_, args) cli.print_json(cli.check(net.endpoint.inspect(args[1]))) end,
    },
    rm = {
      summary = "delete endpoints",
      usage = "hcs endpoint rm ENDPOINT...",
      min_args = 1,
      run = function(_, args)
        for _, ref in ipairs(args) do cli.check(net.endpoint.delete(ref)) end
      end,
    },
    attach = {
      summary = "plug an endpoint into a compartment",
      usage = "hcs endpoint attach ENDPOINT COMPARTMENT",
      options = { json = json_opt },
      min_args = 2, max_args = 2,
      run = function(opts, args)
        local e = cli.check(net.endpoint.attach(args[1], args[2]))
        cli.output(opts, e, function() end)
      end,
    },
    detach = {
      summary = "unplug an endpoint from its compartment",
      usage = "hcs endpoint detach ENDPOINT",
      options = { json = json_opt },
      min_args = 1, max_args = 1,
      run = function(opts, args)
        local e = cli.check(net.endpoint.detach(args[1]))
        cli.output(opts, e, function() end)
      end,
    },
  },
}
