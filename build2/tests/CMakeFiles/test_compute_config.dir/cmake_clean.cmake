file(REMOVE_RECURSE
  "CMakeFiles/test_compute_config.dir/c/test_compute_config.c.o"
  "CMakeFiles/test_compute_config.dir/c/test_compute_config.c.o.d"
  "test_compute_config"
  "test_compute_config.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_compute_config.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
