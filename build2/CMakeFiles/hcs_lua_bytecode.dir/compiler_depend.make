# Empty custom commands generated dependencies file for hcs_lua_bytecode.
# This may be replaced when dependencies are built.
