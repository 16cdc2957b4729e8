file(REMOVE_RECURSE
  "CMakeFiles/embed.dir/examples/c/embed.c.o"
  "CMakeFiles/embed.dir/examples/c/embed.c.o.d"
  "examples/embed"
  "examples/embed.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/embed.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
