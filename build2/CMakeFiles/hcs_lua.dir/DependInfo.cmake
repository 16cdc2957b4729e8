
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt-registry2/bindings/lua/compute.c" "CMakeFiles/hcs_lua.dir/bindings/lua/compute.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/compute.c.o.d"
  "/work/wt-registry2/bindings/lua/core.c" "CMakeFiles/hcs_lua.dir/bindings/lua/core.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/core.c.o.d"
  "/work/wt-registry2/bindings/lua/events.c" "CMakeFiles/hcs_lua.dir/bindings/lua/events.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/events.c.o.d"
  "/work/wt-registry2/bindings/lua/fs.c" "CMakeFiles/hcs_lua.dir/bindings/lua/fs.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/fs.c.o.d"
  "/work/wt-registry2/bindings/lua/host.c" "CMakeFiles/hcs_lua.dir/bindings/lua/host.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/host.c.o.d"
  "/work/wt-registry2/bindings/lua/image.c" "CMakeFiles/hcs_lua.dir/bindings/lua/image.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/image.c.o.d"
  "/work/wt-registry2/bindings/lua/json.c" "CMakeFiles/hcs_lua.dir/bindings/lua/json.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/json.c.o.d"
  "/work/wt-registry2/bindings/lua/layer.c" "CMakeFiles/hcs_lua.dir/bindings/lua/layer.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/layer.c.o.d"
  "/work/wt-registry2/bindings/lua/net.c" "CMakeFiles/hcs_lua.dir/bindings/lua/net.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/net.c.o.d"
  "/work/wt-registry2/bindings/lua/operation.c" "CMakeFiles/hcs_lua.dir/bindings/lua/operation.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/operation.c.o.d"
  "/work/wt-registry2/bindings/lua/process.c" "CMakeFiles/hcs_lua.dir/bindings/lua/process.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/process.c.o.d"
  "/work/wt-registry2/bindings/lua/registry.c" "CMakeFiles/hcs_lua.dir/bindings/lua/registry.c.o" "gcc" "CMakeFiles/hcs_lua.dir/bindings/lua/registry.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
