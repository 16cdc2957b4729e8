file(REMOVE_RECURSE
  "CMakeFiles/test_compute_v2.dir/c/test_compute_v2.c.o"
  "CMakeFiles/test_compute_v2.dir/c/test_compute_v2.c.o.d"
  "test_compute_v2"
  "test_compute_v2.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_compute_v2.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
