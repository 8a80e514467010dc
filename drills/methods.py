"""Backup methods the scenarios run with.

``METHODS`` are logical sets (pg_dump), which every scenario takes. ``PHYSICAL`` are base
backups plus archived WAL (point-in-time recovery): ``drills/test_pitr.py`` runs complete
data loss and partial corruption with each. The incremental chain needs PostgreSQL 17+ and
is slow (two base backups and ``pg_combinebackup``): it runs with ``-m slow`` or
``DRILL_SLOW=1``.
"""

import pytest

METHODS = [
    pytest.param({"fmt": "custom", "jobs": 1}, id="logical-custom"),
    pytest.param({"fmt": "directory", "jobs": 2}, id="logical-directory-2jobs"),
]

PHYSICAL = [
    pytest.param({"mode": "streaming"}, id="physical-streaming"),
    pytest.param({"mode": "archive-command"}, id="physical-archive-command"),
    pytest.param(
        {"mode": "streaming", "incremental": True},
        id="physical-incremental",
        marks=pytest.mark.slow,
    ),
]
