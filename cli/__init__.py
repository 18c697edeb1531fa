"""The `wvb` command line: operators' and staff's entry point."""
