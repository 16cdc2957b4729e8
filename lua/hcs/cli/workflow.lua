--- `hcs workflow ls|run`: user workflows found on $HCS_WORKFLOW_PATH.
local cli = require "hcs.cli"
local hcs = require "hcs"

return {
  summary = "list and run user workflows ($HCS_WORKFLOW_PATH)",
  subcommands = {
    ls = {
      summary = "list user workflows",
      usage = "hcs workflow ls [-q]",
      options = { quiet = cli.quiet_option },
      max_args = 0,
      run = function(opts)
        for _, name in ipairs(hcs.workflow.list()) do
          if opts.quiet then
            print(name)
          else
            local def = hcs.workflow.load(name)
            print(("%-20s %s"):format(name, def and def.description or "(does not load)"))
          end
        end
      end,
    },
    run = {
      summary = "run a user workflow with arguments",
      usage = "hcs workflow run NAME [ARGS...]",
      min_args = 1,
      run = function(_, args)
        local def, err = hcs.workflow.load(args[1])
        if not def then cli.fail("%s", err) end
        local ok, status = pcall(def.run, hcs.workflow, table.unpack(args, 2))
        if not ok then cli.fail("%s", tostring(status)) end
        return math.type(status) == "integer" and status or 0
      end,
    },
  },
}
