file(REMOVE_RECURSE
  "lua/hcs/core.pdb"
  "lua/hcs/core.so"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/hcs_core_module.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
