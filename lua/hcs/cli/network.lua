--- `hcs network create|ls|inspect|rm`: HNS networks.
local cli = require "hcs.cli"
local net = require "hcs.net"

local function subnet_of(n)
  local ipam = n.Ipams and n.Ipams[1]
  local s = ipam and ipam.Subnets and ipam.Subnets[1]
  return s and s.IpAddressPrefix or ""
end

local json_opt = { kind = "flag", short = "j", help = "print JSON" }

return {
  summary = "manage networks (NAT, Transparent, L2Bridge, None)",
  subcommands = {
    create = {
      summary = "create a network",
      usage = "hcs network create [NAME] [--type NAT] [--subnet CIDR] [--gateway IP] [--adapter IF] [--file SPEC.json]",
      options = {
        name = { kind = "string", help = "network name" },
        type = { kind = "string", help = "NAT (default), Transparent, L2Bridge or None" },
        subnet = { kind = "string", help = "IPv4 subnet, e.g. 10.0.0.0/24 (NAT default: one picked clear of the host routes)" },
        gateway = { kind = "string", help = "gateway address (default: first address of the subnet)" },
        adapter = { kind = "string", help = "Transparent/L2Bridge: host interface to enslave, or an existing bridge" },
        dns = { kind = "list", help = "DNS server for endpoints (repeatable)" },
        ["nat-exception"] = { kind = "list", help = "NAT: destination prefix not masqueraded (repeatable)" },
        id = { kind = "string", help = "network id (default: a new GUID)" },
        file = { kind = "string", help = "a HostComputeNetwork JSON document ('-' for stdin)" },
        json = json_opt,
      },
      max_args = 1,
      run = function(opts, args)
        local spec
        if opts.file then
          local f = opts.file == "-" and io.stdin or cli.check(io.open(opts.file, "r"))
          spec = f:read("a")
          if f ~= io.stdin then f:close() end
        else
          spec = { Name = opts.name or args[1], Type = opts.type or "NAT", Id = opts.id, Subnet = opts.subnet,
            Gateway = opts.gateway, Policies = {} }
          -- Names as docker's: a letter or digit, then letters, digits, _ . -
          -- (no control bytes, no option-like or empty names on the host).
          if spec.Name and not (spec.Name:match("^[%w][%w_.-]*$") and #spec.Name <= 64) then
            cli.fail("invalid network name %s: use 1..64 characters of [A-Za-z0-9_.-], starting with a letter or digit",
              require("hcs.util.args").show(spec.Name))
          end
          if opts.adapter then
            table.insert(spec.Policies, { Type = "NetAdapterName", Settings = { NetworkAdapterName = opts.adapter } })
          end
          if #opts["nat-exception"] > 0 then
            table.insert(spec.Policies, { Type = "OutBoundNAT", Settings = { Exceptions = opts["nat-exception"] } })
          end
          if #spec.Policies == 0 then spec.Policies = nil end
          if #opts.dns > 0 then spec.Dns = { ServerList = opts.dns } end
          if not spec.Name then cli.fail("a network name is required (NAME or --name)") end
        end
        local n = cli.check(net.network.create(spec))
        cli.output(opts, n, function(v) print(v.Id) end)
      end,
    },
    ls = {
      summary = "list networks",
      usage = "hcs network ls [--json|-q]",
      options = { json = json_opt, quiet = cli.quiet_option },
      max_args = 0,
      run = function(opts)
        local list = cli.check(net.network.list())
        table.sort(list, function(a, b) return a.Name < b.Name end)
        cli.output(opts, list, function(rows)
          cli.print_table({
            { key = "Id", title = "ID" }, { key = "Name", title = "NAME" }, { key = "Type", title = "TYPE" },
            { key = subnet_of, title = "SUBNET" },
            { key = function(r) return r.Linux and r.Linux.Bridge or "" end, title = "BRIDGE" },
          }, rows)
        end, "Id")
      end,
    },
    inspect = {
      summary = "show a network document",
      usage = "hcs network inspect NETWORK",
      options = { json = json_opt },
      min_args = 1, max_args = 1,
      run = function(_, args) cli.print_json(cli.check(net.network.inspect(args[1]))) end,
    },
    rm = {
      summary = "delete networks",
      usage = "hcs network rm [--force] NETWORK...",
      options = { force = { kind = "flag", short = "f", help = "delete its endpoints too" } },
      min_args = 1,
      run = function(opts, args)
        for _, ref in ipairs(args) do cli.check(net.network.delete(ref, { force = opts.force })) end
      end,
    },
  },
}
