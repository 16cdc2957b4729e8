# Empty dependencies file for test_layer_sparse.
# This may be replaced when dependencies are built.
