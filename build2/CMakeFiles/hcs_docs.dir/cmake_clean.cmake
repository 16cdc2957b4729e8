file(REMOVE_RECURSE
  "CMakeFiles/hcs_docs"
  "share/bash-completion/hcs"
  "share/man/hcs.1"
)

# Per-language clean rules from dependency scanning.
foreach(lang )
  include(CMakeFiles/hcs_docs.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
