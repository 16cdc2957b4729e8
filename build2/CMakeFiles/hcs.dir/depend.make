# Empty dependencies file for hcs.
# This may be replaced when dependencies are built.
