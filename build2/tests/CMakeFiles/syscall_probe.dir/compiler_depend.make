# Empty custom commands generated dependencies file for syscall_probe.
# This may be replaced when dependencies are built.
