-- The soak loop (issue #15.19), run inside one `hcs` host process by
-- scripts/soak, which makes the root, the image, the netns and the cgroup
-- parent and checks the host afterwards.  Each cycle creates a system from
-- the busybox image on a NAT network with a port mapping (plan, scratch
-- layer, compartment, endpoint, compute system), starts it, execs a process
-- in it, stops it and deletes it all; every tenth cycle also goes through
-- the CLI (`hcs run --rm -p`, the default network).  Prints a line per 100
-- cycles and a final report; exits 1 when anything leaked.
--   hcs tests/soak/soak.lua ROOT CYCLES CGROUP_PARENT HCS_BIN SECONDS
local hcs = require "hcs"
local wf = hcs.workflow

local root, cycles, cg, hcs_bin, budget = arg[1], tonumber(arg[2]), arg[3], arg[4], tonumber(arg[5])
assert(root and cycles and cg and hcs_bin and budget, "usage: soak.lua ROOT CYCLES CGROUP_PARENT HCS_BIN SECONDS")

local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

local self_pid = sh("echo $PPID"):match("%d+") -- this host process (the shell's parent)
local function rss_kb() return tonumber(read("/proc/self/status"):match("VmRSS:%s+(%d+)")) end
-- Counted by a child, so the popen pipe is counted each time alike.
local function fd_count() return tonumber(sh("ls /proc/" .. self_pid .. "/fd | wc -l")) end
local function layer_count()
  return #hcs.json.decode(sh(("%s --root %s layer ls --json"):format(hcs_bin, root)))
end

--- Processes whose command line names the root, by comm (hcs-monitor, ...).
local function processes_of_root()
  local found = {}
  for pid in sh("ls /proc"):gmatch("(%d+)\n") do
    local cmdline = read("/proc/" .. pid .. "/cmdline")
    local comm = read("/proc/" .. pid .. "/comm")
    if cmdline and comm and cmdline:find(root, 1, true) and pid ~= self_pid then
      found[#found + 1] = pid .. ":" .. comm:gsub("%s+$", "")
    end
  end
  return found
end

local function now() return tonumber(sh("date +%s.%N")) end

assert(hcs.net.network.create({ Name = "soak", Type = "NAT" }, { root = root }))

local cli_runs = 0

local function cycle(i)
  local sys = wf.define({ image = "busybox", name = "soak-" .. i, root = root, network = "soak",
    ports = { ("%d:80"):format(20000 + i % 1000) } }, { idle = true, cgroup_parent = cg, stdio = "null" })
  local _, out = sys:run("echo ok-$((" .. i .. " + 1))")
  assert(out == ("ok-%d\n"):format(i + 1), "exec output: " .. tostring(out))
  assert(sys:stop(5000))
  assert(wf.destroy(sys))
  if i % 10 == 0 then
    local ok = os.execute(("%s run --rm --cgroup-parent %s -p 19000:80 busybox -- true"):format(hcs_bin, cg))
    assert(ok, "hcs run --rm -p failed in cycle " .. i)
    cli_runs = cli_runs + 1
  end
end

-- Cycle 0 warms up what loads on first use (libraries, caches): the figures
-- compare the state after it with the state at the end.
local t0 = now()
cycle(0)
local rss0, fds0, layers0 = rss_kb(), fd_count(), layer_count()
local done = 1
for i = 1, cycles - 1 do
  cycle(i)
  done = done + 1
  if i % 100 == 0 then
    io.write(("soak: %d cycles, %.1f s, RSS %d kB, %d fds\n"):format(done, now() - t0, rss_kb(), fd_count()))
    io.flush()
  end
  if now() - t0 > budget then break end
end
local elapsed = now() - t0
collectgarbage("collect")
local rss1, fds1 = rss_kb(), fd_count()

local problems = {}
local function check(cond, fmt, ...) if not cond then problems[#problems + 1] = fmt:format(...) end end
check(#wf.plans.list(root) == 0, "plans left: %s", table.concat(wf.plans.list(root), " "))
local eps = assert(hcs.net.endpoint.list({ root = root }))
check(#eps == 0, "%d endpoints left", #eps)
local cms = assert(hcs.net.namespace.list({ root = root }))
check(#cms == 0, "%d compartments left", #cms)
local systems = sh(("%s --root %s list --json 2>/dev/null"):format(hcs_bin, root))
check(not systems:find('"Id"', 1, true), "compute systems left: %s", systems)
local table_text = sh("nft list ruleset 2>/dev/null")
check(not table_text:find(" : %d+%.%d+%.%d+%.%d+ %. 80"), "port mapping elements left:\n%s", table_text)
local leases = sh(("find %s/run/net/ipam -type f 2>/dev/null | wc -l"):format(root)):match("%d+")
check(leases == "0", "%s IPAM leases left", leases)
local procs = processes_of_root()
check(#procs == 0, "processes of the root left: %s", table.concat(procs, " "))
check(fds1 <= fds0, "fds of the host process grew: %d -> %d", fds0, fds1)
local layers = layer_count()
check(layers == layers0, "layers in the store: %d after the first cycle, %d at the end", layers0, layers)

for _, name in ipairs({ "soak", "nat" }) do
  local ok, msg = hcs.net.network.delete(name, { root = root })
  check(ok, "delete network %s: %s", name, tostring(msg))
  if not ok then hcs.net.network.delete(name, { root = root, force = true }) end
end

io.write(("soak: %d cycles (+%d through the CLI) in %.1f s (%.1f ms per cycle)\n"):format(done, cli_runs,
  elapsed, elapsed * 1000 / done))
io.write(("soak: host process RSS %d kB after the first cycle, %d kB at the end (%+d kB, %+.2f kB per cycle)\n"):format(
  rss0, rss1, rss1 - rss0, (rss1 - rss0) / math.max(done - 1, 1)))
io.write(("soak: host process fds %d after the first cycle, %d at the end; %d layers in the store\n"):format(fds0, fds1,
  layers))
for _, p in ipairs(problems) do io.write("soak: LEAK: " .. p .. "\n") end
return #problems == 0 and 0 or 1
