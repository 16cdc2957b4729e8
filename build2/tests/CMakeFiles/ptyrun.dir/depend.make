# Empty dependencies file for ptyrun.
# This may be replaced when dependencies are built.
