file(REMOVE_RECURSE
  "CMakeFiles/syscall_probe"
  "syscall_probe"
)

# Per-language clean rules from dependency scanning.
foreach(lang )
  include(CMakeFiles/syscall_probe.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
