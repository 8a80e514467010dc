"""The ``drill`` command."""
