file(REMOVE_RECURSE
  "CMakeFiles/test_layer_security.dir/c/test_layer_security.c.o"
  "CMakeFiles/test_layer_security.dir/c/test_layer_security.c.o.d"
  "test_layer_security"
  "test_layer_security.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_layer_security.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
