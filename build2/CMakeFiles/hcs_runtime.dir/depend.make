# Empty dependencies file for hcs_runtime.
# This may be replaced when dependencies are built.
