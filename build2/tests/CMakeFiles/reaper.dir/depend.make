# Empty dependencies file for reaper.
# This may be replaced when dependencies are built.
