"""Worker entry point, command line and the embedded dev-stack launcher."""
