file(REMOVE_RECURSE
  "CMakeFiles/test_layer_replace.dir/c/test_layer_replace.c.o"
  "CMakeFiles/test_layer_replace.dir/c/test_layer_replace.c.o.d"
  "test_layer_replace"
  "test_layer_replace.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_layer_replace.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
