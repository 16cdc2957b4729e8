# Empty custom commands generated dependencies file for hcs_docs.
# This may be replaced when dependencies are built.
