file(REMOVE_RECURSE
  "CMakeFiles/hcs_host.dir/src/host/main.c.o"
  "CMakeFiles/hcs_host.dir/src/host/main.c.o.d"
  "CMakeFiles/hcs_host.dir/src/host/repl.c.o"
  "CMakeFiles/hcs_host.dir/src/host/repl.c.o.d"
  "hcs"
  "hcs.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/hcs_host.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
