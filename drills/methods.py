"""Backup methods every scenario runs with (physical methods join with point-in-time recovery)."""

import pytest

METHODS = [
    pytest.param({"fmt": "custom", "jobs": 1}, id="logical-custom"),
    pytest.param({"fmt": "directory", "jobs": 2}, id="logical-directory-2jobs"),
]
