--- `hcs help [COMMAND]`: list the commands, or show one command's help.
local cli = require "hcs.cli"

return {
  summary = "list commands, or show the help of one",
  usage = "hcs help [COMMAND [SUBCOMMAND]] | --man DIR | --completion bash",
  description = "--man writes the man pages (hcs.1, hcs-COMMAND.1) and --completion prints the bash\n" ..
    "completion script, both generated from the same definitions as this help.",
  options = {
    man = { kind = "string", metavar = "DIR", help = "write the man pages into DIR" },
    completion = { kind = "string", metavar = "SHELL", help = "print the completion script for SHELL (bash)" },
    output = { kind = "string", short = "o", metavar = "FILE", help = "with --completion: write it to FILE" },
  },
  max_args = 2,
  run = function(opts, args)
    if opts.man then
      local lfs = require "lfs"
      if lfs.attributes(opts.man, "mode") ~= "directory" then
        cli.fail("--man %s: not a directory", require("hcs.util.args").show(opts.man))
      end
      local ok, written = pcall(require("hcs.util.docgen").write_man, opts.man, require("hcs").version)
      if not ok then cli.fail("write the man pages: %s", cli.message(written)) end
      return 0
    end
    if opts.completion then
      if opts.completion ~= "bash" then
        cli.fail("--completion %s: only bash is supported", require("hcs.util.args").show(opts.completion))
      end
      local text = require("hcs.util.docgen").bash_completion()
      if not opts.output then
        io.stdout:write(text)
        return 0
      end
      -- temp + rename: a build never installs half a script
      local tmp = opts.output .. ".tmp"
      local f = cli.check(io.open(tmp, "w"))
      f:write(text)
      f:close()
      cli.check(os.rename(tmp, opts.output))
      return 0
    end
    if args[1] and cli.ALIASES[args[1]] then
      local alias = cli.ALIASES[args[1]]
      args = { alias[1], alias[2] }
    end
    if args[1] then
      local cmd = cli.load(args[1])
      if not cmd then cli.fail("unknown command '%s'", args[1]) end
      local path = args[1]
      if args[2] then
        cmd = cmd.subcommands and cmd.subcommands[args[2]]
        if not cmd then cli.fail("unknown subcommand '%s %s'", args[1], args[2]) end
        path = path .. " " .. args[2]
      end
      io.stdout:write(cli.command_help(path, cmd))
      return 0
    end
    local lines = {
      "usage: hcs [options] [script.lua [args]]   run a Lua script (workflows use require \"hcs\")",
      "       hcs COMMAND [args]                  run a command",
      "       hcs                                 interactive REPL (on a terminal)",
      "",
      "commands:",
    }
    for _, name in ipairs(cli.commands()) do
      local ok, cmd = pcall(cli.load, name)
      local summary = ok and cmd and cmd.summary or (ok and "" or "(fails to load: " .. tostring(cmd) .. ")")
      lines[#lines + 1] = ("  %-12s %s"):format(name, summary)
    end
    local aliases = {}
    for k, v in pairs(cli.ALIASES) do aliases[#aliases + 1] = ("%s (%s)"):format(k, table.concat(v, " ")) end
    table.sort(aliases)
    lines[#lines + 1] = ""
    lines[#lines + 1] = "docker's spellings: " .. table.concat(aliases, ", ")
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Run 'hcs COMMAND --help' for a command's options."
    print(table.concat(lines, "\n"))
    return 0
  end,
}
