file(REMOVE_RECURSE
  "CMakeFiles/test_layer_sparse.dir/c/test_layer_sparse.c.o"
  "CMakeFiles/test_layer_sparse.dir/c/test_layer_sparse.c.o.d"
  "test_layer_sparse"
  "test_layer_sparse.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_layer_sparse.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
