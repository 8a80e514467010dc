"""The pytest plugin: options, fixtures, report hooks."""
