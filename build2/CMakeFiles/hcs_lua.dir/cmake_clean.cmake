file(REMOVE_RECURSE
  "CMakeFiles/hcs_lua.dir/bindings/lua/compute.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/compute.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/core.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/core.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/events.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/events.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/fs.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/fs.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/host.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/host.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/image.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/image.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/json.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/json.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/layer.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/layer.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/net.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/net.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/operation.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/operation.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/process.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/process.c.o.d"
  "CMakeFiles/hcs_lua.dir/bindings/lua/registry.c.o"
  "CMakeFiles/hcs_lua.dir/bindings/lua/registry.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/hcs_lua.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
