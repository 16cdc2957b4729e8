# Empty dependencies file for test_compute_devices.
# This may be replaced when dependencies are built.
