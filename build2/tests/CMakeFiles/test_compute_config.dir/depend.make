# Empty dependencies file for test_compute_config.
# This may be replaced when dependencies are built.
