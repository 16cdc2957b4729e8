# Empty dependencies file for test_net.
# This may be replaced when dependencies are built.
