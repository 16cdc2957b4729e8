# Empty compiler generated dependencies file for hcs_core_module.
# This may be replaced when dependencies are built.
