-- An authoring recipe for `hcs build examples/build-hello.lua`:
-- start from the busybox base image, install a shell app, set its command.
-- A relative source of sys:copy is taken from this file's folder.
return {
  from = "busybox",
  name = "demo/hello",
  version = "1.0",
  publisher = "Demo",
  customize = { memory = 64 },
  author = function(sys)
    sys:run "mkdir -p /app /var/log/app"
    sys:copy("app/hello.sh", "/app/hello.sh")
    sys:run "rm -rf /home" -- a deletion travels as a whiteout
    sys:config { Cmd = { "/app/hello.sh" }, Env = { "GREETING=Hello" }, WorkingDir = "/app",
                 Labels = { ["org.example.demo"] = "true" } }
  end,
}
