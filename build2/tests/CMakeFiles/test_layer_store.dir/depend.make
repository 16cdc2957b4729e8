# Empty dependencies file for test_layer_store.
# This may be replaced when dependencies are built.
