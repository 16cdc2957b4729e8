# Empty dependencies file for embed.
# This may be replaced when dependencies are built.
