file(REMOVE_RECURSE
  "libhcs.pdb"
  "libhcs.so"
  "libhcs.so.0"
  "libhcs.so.0.1.0"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/hcs.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
