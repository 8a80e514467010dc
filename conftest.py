"""Repository-wide pytest configuration.

The drill plugin (options, fixtures, report hooks) is loaded through the ``pytest11`` entry
point of the installed package, the same way users get it, so nothing is registered here.
"""
