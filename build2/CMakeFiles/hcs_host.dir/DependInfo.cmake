
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt-registry2/src/host/main.c" "CMakeFiles/hcs_host.dir/src/host/main.c.o" "gcc" "CMakeFiles/hcs_host.dir/src/host/main.c.o.d"
  "/work/wt-registry2/src/host/repl.c" "CMakeFiles/hcs_host.dir/src/host/repl.c.o" "gcc" "CMakeFiles/hcs_host.dir/src/host/repl.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt-registry2/build2/CMakeFiles/hcs.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
