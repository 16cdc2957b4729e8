file(REMOVE_RECURSE
  "CMakeFiles/hcs_runtime.dir/src/runtime/features.c.o"
  "CMakeFiles/hcs_runtime.dir/src/runtime/features.c.o.d"
  "CMakeFiles/hcs_runtime.dir/src/runtime/hooks.c.o"
  "CMakeFiles/hcs_runtime.dir/src/runtime/hooks.c.o.d"
  "CMakeFiles/hcs_runtime.dir/src/runtime/main.c.o"
  "CMakeFiles/hcs_runtime.dir/src/runtime/main.c.o.d"
  "CMakeFiles/hcs_runtime.dir/src/runtime/seccomp.c.o"
  "CMakeFiles/hcs_runtime.dir/src/runtime/seccomp.c.o.d"
  "CMakeFiles/hcs_runtime.dir/src/runtime/spec.c.o"
  "CMakeFiles/hcs_runtime.dir/src/runtime/spec.c.o.d"
  "hcs-runtime"
  "hcs-runtime.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/hcs_runtime.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
