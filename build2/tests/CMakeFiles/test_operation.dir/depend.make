# Empty dependencies file for test_operation.
# This may be replaced when dependencies are built.
