--- Registry parts of the CLI: `hcs image pull/install/find/push`, `save
-- --from-registry`, `hcs login/logout`, `hcs run --pull`: the shared
-- options, the multi-layer progress display, and the subcommands.
local cli = require "hcs.cli"
local hcs = require "hcs"
local progress = require "hcs.util.progress"

local M = {}

--- Options every registry command takes.
M.options = {
  ["tls-verify"] = { kind = "string", metavar = "BOOL", help = "verify TLS (default true; false also allows plain HTTP)" },
  ["cert-dir"] = { kind = "string", metavar = "DIR", help = "per-registry CAs: DIR/HOST:PORT/*.crt (default /etc/containers/certs.d)" },
  authfile = { kind = "string", metavar = "FILE", help = "credentials file (default $XDG_RUNTIME_DIR/containers/auth.json)" },
  creds = { kind = "string", metavar = "USER:PASS", help = "credentials for this command" },
  timeout = { kind = "number", metavar = "S", help = "fail a transfer after S seconds without data (default 30)" },
}

local function merge(into, from)
  for k, v in pairs(from) do into[k] = v end
  return into
end

--- Registry options (for hcs.registry) from parsed command-line options.
function M.opts(o)
  local t = { auth_file = o.authfile, certs_dir = o["cert-dir"], platform = o.platform,
    parallel = o.parallel and math.tointeger(o.parallel), timeout = o.timeout and math.tointeger(o.timeout),
    compression = o.compression }
  local tv = o["tls-verify"]
  if tv ~= nil then
    if tv == "true" then t.tls_verify = true elseif tv == "false" then t.tls_verify = false
    else cli.fail("--tls-verify expects true or false, got '%s'", tv) end
  end
  if o.creds then
    local user, pass = o.creds:match("^([^:]+):(.*)$")
    if not user then cli.fail("--creds expects USER:PASSWORD") end
    t.username, t.password = user, pass
  end
  local rate = os.getenv("HCS_REGISTRY_MAX_RATE") -- bytes/s per transfer (tests, slow links)
  if rate then t.max_rate = math.tointeger(tonumber(rate)) end
  return t
end

--- A multi-layer progress display on stderr: one line per layer and a
-- total with its rate; drawn only on a terminal.
function M.display(label, enabled)
  if enabled == nil then enabled = progress.stderr_is_tty() end
  local clock = hcs.core.layer and hcs.core.layer.now or os.time
  local start, lines = clock(), 0
  local d = {}
  function d.callback(layers)
    if not enabled then return end
    local out, done, total = {}, 0, 0
    for _, l in ipairs(layers) do
      done, total = done + l.done, total + l.total
      local pct = l.total > 0 and math.floor(100 * l.done / l.total) or 100
      out[#out + 1] = ("%s %-12s %3d%% %s / %s"):format(l.digest:gsub("^sha256:", ""):sub(1, 12), l.state, pct,
        progress.human(l.done), progress.human(l.total))
    end
    local rate = done / math.max(clock() - start, 1e-3)
    out[#out + 1] = ("%s: %s / %s, %s/s"):format(label, progress.human(done), progress.human(total),
      progress.human(rate))
    local s = lines > 0 and ("\27[%dA"):format(lines) or ""
    io.stderr:write(s, "\r", table.concat(out, "\27[K\n"), "\27[K\n")
    io.stderr:flush()
    lines = #out
  end
  return d
end

--- false with --quiet or --json, else nil (drawn when stderr is a terminal).
function M.display_enabled(opts)
  if opts.quiet or opts.json then return false end
  return nil
end

local function platform_option() return { kind = "string", metavar = "OS/ARCH[/VARIANT]", help = "the platform to pick from an index (default: this host)" } end

local function print_pulled(opts, img)
  cli.output(opts, img, function(i)
    print(("%s:%s  %s"):format(i.Name, i.Version, i.Id:sub(1, 12)))
    for _, rd in ipairs(i.RepoDigests or {}) do print("  " .. rd) end
  end)
end

local pull = {
  summary = "download an image from a registry into the store (Install-ContainerImage)",
  usage = "hcs image pull [REGISTRY/]NAME[:TAG|@DIGEST] [--platform P] [--parallel N] [--name N] [--tag T] [--json]",
  options = merge({
    platform = platform_option(),
    parallel = { kind = "number", metavar = "N", help = "layers downloaded at once (default 4)" },
    name = { kind = "string", help = "local name (default: REGISTRY/NAME)" },
    tag = { kind = "string", help = "local tag (default: the reference's)" },
    quiet = { kind = "flag", short = "q", help = "no progress display" },
    json = { kind = "flag", short = "j", help = "print JSON" },
  }, M.options),
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local o = M.opts(opts)
    o.name, o.tag = opts.name, opts.tag
    local d = M.display("pull " .. args[1], M.display_enabled(opts))
    o.progress = d.callback
    print_pulled(opts, cli.check(hcs.registry.pull(args[1], o)))
  end,
}

local install = {}
for k, v in pairs(pull) do install[k] = v end
install.summary = "Install-ContainerImage: the same as `hcs image pull`"
install.usage = pull.usage:gsub("image pull", "image install")

local find = {
  summary = "list a registry's repositories and tags (Find-ContainerImage)",
  usage = "hcs image find [REGISTRY/]PATTERN [--json]",
  description = "PATTERN is a glob (*, ?, [...]) or a substring of the repository path; REGISTRY/ alone lists all.",
  options = merge({ json = { kind = "flag", short = "j", help = "print JSON" } }, M.options),
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local list = cli.check(hcs.registry.find(args[1], M.opts(opts)))
    cli.output(opts, list, function(l)
      cli.print_table({
        { key = function(r) return r.Registry .. "/" .. r.Name end, title = "NAME" },
        { key = function(r) return table.concat(r.Tags, ", ") end, title = "TAGS" },
      }, l)
    end)
  end,
}

local push = {
  summary = "push an image to a registry; prints the manifest digest",
  usage = "hcs image push IMAGE [REGISTRY/]NAME[:TAG] [--compression gzip|zstd] [--parallel N]",
  options = merge({
    compression = { kind = "string", help = "layer compression: gzip (default) or zstd" },
    parallel = { kind = "number", metavar = "N", help = "layers uploaded at once (default 4)" },
    quiet = { kind = "flag", short = "q", help = "no progress display" },
    json = { kind = "flag", short = "j", help = "print JSON" },
  }, M.options),
  min_args = 2,
  max_args = 2,
  run = function(opts, args)
    local o = M.opts(opts)
    if o.compression and o.compression ~= "gzip" and o.compression ~= "zstd" then
      cli.fail("--compression expects gzip or zstd, got '%s'", o.compression)
    end
    local d = M.display("push " .. args[2], M.display_enabled(opts))
    o.progress = d.callback
    local digest = cli.check(hcs.registry.push(args[1], args[2], o))
    cli.output(opts, { Digest = digest, Reference = args[2] }, function() print(digest) end)
  end,
}

--- Add the registry subcommands to `hcs image`, and --from-registry to save.
function M.extend(subcommands)
  subcommands.pull, subcommands.install, subcommands.find, subcommands.push = pull, install, find, push
  local save = subcommands.save
  if not save then return end
  local run = save.run
  save.options = merge(merge({}, save.options), M.options)
  save.options["from-registry"] = { kind = "flag", help = "IMAGE is a registry reference: download it, do not install" }
  save.options.platform = platform_option()
  save.usage = save.usage .. "\n       hcs image save --from-registry REGISTRY/NAME[:TAG] -o FILE [--platform P]"
  save.run = function(opts, args)
    if not opts["from-registry"] then return run(opts, args) end
    if not opts.output then cli.fail("-o FILE is required") end
    if #args ~= 1 then cli.fail("--from-registry takes one reference") end
    cli.check(hcs.registry.download(args[1], opts.output, M.opts(opts)))
  end
end

--- The `pull` option of `hcs run` / `hcs plan create`.
M.pull_option = { kind = "string", metavar = "POLICY", help = "pull the image: missing (default), always, never" }

return M
