--- Helpers shared by the compute CLI commands (run, create, exec, ...).
local cli = require "hcs.cli"
local hcs = require "hcs"

local M = {}

--- Options common to `hcs run` and `hcs create`.
M.create_options = {
  rootfs = { kind = "string", metavar = "DIR", help = "root filesystem directory (an activated layer mount)" },
  name = { kind = "string", short = "n", help = "system id (default: random)" },
  memory = { kind = "number", short = "m", metavar = "MB", help = "memory limit in MB (Memory.SizeInMB)" },
  cpus = { kind = "number", metavar = "N", help = "processor count (Processor.Count)" },
  ["cpu-max"] = { kind = "number", metavar = "N", help = "processor maximum in 1/10000 of the host (Processor.Maximum)" },
  volume = { kind = "list", short = "v", metavar = "HOST:CTR[:ro]", help = "mapped directory (repeatable)" },
  env = { kind = "list", short = "e", metavar = "K=V", help = "environment variable (repeatable)" },
  user = { kind = "string", short = "u", help = "user (name or uid[:gid])" },
  workdir = { kind = "string", short = "w", metavar = "DIR", help = "working directory" },
  hostname = { kind = "string", help = "host name (default: the id)" },
  netns = { kind = "string", metavar = "ID|PATH", help = "network namespace to join (default: a new one)" },
  owner = { kind = "string", help = "Owner field (default hcs)" },
  ["cgroup-parent"] = { kind = "string", metavar = "PATH", help = "cgroup parent (default hcs)" },
  tty = { kind = "flag", short = "t", help = "give init a console (pty)" },
  json = { kind = "flag", short = "j", help = "print JSON" },
}

-- What only an image run takes (the workflow makes the network endpoint).
M.create_options.network = { kind = "string", help = "IMAGE runs only: attach to this network" }
M.create_options.publish = { kind = "list", short = "p", metavar = "[IP:]HOST:CTR[/udp]",
  help = "IMAGE runs only: port mapping (repeatable)" }
M.create_options.entrypoint = { kind = "string", metavar = "CMD",
  help = "IMAGE runs only: replace the image's Entrypoint ('' clears it)" }
M.create_options.pull = require("hcs.util.registry_cli").pull_option

--- Is a command-line word a path (./dir, ../dir, /dir, . or ..)?  Any
-- other word is an image reference, whatever the working directory holds.
function M.is_path(a)
  return a == "." or a == ".." or a:sub(1, 1) == "/" or a:sub(1, 2) == "./" or a:sub(1, 3) == "../"
end

local function exists(path)
  local lfs = require "lfs"
  return lfs.attributes(path, "mode")
end

--- Fail with "unknown image" and the store's close matches.
function M.unknown_image(ref, store_err)
  local args = require "hcs.util.args"
  local candidates, seen = {}, {}
  local function add(c)
    if type(c) == "string" and not seen[c] then
      seen[c] = true
      candidates[#candidates + 1] = c
    end
  end
  local list = hcs.image.open() and hcs.image.list() or {}
  for _, img in ipairs(list) do
    add(img.Name)
    for _, t in ipairs(img.Tags or {}) do add(t) end
  end
  local near = cli.close_matches(ref, candidates, 3)
  local msg = ("unknown image %s"):format(args.show(ref))
  if #near > 0 then
    msg = msg .. " (did you mean " .. table.concat(near, ", ") .. "?)"
  elseif #candidates == 0 then
    msg = msg .. " (the image store is empty: see 'hcs image import' and 'hcs image install-os')"
  elseif store_err and not tostring(store_err):find("No such file", 1, true) then
    msg = msg .. ": " .. tostring(store_err)
  end
  if exists(ref) then
    msg = msg .. ("; to run the %s %s give it as a path: ./%s"):format(
      exists(ref) == "directory" and "directory" or "file", args.show(ref), ref)
  end
  cli.fail("%s", msg)
end

--- What `hcs run`/`hcs create` run: { image = ID, ref = REF, command = {...} }
-- for an image reference, or { path = P, command = {...} } for a root
-- directory or a document given as a path (or --rootfs DIR).
function M.target(opts, args)
  if opts.rootfs then return { path = opts.rootfs, rootfs = true, command = args } end
  local first = args[1]
  if not first then cli.fail("give an IMAGE, or a root directory as a path (./dir, /dir, --rootfs DIR)") end
  local command = { table.unpack(args, 2) }
  if M.is_path(first) then return { path = first, command = command } end
  if first == "" then cli.fail("empty image reference") end
  local policy = opts.pull or "missing"
  if policy ~= "missing" and policy ~= "always" and policy ~= "never" then
    cli.fail("--pull expects missing, always or never, got '%s'", policy)
  end
  local store = hcs.image.open()
  local id, err
  if store then
    id, err = store:resolve(first)
    -- A registry reference is pulled first by the --pull policy; a bare
    -- name stays local unless the policy is `always`.
    if policy == "always" or (not id and policy == "missing" and hcs.registry.names_registry(first)) then
      local info, perr = hcs.registry.ensure(store, first, policy, require("hcs.util.registry_cli").opts(opts))
      if not info then
        store:close()
        cli.fail("%s", perr)
      end
      id = info.Id
    end
    store:close()
  end
  if not id then M.unknown_image(first, err) end
  return { image = id, ref = first, command = command }
end

--- --network/--publish/--entrypoint apply to images only.
function M.refuse_image_options(opts)
  if opts.network or (opts.publish and #opts.publish > 0) or opts.entrypoint then
    cli.fail("--network, --publish and --entrypoint need an IMAGE (not a root directory or a document)")
  end
end

--- The exit status of a failed exec, as docker's: 127 when the command was
-- not found, 126 when it cannot be executed; nil for any other failure.
-- msg is the error message (`exec `CMD`: reason`), errno its status.
function M.exec_status(msg, errno)
  local reason = tostring(msg):match("exec `[^`\n]*`: ([^\n]*)")
  if not reason then return nil end
  if errno == 2 or (errno == nil or errno == 0) and reason:find("No such file or directory", 1, true) then
    return 127
  end
  return 126 -- EACCES, ENOEXEC, EISDIR...: found but cannot be executed
end

--- Fail a start (or an exec) with docker's status for exec failures.
function M.fail_start(msg, errno)
  local text = cli.message(msg)
  local status = M.exec_status(text, errno)
  if status then cli.exit(status, "%s", text) end
  cli.fail("%s", text)
end

--- The environment docker gives a container on top of the user's -e:
-- HOSTNAME, and TERM=xterm with -t (HOME comes from the image's passwd,
-- set by the compute layer).  A variable the user set is kept.
function M.docker_env(env, opts, hostname)
  local out, have = {}, {}
  for _, kv in ipairs(env or {}) do
    out[#out + 1] = kv
    local k = tostring(kv):match("^([^=]+)=")
    if k then have[k] = true end
  end
  if hostname and not have.HOSTNAME then out[#out + 1] = "HOSTNAME=" .. hostname end
  if opts.tty and not have.TERM then out[#out + 1] = "TERM=xterm" end
  return out
end

--- ConsoleSize for a -t process: our terminal's [rows, columns], or nil.
function M.console_size(opts)
  if not opts.tty then return nil end
  local rows, cols = hcs.compute.terminal_size()
  if rows then return hcs.json.array { rows, cols } end
  return nil
end

--- Realize a system from an image through the workflow (plan + realize).
function M.define_from_image(opts, target, realize_opts)
  local name = opts.name or ("run-" .. hcs.compute.new_id())
  local command = target.command
  local env = M.docker_env(opts.env, opts, opts.hostname or name:sub(1, 63))
  local spec = { image = target.image, name = name, memory = opts.memory and math.tointeger(opts.memory),
    cpus = opts.cpus and math.tointeger(opts.cpus), cpu_max = opts["cpu-max"] and math.tointeger(opts["cpu-max"]),
    env = env, mounts = opts.volume and #opts.volume > 0 and opts.volume or nil, user = opts.user,
    workdir = opts.workdir, hostname = opts.hostname, network = opts.network,
    ports = opts.publish and #opts.publish > 0 and opts.publish or nil, command = #command > 0 and command or nil,
    entrypoint = opts.entrypoint }
  if opts.memory and not spec.memory then cli.fail("--memory: expected MB as an integer, got %s", opts.memory) end
  if opts.cpus and not spec.cpus then cli.fail("--cpus: expected an integer, got %s", opts.cpus) end
  -- -p without --network: the default NAT network (made on first use).
  if spec.ports and not spec.network then spec.network = cli.check(hcs.net.default_network()).Name end
  realize_opts.cgroup_parent = opts["cgroup-parent"]
  realize_opts.console_size = M.console_size(opts)
  local ok, sys = pcall(hcs.workflow.define, spec, realize_opts)
  if not ok then M.fail_start(sys) end
  return sys
end

local function is_dir(path)
  local f = io.open(path .. "/.", "r")
  if f then f:close() return true end
  return false
end

--- Build the configuration of a root directory or document target.
function M.build_config(opts, target)
  local first = target.path
  local command = target.command
  local doc
  if not target.rootfs and not is_dir(first) then
    local f = io.open(first, "r")
    if not f then cli.fail("%s is neither a directory nor a readable config file", require("hcs.util.args").show(first)) end
    local text = f:read("a")
    f:close()
    local ok, parsed = pcall(hcs.json.decode, text)
    if not ok or type(parsed) ~= "table" then
      cli.fail("config %s: %s", require("hcs.util.args").show(first), ok and "not a JSON object" or tostring(parsed))
    end
    doc = parsed
  end
  if not doc then
    local rootfs = first
    -- The document wants an absolute path; on the command line a relative
    -- one means the working directory's, as for any other tool.
    if rootfs:sub(1, 1) ~= "/" then rootfs = require("lfs").currentdir() .. "/" .. rootfs end
    local err
    local hostname = opts.hostname or (target.id and target.id:sub(1, 64)) -- compute's default: the id cut to 64
    doc, err = hcs.compute.config {
      rootfs = rootfs, owner = opts.owner, hostname = hostname, memory = opts.memory, cpus = opts.cpus,
      cpu_max = opts["cpu-max"], mounts = opts.volume, netns = opts.netns, cgroup_parent = opts["cgroup-parent"],
      command = command, tty = opts.tty, env = M.docker_env(opts.env, opts, hostname), user = opts.user,
      workdir = opts.workdir,
    }
    if not doc then cli.fail("%s", err) end
    if doc.Linux and doc.Linux.Init then doc.Linux.Init.ConsoleSize = M.console_size(opts) end
  elseif doc.VirtualMachine then
    -- A VM document (docs/vm.md): the guest boots what its document says.
    if #command > 0 then cli.fail("a VirtualMachine document takes no command (the guest runs its own init)") end
  elseif #command > 0 then
    doc.Linux = doc.Linux or {}
    doc.Linux.Init = { CommandArgs = command, EmulateConsole = opts.tty or nil, ConsoleSize = M.console_size(opts) }
  end
  return doc
end

M.detach_keys_option = { kind = "string", metavar = "KEYS",
  help = "the key sequence that detaches (default ctrl-p,ctrl-q)" }

local ctrl_specials = { ["@"] = 0, ["["] = 27, ["\\"] = 28, ["]"] = 29, ["^"] = 30, ["_"] = 31 }

--- Docker's --detach-keys ("ctrl-p,ctrl-q", "a", "ctrl-@") -> the bytes; nil -> nil (the default).
function M.detach_keys(spec)
  if spec == nil or spec == "" then return spec end
  local out = {}
  for item in (spec .. ","):gmatch("([^,]*),") do
    local c = item:match("^ctrl%-(.)$")
    if c and c:match("^%a$") then
      out[#out + 1] = string.char(c:lower():byte() - 96)
    elseif c and ctrl_specials[c] then
      out[#out + 1] = string.char(ctrl_specials[c])
    elseif #item == 1 then
      out[#out + 1] = item
    else
      cli.exit(2, "--detach-keys: %s is not a key (a character or ctrl-<key>, comma-separated)",
        require("hcs.util.args").show(item))
    end
  end
  return table.concat(out)
end

--- Attach to cs (cs:attach options); once its output ends, its exit status
-- (it stopped), 0 when detached.
function M.attach(cs, o)
  local how, err, errno = cs:attach(o)
  if not how then
    if errno == 4 then cli.fail("interrupted") end
    cli.fail("%s", err)
  end
  if how == "detached" then return 0 end
  -- The monitor's exit record: an auto-remove system may be gone already.
  local exit = err and err.exit
  if exit and math.type(exit.ExitCode) == "integer" then return exit.ExitCode < 0 and 1 or exit.ExitCode end
  cli.check(cs:wait())
  local props = cli.check(cs:properties())
  local code = props.ExitCode or 1
  return code < 0 and 1 or code
end

--- Relay a console until it closes.
function M.relay_console(console)
  return hcs.compute.relay(console)
end

function M.open(id)
  return cli.check(hcs.compute.open(id))
end

--- Apply fn(system) to each id; prints each id (or, with --json, a list of
-- {Id, Ok, Error}); fails at the end (status 1) if any failed.
function M.each(opts, ids, fn)
  local failed, results = 0, {}
  for _, id in ipairs(ids) do
    local cs, err = hcs.compute.open(id)
    local ok, msg = cs, err
    if cs then ok, msg = fn(cs) end
    if not ok then
      failed = failed + 1
      results[#results + 1] = { Id = id, Ok = false, Error = tostring(msg) }
      if not opts.json then io.stderr:write(("hcs: %s: %s\n"):format(id, tostring(msg))) end
    else
      results[#results + 1] = { Id = id, Ok = true }
      if not opts.json then print(id) end
    end
    if cs then cs:close() end
  end
  if opts.json then cli.print_json(results) end
  if failed > 0 then return 1 end
  return 0
end

M.json_option = { kind = "flag", short = "j", help = "print JSON" }

return M
