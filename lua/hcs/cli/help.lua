--- `hcs help [COMMAND]`: list the commands, or show one command's help.
local cli = require "hcs.cli"

return {
  summary = "list commands, or show the help of one",
  usage = "hcs help [COMMAND [SUBCOMMAND]]",
  max_args = 2,
  run = function(_, args)
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
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Run 'hcs COMMAND --help' for a command's options."
    print(table.concat(lines, "\n"))
    return 0
  end,
}
