# Empty dependencies file for test_layer_roundtrip.
# This may be replaced when dependencies are built.
