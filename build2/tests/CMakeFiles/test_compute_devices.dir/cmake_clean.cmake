file(REMOVE_RECURSE
  "CMakeFiles/test_compute_devices.dir/c/test_compute_devices.c.o"
  "CMakeFiles/test_compute_devices.dir/c/test_compute_devices.c.o.d"
  "test_compute_devices"
  "test_compute_devices.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_compute_devices.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
