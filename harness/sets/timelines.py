"""Which timeline a recovery follows, checked against the archive before anything starts.

Every promotion (a failover, or a recovered copy put into service) starts a new timeline
and archives its history file (``00000002.history``: the ancestors and where each branched
off). A recovery starts on the base backup's timeline and may follow a later one
(``recovery_target_timeline``): ``current`` stays on the backup's, ``latest`` takes the
newest descendant the archive knows, a number names one. A timeline the archive has no WAL
or history of, one that does not descend from the backup's, or one that branched off
before the backup ended would make PostgreSQL stop with a terse FATAL after the data
directory was built; here it is a :class:`~harness.errors.TimelineError` naming the cause
before anything is downloaded.
"""

from __future__ import annotations

from harness.errors import ConfigError, TimelineError
from harness.pg.wal import TimelineSpan, format_lsn, history_name, parse_history, parse_lsn
from harness.sets.physical import PhysicalManifest
from harness.sets.wal_archive import WalArchive, read_text
from harness.storage.base import ObjectStore

CHOICES = ("current", "latest")

# PostgreSQL's own words when the timeline is wrong (the check above should come first).
POSTGRES_MESSAGES = (
    "recovery target timeline",
    "is not a child of this server's history",
    "does not contain minimum recovery point",
    "is not a valid timeline",
)


def parse_timeline(text: str) -> str:
    """Check a ``--timeline`` value: ``current``, ``latest`` or a timeline number.

    Raises:
        ConfigError: anything else.

    """
    value = text.strip().lower()
    if value in CHOICES or (value.isdigit() and int(value) > 0):
        return value if value in CHOICES else str(int(value))
    raise ConfigError(
        f"recovery timeline {text!r} is not 'current', 'latest' or a timeline number (1, 2, ...)"
    )


def lineage(
    store: ObjectStore, archive: WalArchive, base: PhysicalManifest, wanted: str = "current"
) -> tuple[TimelineSpan, ...]:
    """The timelines a recovery of ``base`` follows to timeline ``wanted``, oldest first.

    Raises:
        ConfigError: ``wanted`` is not a timeline choice.
        TimelineError: the archive holds no WAL of the backup's timeline, has no history of
            ``wanted``, or ``wanted`` does not descend from the backup's timeline after the
            backup ended.
        WalGapError: a history file cannot be read from the store.

    """
    wanted = parse_timeline(wanted)
    own = base.timeline
    if not archive.has_wal_of(own):
        raise TimelineError(
            f"base backup {base.name!r} was taken on timeline {own}, but the archive at "
            f"{archive.prefix!r} holds no WAL of timeline {own} ({_held(archive)}); recover "
            "from the archive of the server that wrote that timeline, or take a new base backup",
            timeline=own,
        )
    current = (TimelineSpan(own, 0, None),)
    if wanted == "current" or (wanted.isdigit() and int(wanted) == own):
        return current
    if wanted == "latest":
        for candidate in sorted(archive.timelines(), reverse=True):
            if candidate <= own or history_name(candidate) not in archive.files:
                continue
            spans = _history(store, archive, candidate)
            if _problem(spans, base) is None:
                return spans
        return current
    number = int(wanted)
    if number < own:
        raise TimelineError(
            f"recovery timeline {number} is older than timeline {own} of base backup "
            f"{base.name!r}; recovery can only move forward: use 'current' or a later timeline",
            timeline=number,
        )
    if history_name(number) not in archive.files:
        raise TimelineError(
            f"recovery timeline {number}: the archive at {archive.prefix!r} has no "
            f"{history_name(number)}, so timeline {number} is unknown to it "
            f"({_held(archive)}); use 'current', 'latest' or an archived timeline",
            timeline=number,
        )
    spans = _history(store, archive, number)
    problem = _problem(spans, base)
    if problem is not None:
        raise TimelineError(f"recovery timeline {number} {problem}", timeline=number)
    return spans


def setting(spans: tuple[TimelineSpan, ...], base: PhysicalManifest) -> str:
    """The ``recovery_target_timeline`` value for a lineage."""
    final = spans[-1].timeline
    return "current" if final == base.timeline else str(final)


def _history(store: ObjectStore, archive: WalArchive, timeline: int) -> tuple[TimelineSpan, ...]:
    text = read_text(store, archive, history_name(timeline))
    try:
        return parse_history(text, timeline)
    except ConfigError as exc:
        raise TimelineError(
            f"the archived {history_name(timeline)} is unreadable: {exc}", timeline=timeline
        ) from exc


def _problem(spans: tuple[TimelineSpan, ...], base: PhysicalManifest) -> str | None:
    """Why ``base`` cannot be recovered along ``spans``, or None."""
    own = next((s for s in spans if s.timeline == base.timeline), None)
    ancestry = " -> ".join(str(s.timeline) for s in spans)
    if own is None:
        return (
            f"does not descend from timeline {base.timeline} of base backup {base.name!r} "
            f"(its history: {ancestry}); use a base backup taken on one of those timelines"
        )
    if own.ends is not None and own.ends < parse_lsn(base.stop_lsn):
        return (
            f"branched off timeline {base.timeline} at {format_lsn(own.ends)}, before base "
            f"backup {base.name!r} ended ({base.stop_lsn}), so the backup cannot be "
            f"recovered onto it (history: {ancestry}); use a base backup taken before "
            f"{format_lsn(own.ends)}"
        )
    return None


def _held(archive: WalArchive) -> str:
    found = archive.timelines()
    if not found:
        return "it holds no WAL at all"
    return "timelines archived: " + ", ".join(str(t) for t in found)
