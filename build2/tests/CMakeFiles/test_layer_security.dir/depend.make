# Empty dependencies file for test_layer_security.
# This may be replaced when dependencies are built.
