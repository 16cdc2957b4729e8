file(REMOVE_RECURSE
  "CMakeFiles/ptyrun.dir/tools/ptyrun.c.o"
  "CMakeFiles/ptyrun.dir/tools/ptyrun.c.o.d"
  "ptyrun"
  "ptyrun.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/ptyrun.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
