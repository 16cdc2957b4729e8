--- `hcs commit NAME --name REPO[:TAG]`: capture a realized system as a new image.
local cli = require "hcs.cli"
local hcs = require "hcs"

return {
  summary = "capture a realized system's changes as a new image (New-ContainerImage)",
  usage = "hcs commit SYSTEM --name NAME[:TAG] [--version V] [--publisher P] [--cmd CMD] [--stop | --pause=false] [--json]",
  options = {
    name = { kind = "string", short = "n", help = "image name, optionally with its tag: repo:tag (required)" },
    version = { kind = "string", help = "image version (tag), default latest" },
    publisher = { kind = "string", help = "publisher" },
    cmd = { kind = "string", help = "default command, run by /bin/sh -c" },
    stop = { kind = "flag", help = "stop the system and move its changes (no copy); destroy it afterwards" },
    pause = { kind = "string", metavar = "BOOL", help = "pause a running system while copying its changes (default true)" },
    ["no-pause"] = { kind = "flag", help = "same as --pause=false" },
    json = { kind = "flag", short = "j", help = "print JSON" },
  },
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    if not opts.name then cli.fail("--name is required") end
    require "hcs.cli.image" -- defines cli.split_image_ref
    local name, tag = cli.split_image_ref(opts.name)
    if tag and opts.version and opts.version ~= tag then
      cli.fail("--name %s already has the tag %s: drop --version %s", opts.name, tag, opts.version)
    end
    local pause = true
    if opts["no-pause"] or opts.pause == "false" or opts.pause == "0" or opts.pause == "no" then
      pause = false
    elseif opts.pause ~= nil and opts.pause ~= "true" and opts.pause ~= "1" and opts.pause ~= "yes" then
      cli.fail("--pause expects true or false, got '%s'", opts.pause)
    end
    local ok, sys = pcall(hcs.workflow.open, args[1])
    if not ok then cli.fail("%s", tostring(sys)) end
    local config = opts.cmd and { Cmd = { "/bin/sh", "-c", opts.cmd } } or nil
    local bar = require("hcs.util.progress").new { label = "capture", enabled = (not opts.json) and nil or false }
    local ok2, img = pcall(hcs.workflow.capture, sys, { name = name, version = tag or opts.version,
      publisher = opts.publisher, config = config, progress = bar:callback(), stop = opts.stop,
      pause = pause })
    bar:finish()
    if not ok2 then cli.fail("%s", tostring(img)) end
    cli.output(opts, img, function(i) print(("%s:%s %s"):format(i.Name, i.Version, i.Id:sub(1, 12))) end)
  end,
}
