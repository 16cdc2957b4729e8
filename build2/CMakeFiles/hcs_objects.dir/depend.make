# Empty dependencies file for hcs_objects.
# This may be replaced when dependencies are built.
