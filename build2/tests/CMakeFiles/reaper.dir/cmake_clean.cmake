file(REMOVE_RECURSE
  "CMakeFiles/reaper.dir/tools/reaper.c.o"
  "CMakeFiles/reaper.dir/tools/reaper.c.o.d"
  "reaper"
  "reaper.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/reaper.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
