-- A user workflow: put this directory on HCS_WORKFLOW_PATH and run
--   hcs workflow run hello [IMAGE]
-- It defines a system from an image, runs one command in it and destroys it.
return {
  description = "run 'echo hello' in a throw-away system",
  run = function(wf, image)
    local sys = wf.define({ image = image or "busybox", name = "hello-" .. os.time() }, { idle = true })
    local ok, code, out = pcall(sys.run, sys, "echo hello from $(hostname)")
    assert(wf.destroy(sys))
    if not ok then error(code, 0) end
    io.write(out)
    return code
  end,
}
