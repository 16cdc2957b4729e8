file(REMOVE_RECURSE
  "CMakeFiles/test_layer_store.dir/c/test_layer_store.c.o"
  "CMakeFiles/test_layer_store.dir/c/test_layer_store.c.o.d"
  "test_layer_store"
  "test_layer_store.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_layer_store.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
