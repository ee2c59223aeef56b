"""A run at the edges: the typed config, the loggers and the `softq-train` entry point."""
