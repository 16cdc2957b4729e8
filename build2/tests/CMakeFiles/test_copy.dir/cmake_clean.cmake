file(REMOVE_RECURSE
  "CMakeFiles/test_copy.dir/c/test_copy.c.o"
  "CMakeFiles/test_copy.dir/c/test_copy.c.o.d"
  "test_copy"
  "test_copy.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_copy.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
