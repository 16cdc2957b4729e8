# Empty dependencies file for test_layer_replace.
# This may be replaced when dependencies are built.
