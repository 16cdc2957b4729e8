
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt-registry2/src/runtime/features.c" "CMakeFiles/hcs_runtime.dir/src/runtime/features.c.o" "gcc" "CMakeFiles/hcs_runtime.dir/src/runtime/features.c.o.d"
  "/work/wt-registry2/src/runtime/hooks.c" "CMakeFiles/hcs_runtime.dir/src/runtime/hooks.c.o" "gcc" "CMakeFiles/hcs_runtime.dir/src/runtime/hooks.c.o.d"
  "/work/wt-registry2/src/runtime/main.c" "CMakeFiles/hcs_runtime.dir/src/runtime/main.c.o" "gcc" "CMakeFiles/hcs_runtime.dir/src/runtime/main.c.o.d"
  "/work/wt-registry2/src/runtime/seccomp.c" "CMakeFiles/hcs_runtime.dir/src/runtime/seccomp.c.o" "gcc" "CMakeFiles/hcs_runtime.dir/src/runtime/seccomp.c.o.d"
  "/work/wt-registry2/src/runtime/spec.c" "CMakeFiles/hcs_runtime.dir/src/runtime/spec.c.o" "gcc" "CMakeFiles/hcs_runtime.dir/src/runtime/spec.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
