# Empty dependencies file for test_copy.
# This may be replaced when dependencies are built.
