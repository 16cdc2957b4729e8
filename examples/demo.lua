-- The hcs demo: the whole container life cycle of the seed documents.
--   build a base OS image, plan a system, customize it (memory, CPU, NAT
--   network), validate, realize, author it (install an app, set its
--   command), capture it as a new image, run a container from the captured
--   image on the network, reach it through a port mapping, list images,
--   clean up.
-- Usage (as root): hcs examples/demo.lua      (scripts/demo runs it in a fresh root)
local hcs = require "hcs"
local wf = hcs.workflow
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

local NET, SUBNET, GATEWAY, PORT = "hcs-demo", "10.203.0.0/24", "10.203.0.1", 18080

local function step(fmt, ...) print(("\n== " .. fmt):format(...)) end
local function show(cmd) os.execute(hcs.json and (arg[-1] or "hcs") .. " " .. cmd) end

local cleanup = {}
local function finally()
  for i = #cleanup, 1, -1 do pcall(cleanup[i]) end
end

local ok, err = xpcall(function()
  step("the host")
  show("info")

  step("images (the base OS image was installed by scripts/make-base-image)")
  show("image ls")

  step("a NAT network %s (%s)", NET, SUBNET)
  local net = assert(hcs.net.network.create { Name = NET, Type = "NAT", Subnet = SUBNET, Gateway = GATEWAY })
  cleanup[#cleanup + 1] = function() hcs.net.network.delete(NET) end
  print(("network %s: bridge %s, %s"):format(net.Name, net.Linux and net.Linux.Bridge or "?", SUBNET))

  step("plan a system from busybox, customize it, validate it")
  local plan = wf.plan { image = "busybox", name = "demo-author" }
  cleanup[#cleanup + 1] = function() wf.plans.remove("demo-author") end
  wf.customize(plan, { memory = 64, cpus = 1, network = NET })
  assert(wf.validate(plan))
  show("plan show demo-author")

  step("realize it and author it: install the app, set its command")
  local sys = wf.realize(plan, { idle = true })
  cleanup[#cleanup + 1] = function() wf.destroy(sys) end
  sys:run "mkdir -p /app"
  sys:copy(here .. "/app/hello.sh", "/app/hello.sh")
  sys:config { Cmd = { "/app/hello.sh", "serve" }, Env = { "GREETING=Hello" }, ExposedPorts = { ["80/tcp"] = {} } }
  local _, out = sys:run { "/app/hello.sh" }
  io.write(out)

  step("capture it as a new image demo/hello:1.0")
  local image = wf.capture(sys, { name = "demo/hello", version = "1.0", publisher = "Demo" })
  print(("captured %s (%d layers)"):format(image.Id:sub(1, 12), #image.Layers))
  assert(wf.destroy(sys))
  table.remove(cleanup) -- destroyed
  table.remove(cleanup) -- the plan went with it
  cleanup[#cleanup + 1] = function()
    local s = hcs.image.open()
    if s then s:remove("demo/hello:1.0", true) s:close() end
  end
  show("image ls")

  step("run a container from the captured image on %s with port %d -> 80", NET, PORT)
  local run = wf.define { image = "demo/hello:1.0", name = "demo-run", memory = 64, network = NET,
    ports = { PORT .. ":80" } }
  cleanup[#cleanup + 1] = function() wf.destroy(run) end
  local _, says = run:run { "/app/hello.sh" }
  io.write(says)
  local page
  for _ = 1, 50 do
    -- bash's /dev/tcp: a plain HTTP/1.0 request, no client tool needed
    local p = io.popen(("timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d && printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&3 && cat <&3' 2>/dev/null"):format(PORT))
    page = (p:read("a") or ""):match("\r?\n\r?\n(.*)$") or ""
    p:close()
    if page ~= "" then break end
    os.execute("sleep 0.1")
  end
  print(("GET http://127.0.0.1:%d/ -> %s"):format(PORT, page ~= "" and page:gsub("%s+$", "") or "(no answer)"))
  local props = run:properties { PropertyTypes = { "Statistics", "ProcessList" } }
  print(("demo-run: %s, %d process(es), memory in use %d kB"):format(props.State, #(props.ProcessList or {}),
    (props.Statistics.Memory.UsageBytes or 0) // 1024))
  show("list")
end, debug.traceback)

step("clean up")
finally()
show("image ls")
if not ok then
  io.stderr:write(err, "\n")
  os.exit(1)
end
print("\ndemo complete")
