# Empty dependencies file for hcs_host.
# This may be replaced when dependencies are built.
