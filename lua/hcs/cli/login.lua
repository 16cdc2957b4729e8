--- `hcs login REGISTRY`: check credentials and store them in the containers
-- auth file ($XDG_RUNTIME_DIR/containers/auth.json, mode 0600), where
-- podman, buildah and skopeo find them too.
local cli = require "hcs.cli"
local hcs = require "hcs"
local rc = require "hcs.util.registry_cli"

local options = {
  username = { kind = "string", short = "u", help = "user name (default: asked)" },
  password = { kind = "string", short = "p", help = "password (prefer --password-stdin)" },
  ["password-stdin"] = { kind = "flag", help = "read the password from stdin" },
}
for k, v in pairs(rc.options) do if k ~= "creds" then options[k] = v end end

local function ask(prompt, secret)
  io.stderr:write(prompt)
  io.stderr:flush()
  local tty = secret and os.execute("[ -t 0 ]") == true
  if tty then os.execute("stty -echo") end
  local line = io.stdin:read("l")
  if tty then
    os.execute("stty echo")
    io.stderr:write("\n")
  end
  return line
end

return {
  summary = "log in to a registry (credentials kept in the containers auth file)",
  usage = "hcs login REGISTRY [-u USER] [-p PASSWORD | --password-stdin]",
  options = options,
  min_args = 1,
  max_args = 1,
  run = function(opts, args)
    local user = opts.username or ask("Username: ")
    local pass = opts.password
    if opts["password-stdin"] then
      pass = io.stdin:read("a"):gsub("\r?\n$", "")
    elseif not pass then
      pass = ask("Password: ", true)
    end
    if not user or user == "" or not pass then cli.fail("a user name and a password are required") end
    cli.check(hcs.registry.login(args[1], user, pass, rc.opts(opts)))
    print("Login Succeeded")
  end,
}
