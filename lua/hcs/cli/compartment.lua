--- `hcs compartment create|ls|inspect|rm`: network compartments (named
-- network namespaces), the Get-NetCompartment / Get-NetRoute views.
local cli = require "hcs.cli"
local net = require "hcs.net"

local json_opt = { kind = "flag", short = "j", help = "print JSON" }

local function show(c, opts)
  print(("CompartmentId          : %s"):format(tostring(c.CompartmentId or "-")))
  print(("CompartmentDescription : \\%s"):format(c.Description))
  print(("Id                     : %s"):format(c.Id))
  print(("Path                   : %s"):format(c.Path))
  local eps = {}
  for _, r in ipairs(c.Resources or {}) do eps[#eps + 1] = r.Name or r.Id end
  print(("Endpoints              : %s"):format(table.concat(eps, ", ")))
  if opts.interfaces and c.Interfaces then
    print("")
    cli.print_table({
      { key = "InterfaceIndex", title = "ifIndex" }, { key = "InterfaceAlias", title = "InterfaceAlias" },
      { key = "MacAddress", title = "MacAddress" },
      { key = function(i) return i.Up and "Up" or "Down" end, title = "Status" },
      { key = function(i)
        local t = {}
        for _, a in ipairs(i.IpAddresses or {}) do t[#t + 1] = a.IpAddress .. "/" .. a.PrefixLength end
        return table.concat(t, ",")
      end, title = "IPAddress" },
    }, c.Interfaces)
  end
  if opts.routes and c.Routes then
    print("")
    cli.print_table({
      { key = "InterfaceIndex", title = "ifIndex" }, { key = "DestinationPrefix", title = "DestinationPrefix" },
      { key = "NextHop", title = "NextHop" }, { key = "RouteMetric", title = "RouteMetric" },
      { key = "InterfaceAlias", title = "InterfaceAlias" },
    }, c.Routes)
  end
  print("")
end

local view_opts = {
  json = json_opt,
  routes = { kind = "flag", short = "r", help = "show each compartment's routes (Get-NetRoute -CompartmentId)" },
  interfaces = { kind = "flag", short = "i", help = "show each compartment's interfaces and addresses" },
}

return {
  summary = "manage network compartments (named network namespaces)",
  subcommands = {
    create = {
      summary = "create a compartment",
      usage = "hcs compartment create [--id ID] [--container ID] [--json]",
      options = {
        id = { kind = "string", help = "compartment id (default: a new GUID)" },
        container = { kind = "string", help = "container id (description becomes Container_<id>)" },
        description = { kind = "string", help = "free-form description" },
        json = json_opt,
      },
      max_args = 0,
      run = function(opts)
        local c = cli.check(net.namespace.create({ Id = opts.id, ContainerId = opts.container,
          Description = opts.description }))
        cli.output(opts, c, function(v) print(v.Id) end)
      end,
    },
    ls = {
      summary = "list compartments (with --routes / --interfaces)",
      usage = "hcs compartment ls [--routes] [--interfaces] [--json|-q]",
      options = { json = view_opts.json, routes = view_opts.routes, interfaces = view_opts.interfaces,
        quiet = cli.quiet_option },
      max_args = 0,
      run = function(opts)
        local details = opts.routes or opts.interfaces or opts.json
        local list = cli.check(net.namespace.list({ details = details }))
        table.sort(list, function(a, b) return a.Id < b.Id end)
        if opts.json or opts.quiet then return cli.output(opts, list, nil, "Id") end
        if not details then
          return cli.print_table({
            { key = "Id", title = "ID" }, { key = "CompartmentId", title = "COMPARTMENT" },
            { key = "Description", title = "DESCRIPTION" },
            { key = function(c) return #(c.Resources or {}) end, title = "ENDPOINTS" },
          }, list)
        end
        for _, c in ipairs(list) do show(c, opts) end
      end,
    },
    inspect = {
      summary = "show one compartment with its interfaces and routes",
      usage = "hcs compartment inspect ID [--json]",
      options = view_opts,
      min_args = 1, max_args = 1,
      run = function(opts, args)
        local c = cli.check(net.namespace.inspect(args[1], { details = true }))
        if opts.json then return cli.print_json(c) end
        show(c, { routes = true, interfaces = true })
      end,
    },
    rm = {
      summary = "delete compartments (their endpoints are detached)",
      usage = "hcs compartment rm ID...",
      min_args = 1,
      run = function(_, args)
        for _, id in ipairs(args) do cli.check(net.namespace.delete(id)) end
      end,
    },
  },
}
