file(REMOVE_RECURSE
  "CMakeFiles/test_operation.dir/c/test_operation.c.o"
  "CMakeFiles/test_operation.dir/c/test_operation.c.o.d"
  "test_operation"
  "test_operation.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_operation.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
