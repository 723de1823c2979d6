"""The `heistwatch` command: thin wrappers that call the library and render its results."""
