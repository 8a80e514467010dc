"""Drill selection: slow variants run only when asked for.

The default ``pytest drills`` is the quarterly drill and the nightly CI job, so it must stay
short. Variants marked ``slow`` (an incremental backup chain, a million-row data set, the
rest of the accidental-deletion cross product) run with ``-m slow`` or ``DRILL_SLOW=1``.
"""

import os

import pytest

SLOW_REASON = (
    "slow drill variant, skipped by default to keep `pytest drills` short; "
    "run it with `-m slow` or DRILL_SLOW=1"
)


def pytest_collection_modifyitems(config, items):
    wanted = os.environ.get("DRILL_SLOW", "") == "1" or "slow" in (config.option.markexpr or "")
    if wanted:
        return
    skip = pytest.mark.skip(reason=SLOW_REASON)
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
