# Empty dependencies file for test_compute_v2.
# This may be replaced when dependencies are built.
