--- `hcs layer ...`: the layer store from the command line.
local cli = require "hcs.cli"
-- the layer facade alone, not the `hcs` module over all subsystems: this
-- file is loaded by every `hcs layer activate` and `deactivate`
local layer = require "hcs.layer"
-- loaded on first use: activate/deactivate (the hot path) never draw one
local progress = setmetatable({}, { __index = function(t, k)
  local m = require "hcs.util.progress"
  setmetatable(t, { __index = m })
  return m[k]
end })
local args_util = require "hcs.util.args"

local function common(extra)
  local o = {
    root = { kind = "string", metavar = "DIR", help = "hcs state root (default $HCS_ROOT or /var/lib/hcs)" },
    json = { kind = "flag", short = "j", help = "print JSON" },
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function store(opts)
  return cli.check(layer.open(opts.root))
end

local function short(id)
  return #id > 16 and id:sub(1, 12) or id
end

local function ok(opts, v, text)
  cli.output(opts, v, function() if text then print(text) end end)
  return 0
end

-- "4T", "512G", "100M", "64K", "12345" (bytes) or "none" -> bytes or "none"
local function size_arg(s, option)
  if s == nil then return nil end
  if s == "none" then return s end
  local n, unit = s:match("^(%d+)([KMGTP]?)i?B?$")
  local shift = { [""] = 0, K = 10, M = 20, G = 30, T = 40, P = 50 }
  local v = n and math.tointeger(tonumber(n))
  if not v or v >= (1 << (63 - shift[unit])) then
    args_util.usage_error("option '--%s': '%s' is not a size (bytes, or with K, M, G, T, P; or none)", option, s)
  end
  return v << shift[unit]
end

local import = {
  summary = "import an OCI layer tar (plain, gzip or zstd) as a read-only layer",
  usage = "hcs layer import [--id ID] [--parent ID]... [--diff-id sha256:...] [--max-size SIZE] [--max-file-size SIZE]"
    .. " FILE|-",
  options = common {
    id = { kind = "string", help = "layer id (default: the chain id of the layer)" },
    parent = { kind = "list", short = "p", metavar = "ID", help = "parent layer id, nearest first (repeat)" },
    ["diff-id"] = { kind = "string", metavar = "DIGEST", help = "verify the diff id" },
    threads = { kind = "number", help = "file-writing threads (default: one per CPU; 1: none)" },
    ["max-size"] = { kind = "string", metavar = "SIZE",
      help = "refuse a layer whose files add up to more (holes included; default 4T; none: no cap)" },
    ["max-file-size"] = { kind = "string", metavar = "SIZE",
      help = "refuse a layer with a larger file (holes included; default 1T; none: no cap)" },
    quiet = { kind = "flag", short = "q", help = "no progress bar" },
  },
  min_args = 1, max_args = 1,
  run = function(opts, args)
    local max_size = size_arg(opts["max-size"], "max-size")
    local max_file_size = size_arg(opts["max-file-size"], "max-file-size")
    local s <close> = store(opts)
    local bar = progress.new { label = "import", enabled = not opts.quiet and progress.stderr_is_tty() }
    local l, err = s:import(args[1], {
      id = opts.id, parents = opts.parent, expect_diff_id = opts["diff-id"], progress = bar:callback(),
      threads = opts.threads and math.tointeger(opts.threads), max_size = max_size, max_file_size = max_file_size,
    })
    bar:finish()
    cli.check(l, err)
    return ok(opts, l, l.Id)
  end,
}

local export = {
  summary = "export a layer as an OCI layer tar",
  usage = "hcs layer export [--compression gzip|zstd|none] [--level N] [--mtime EPOCH] ID FILE|-",
  options = common {
    compression = { kind = "string", short = "c", default = "gzip", help = "gzip (default), zstd or none" },
    level = { kind = "number", help = "compression level: gzip 1-2 ISA-L, 3-12 libdeflate (default 1); zstd 1-22 (default 3)" },
    mtime = { kind = "number", metavar = "EPOCH", help = "give every entry this mtime (reproducible output)" },
    threads = { kind = "number", help = "compression threads (default: one per CPU)" },
    quiet = { kind = "flag", short = "q", help = "no progress bar" },
  },
  min_args = 2, max_args = 2,
  run = function(opts, args)
    local valid = { gzip = true, zstd = true, none = true }
    if not valid[opts.compression] then
      require("hcs.util.args").usage_error("--compression must be gzip, zstd or none, not '%s'", opts.compression)
    end
    if opts.level and not math.tointeger(opts.level) then
      require("hcs.util.args").usage_error("--level must be an integer, not '%s'", opts.level)
    end
    local s <close> = store(opts)
    local bar = progress.new { label = "export",
      enabled = not opts.quiet and args[2] ~= "-" and progress.stderr_is_tty() }
    local r, err = s:export(args[1], args[2], {
      compression = opts.compression, level = opts.level and math.tointeger(opts.level),
      mtime = opts.mtime and math.tointeger(opts.mtime), threads = opts.threads and math.tointeger(opts.threads),
      progress = bar:callback(),
    })
    bar:finish()
    cli.check(r, err)
    if args[2] == "-" then
      io.stderr:write(("%s %s\n"):format(r.Digest, r.DiffID))
      return 0
    end
    cli.output(opts, r, function()
      print(("digest   %s\ndiff id  %s\nsize     %d (%s uncompressed)"):format(r.Digest, r.DiffID, r.Size,
        progress.human(r.UncompressedSize)))
    end)
    return 0
  end,
}

local ls = {
  summary = "list layers",
  usage = "hcs layer ls [--json|-q]",
  options = common { quiet = cli.quiet_option },
  max_args = 0,
  run = function(opts)
    local s <close> = store(opts)
    local layers = cli.check(s:list())
    cli.output(opts, layers, function(v)
      cli.print_table({
        { key = function(r) return short(r.Id) end, title = "ID" },
        { key = "Kind", title = "KIND" },
        { key = function(r) return r.Size and progress.human(r.Size) or "" end, title = "SIZE" },
        { key = function(r) return #r.Parents end, title = "PARENTS" },
        { key = "RefCount", title = "REFS" },
        { key = function(r) return r.Active and (r.MountPath or "yes") or "" end, title = "MOUNTED" },
        { key = function(r) return (r.Created or ""):sub(1, 19) end, title = "CREATED" },
      }, v)
    end, "Id")
    return 0
  end,
}

local inspect = {
  summary = "show a layer's metadata (JSON)",
  usage = "hcs layer inspect ID",
  options = common(),
  min_args = 1, max_args = 1,
  run = function(opts, args)
    local s <close> = store(opts)
    cli.print_json(cli.check(s:inspect(args[1])))
    return 0
  end,
}

local rm = {
  summary = "destroy layers (refused while in use, activated or a parent)",
  usage = "hcs layer rm [--force] ID...",
  options = common { force = { kind = "flag", short = "f", help = "deactivate and ignore references" } },
  min_args = 1,
  run = function(opts, args)
    local s <close> = store(opts)
    local removed = {}
    for _, id in ipairs(args) do
      cli.check(s:destroy(id, opts.force))
      removed[#removed + 1] = id
    end
    return ok(opts, removed, table.concat(removed, "\n"))
  end,
}

local create_scratch = {
  summary = "create a scratch (writable) layer over parents",
  usage = "hcs layer create-scratch [--parent ID]... ID",
  options = common { parent = { kind = "list", short = "p", metavar = "ID", help = "parent layer id, nearest first" } },
  min_args = 1, max_args = 1,
  run = function(opts, args)
    local s <close> = store(opts)
    local l = cli.check(s:create_scratch(args[1], opts.parent))
    return ok(opts, l, l.Id)
  end,
}

local activate = {
  summary = "mount a layer and its chain (overlay)",
  usage = "hcs layer activate ID [MOUNT_PATH]",
  options = common(),
  min_args = 1, max_args = 2,
  run = function(opts, args)
    local s <close> = store(opts)
    local p = cli.check(s:activate(args[1], args[2]))
    return ok(opts, { Id = args[1], MountPath = p }, p)
  end,
}

local deactivate = {
  summary = "unmount a layer",
  usage = "hcs layer deactivate ID",
  options = common(),
  min_args = 1, max_args = 1,
  run = function(opts, args)
    local s <close> = store(opts)
    cli.check(s:deactivate(args[1]))
    return ok(opts, { Id = args[1] })
  end,
}

local mount_path = {
  summary = "print where an activated layer is mounted",
  usage = "hcs layer mount-path ID",
  options = common(),
  min_args = 1, max_args = 1,
  run = function(opts, args)
    local s <close> = store(opts)
    local p = cli.check(s:mount_path(args[1]))
    return ok(opts, { Id = args[1], MountPath = p }, p)
  end,
}

return {
  summary = "layers: import/export OCI layers, scratch layers, overlay activation",
  subcommands = {
    import = import,
    export = export,
    ls = ls,
    inspect = inspect,
    rm = rm,
    ["create-scratch"] = create_scratch,
    activate = activate,
    deactivate = deactivate,
    ["mount-path"] = mount_path,
  },
}
