# Empty dependencies file for hcs_lua.
# This may be replaced when dependencies are built.
