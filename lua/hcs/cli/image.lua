--- `hcs image ...`: the image store (Get/Install/Save/New/Remove-ContainerImage).
local cli = require "hcs.cli"
local hcs = require "hcs"

local json_flag = { kind = "flag", short = "j", help = "print JSON" }

local function open_store()
  return cli.check(hcs.image.open())
end

local progress = require "hcs.util.progress"

--- A progress bar on stderr (drawn only on a terminal); returns the bar and
-- its callback for the hcs call.
local function bar_for(label, quiet)
  local bar = progress.new { label = label, enabled = (not quiet) and nil or false }
  return bar, bar:callback()
end

local function short_id(id) return id:sub(1, 12) end

--- NAME[:TAG] -> name, tag (nil when absent); a colon before the last
-- slash is a registry port, not a tag.
local function split_ref(ref)
  local name, tag = ref:match("^(.*):([^:/]+)$")
  if name and name ~= "" then return name, tag end
  return ref, nil
end
cli.split_image_ref = split_ref

--- One row per tag, as docker's image ls (an untagged image: one row).
local function tag_rows(list)
  local rows = {}
  for _, img in ipairs(list) do
    local tags = img.Tags or {}
    if #tags == 0 then
      rows[#rows + 1] = setmetatable({ Name = "<none>", Version = "<none>" }, { __index = img })
    end
    for _, t in ipairs(tags) do
      local name, tag = split_ref(t)
      rows[#rows + 1] = setmetatable({ Name = name, Version = tag or "latest" }, { __index = img })
    end
  end
  table.sort(rows, function(a, b) return a.Name < b.Name or (a.Name == b.Name and a.Version < b.Version) end)
  return rows
end

local function print_images(list)
  cli.print_table({
    { key = "Name", title = "NAME" },
    { key = "Version", title = "TAG" },
    { key = "Publisher", title = "PUBLISHER" },
    { key = function(r) return r.IsOSImage and "True" or "False" end, title = "ISOSIMAGE" },
    { key = function(r) return short_id(r.Id) end, title = "ID" },
    { key = function(r) return progress.human(r.Size or 0) end, title = "SIZE" },
  }, list)
end

local subcommands = {}

subcommands.ls = {
  summary = "list images, one row per tag (Name, Tag, Publisher, IsOSImage)",
  usage = "hcs image ls [--json|-q]",
  options = { json = json_flag, quiet = cli.quiet_option },
  max_args = 0,
  run = function(opts)
    local store <close> = open_store()
    local list = cli.check(store:list())
    cli.output(opts, list, function(l) print_images(tag_rows(l)) end, "Id")
  end,
}

subcommands.inspect = {
  summary = "show an image's metadata and OCI configuration",
  usage = "hcs image inspect IMAGE",
  min_args = 1,
  max_args = 1,
  run = function(_, args)
    local store <close> = open_store()
    cli.print_json(cli.check(store:inspect(args[1])))
  end,
}

subcommands.import = {
  summary = "import an OCI layout (dir or tar) or a docker-archive",
  usage = "hcs image import PATH [--name NAME] [--tag TAG] [--publisher P] [--json]",
  options = {
    name = { kind = "string", help = "name the image (default: from the archive)" },
    tag = { kind = "string", help = "tag the image (default: from the archive)" },
    publisher = { kind = "string", help = "publisher (default: the vendor annotation)" },
    json = json_flag,
  },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local store <close> = open_store()
    local bar, cb = bar_for("import", opts.json)
    local imported = cli.check(store:import(args[1], {
      name = opts.name, tag = opts.tag, publisher = opts.publisher, progress = cb,
    }))
    bar:finish()
    cli.output(opts, imported, print_images)
  end,
}

subcommands["install-os"] = {
  summary = "install a rootfs tarball as an OS (base) image",
  usage = "hcs image install-os ROOTFS.tar[.gz|.zst] --name NAME [--version V] [--publisher P] [--cmd CMD]",
  options = {
    name = { kind = "string", help = "image name (required)" },
    version = { kind = "string", help = "version/tag (default latest)" },
    publisher = { kind = "string", help = "publisher" },
    cmd = { kind = "string", help = "default command, run by /bin/sh -c" },
    json = json_flag,
  },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    if not opts.name then cli.fail("--name is required") end
    local store <close> = open_store()
    local bar, cb = bar_for("install", opts.json)
    local config = opts.cmd and { Cmd = { "/bin/sh", "-c", opts.cmd } } or nil
    local id = cli.check(store:install_os(args[1], {
      name = opts.name, version = opts.version, publisher = opts.publisher, config = config, progress = cb,
    }))
    bar:finish()
    cli.output(opts, cli.check(store:inspect(id)), function(img) print_images({ img }) end)
  end,
}

subcommands.save = {
  summary = "save images to an OCI archive (Save-ContainerImage)",
  usage = "hcs image save IMAGE... -o FILE|- [--compression gzip|zstd|none]",
  options = {
    output = { kind = "string", short = "o", help = "the archive to write (required; - for standard output)" },
    compression = { kind = "string", help = "layer compression: gzip (default), zstd, none" },
  },
  min_args = 1,
  run = function(opts, args)
    if not opts.output then cli.fail("-o FILE is required") end
    local target = opts.output
    if target == "-" then
      -- `[ -t 1 ]` sees our standard output, as progress.lua asks about stderr.
      if os.execute("[ -t 1 ]") then cli.fail("refusing to write an archive to a terminal: redirect standard output") end
      target = io.stdout
    end
    local store <close> = open_store()
    local bar, cb = bar_for("save")
    cli.check(store:save(args, target, { compression = opts.compression, progress = cb }))
    bar:finish()
    if target == io.stdout then io.stdout:flush() end
  end,
}

subcommands.rm = {
  summary = "remove images (refused while in use, unless --force)",
  usage = "hcs image rm IMAGE... [--force]",
  options = { force = { kind = "flag", short = "f", help = "remove even if containers or images use it" } },
  min_args = 1,
  run = function(opts, args)
    local store <close> = open_store()
    for _, ref in ipairs(args) do cli.check(store:remove(ref, opts.force)) end
  end,
}

subcommands.prune = {
  summary = "remove the layers no image uses (what failed or killed imports and removals left)",
  usage = "hcs image prune [--dry-run] [--json]",
  options = {
    ["dry-run"] = { kind = "flag", help = "only list the layers that would be removed" },
    json = { kind = "flag", help = "print {Layers = [ids]} as JSON" },
  },
  max_args = 0,
  run = function(opts)
    local store <close> = open_store()
    local res = cli.check(store:prune { dry_run = opts["dry-run"] })
    cli.output(opts, res, function(r)
      for _, id in ipairs(r.Layers) do print(id) end
      io.stderr:write(("%s %d layer%s\n"):format(opts["dry-run"] and "would remove" or "removed", #r.Layers,
        #r.Layers == 1 and "" or "s"))
    end)
  end,
}
subcommands.gc = subcommands.prune

subcommands.tag = {
  summary = "add a name:tag to an image",
  usage = "hcs image tag IMAGE NAME[:TAG]",
  min_args = 2,
  max_args = 2,
  run = function(_, args)
    local store <close> = open_store()
    cli.check(store:tag(args[1], args[2]))
  end,
}

subcommands.untag = {
  summary = "remove a name:tag from an image",
  usage = "hcs image untag NAME[:TAG]",
  min_args = 1,
  max_args = 1,
  run = function(_, args)
    local store <close> = open_store()
    cli.check(store:untag(args[1]))
  end,
}

-- pull, install, find, push and save --from-registry (hcs.util.registry_cli)
require("hcs.util.registry_cli").extend(subcommands)

return {
  summary = "manage images: ls, inspect, import, install-os, save, rm, tag, prune, pull, push, find",
  usage = "hcs image SUBCOMMAND [options]",
  subcommands = subcommands,
}
