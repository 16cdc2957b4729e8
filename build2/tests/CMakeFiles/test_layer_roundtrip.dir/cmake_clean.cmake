file(REMOVE_RECURSE
  "CMakeFiles/test_layer_roundtrip.dir/c/test_layer_roundtrip.c.o"
  "CMakeFiles/test_layer_roundtrip.dir/c/test_layer_roundtrip.c.o.d"
  "test_layer_roundtrip"
  "test_layer_roundtrip.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_layer_roundtrip.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
