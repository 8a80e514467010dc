"""Write-ahead log on the client side: LSNs, segment names, timelines, and tool wrappers.

A WAL segment file is named ``TTTTTTTTXXXXXXXXYYYYYYYY``: the timeline, then the segment
number split into a "log" part and a segment-within-log part (``2**32 // segment_size``
segments per log). An LSN prints as ``HI/LO`` (two hex halves of a 64-bit byte position).
The wrappers call ``pg_controldata`` and ``pg_waldump`` through :func:`harness.proc.run`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import ConfigError
from harness.pg.binaries import PgBinaries
from harness.proc import run

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_HISTORY_RE = re.compile(r"^([0-9A-F]{8})\.history$")
_LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_COMMIT_RE = re.compile(
    r"rmgr: Transaction .*?tx:\s+(\d+), lsn: ([0-9A-F]+/[0-9A-F]+).*?desc: COMMIT (\S+ \S+) UTC"
)


def parse_lsn(text: str) -> int:
    """Turn ``HI/LO`` into a byte position.

    Raises:
        ConfigError: ``text`` is not an LSN.

    """
    match = _LSN_RE.match(text.strip())
    if not match:
        raise ConfigError(f"{text!r} is not a WAL position; expected hex HI/LO such as 0/3000060")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(position: int) -> str:
    """Turn a byte position into PostgreSQL's ``HI/LO`` spelling."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def is_lsn(text: str) -> bool:
    """Tell whether ``text`` is spelled like an LSN."""
    return bool(_LSN_RE.match(text.strip()))


def _segments_per_log(segment_size: int) -> int:
    if segment_size <= 0 or segment_size & (segment_size - 1):
        raise ConfigError(f"WAL segment size {segment_size} is not a power of two")
    return 0x100000000 // segment_size


def segment_name(timeline: int, segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    """The file name of segment number ``segno`` on ``timeline``."""
    per_log = _segments_per_log(segment_size)
    return f"{timeline:08X}{segno // per_log:08X}{segno % per_log:08X}"


def parse_segment_name(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> tuple[int, int]:
    """Split a segment file name into (timeline, segment number).

    Raises:
        ConfigError: ``name`` is not a WAL segment file name.

    """
    match = _SEGMENT_RE.match(name)
    if not match:
        raise ConfigError(f"{name!r} is not a WAL segment name (24 upper-case hex digits)")
    per_log = _segments_per_log(segment_size)
    log_part, seg_part = int(match.group(2), 16), int(match.group(3), 16)
    if seg_part >= per_log:
        raise ConfigError(f"{name!r} is not a valid segment for {segment_size}-byte segments")
    return int(match.group(1), 16), log_part * per_log + seg_part


def is_segment_name(name: str) -> bool:
    """True for a complete segment's file name (not ``.partial``, ``.history`` ...)."""
    return bool(_SEGMENT_RE.match(name))


def is_history_name(name: str) -> bool:
    """True for a timeline history file name (``00000002.history``)."""
    return bool(_HISTORY_RE.match(name))


def segment_of(lsn: int, timeline: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    """The name of the segment holding byte position ``lsn`` on ``timeline``."""
    return segment_name(timeline, lsn // segment_size, segment_size)


def segments_between(
    timeline: int, start_lsn: int, end_lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> list[str]:
    """Every segment from the one holding ``start_lsn`` to the one holding ``end_lsn``.

    An end exactly on a segment boundary needs no byte of the next segment.
    """
    first = start_lsn // segment_size
    last = max(first, (max(end_lsn, 1) - 1) // segment_size)
    return [segment_name(timeline, n, segment_size) for n in range(first, last + 1)]


def first_gap(
    present: set[str] | frozenset[str],
    timeline: int,
    start_lsn: int,
    *,
    end_lsn: int | None = None,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> str | None:
    """The first segment missing from ``present`` between ``start_lsn`` and the end, or None.

    Without ``end_lsn`` the chain must run without a hole from the start segment to the
    newest segment of ``timeline`` in ``present`` (which must hold the start segment).

    Args:
        present: segment names available (other timelines are ignored).
        timeline: the timeline the chain runs on.
        start_lsn: where replay starts (a base backup's start LSN).
        end_lsn: where replay must reach; None for "as far as the archive goes".
        segment_size: bytes per segment.

    """
    if end_lsn is None:
        on_timeline = [
            parse_segment_name(n, segment_size)[1]
            for n in present
            if is_segment_name(n) and parse_segment_name(n, segment_size)[0] == timeline
        ]
        first = start_lsn // segment_size
        newest = max((n for n in on_timeline if n >= first), default=first)
        wanted = [segment_name(timeline, n, segment_size) for n in range(first, newest + 1)]
    else:
        wanted = segments_between(timeline, start_lsn, end_lsn, segment_size)
    return next((name for name in wanted if name not in present), None)


def history_name(timeline: int) -> str:
    """The file name of ``timeline``'s history file (``00000002.history``)."""
    return f"{timeline:08X}.history"


@dataclass(frozen=True)
class TimelineSpan:
    """One timeline of a lineage: where it begins, and where the next one branches off."""

    timeline: int
    begins: int  # LSN where this timeline starts (0 for the first)
    ends: int | None  # LSN where the next timeline of the lineage starts; None: the newest


def parse_history(text: str, timeline: int) -> tuple[TimelineSpan, ...]:
    """Read the history file of ``timeline`` into its lineage, oldest timeline first.

    Each line of a history file names an ancestor timeline and the LSN where its child
    branched off (``1<TAB>0/3000060<TAB>reason``); the timeline itself comes last.

    Raises:
        ConfigError: a line is not ``parent TAB switch-LSN ...``, or the timelines or
            switch points do not increase.

    """
    spans: list[TimelineSpan] = []
    begins = 0
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            parent, switch = int(fields[0]), parse_lsn(fields[1])
        except (ValueError, IndexError, ConfigError) as exc:
            raise ConfigError(
                f"line {number} of {history_name(timeline)} is not 'timeline switch-LSN "
                f"reason': {line!r}"
            ) from exc
        if (spans and parent <= spans[-1].timeline) or parent >= timeline or switch < begins:
            raise ConfigError(
                f"{history_name(timeline)} line {number}: timelines and switch points must increase"
            )
        spans.append(TimelineSpan(parent, begins, switch))
        begins = switch
    spans.append(TimelineSpan(timeline, begins, None))
    return tuple(spans)


@dataclass(frozen=True)
class ControlData:
    """The facts of ``pg_controldata`` a recovery needs."""

    system_identifier: str
    timeline: int
    checkpoint_lsn: int
    segment_size: int
    state: str


def parse_controldata(text: str) -> ControlData:
    """Read ``pg_controldata`` output (``C`` locale).

    Raises:
        ConfigError: a required line is missing.

    """
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        return ControlData(
            system_identifier=fields["Database system identifier"],
            timeline=int(fields["Latest checkpoint's TimeLineID"]),
            checkpoint_lsn=parse_lsn(fields["Latest checkpoint location"]),
            segment_size=int(fields["Bytes per WAL segment"]),
            state=fields["Database cluster state"],
        )
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"unexpected pg_controldata output (missing {exc})") from exc


def controldata(binaries: PgBinaries, datadir: Path) -> ControlData:
    """Run ``pg_controldata`` on ``datadir``.

    Raises:
        ToolError: the tool failed (no such data directory, unreadable pg_control).

    """
    out = run(
        [binaries.tool("pg_controldata"), "-D", datadir], timeout=30, env={"LC_ALL": "C"}
    ).stdout
    return parse_controldata(out)


@dataclass(frozen=True)
class CommitRecord:
    """One transaction commit found in the WAL."""

    xid: int
    lsn: int
    committed_at: datetime


def parse_commits(text: str) -> list[CommitRecord]:
    """Commit records in ``pg_waldump`` output, in WAL order."""
    found = []
    for match in _COMMIT_RE.finditer(text):
        committed_at = datetime.fromisoformat(match.group(3)).replace(tzinfo=UTC)
        found.append(CommitRecord(int(match.group(1)), parse_lsn(match.group(2)), committed_at))
    return found


def waldump_commits(
    binaries: PgBinaries, wal_dir: Path, first_segment: str, last_segment: str | None = None
) -> list[CommitRecord]:
    """Transaction commits in the staged segments ``first_segment`` .. ``last_segment``.

    ``pg_waldump`` stops with an error at the end of valid WAL (a zero-filled tail); what it
    printed before that is still returned.

    Raises:
        ToolError: the tool could not run at all.

    """
    argv: list[str | Path] = [
        binaries.tool("pg_waldump"),
        "--rmgr=Transaction",
        "--path",
        wal_dir,
        first_segment,
    ]
    if last_segment:
        argv.append(last_segment)
    # TZ=UTC: commit times print in the tool's local zone, and the parser expects UTC.
    result = run(argv, timeout=120, check=False, env={"TZ": "UTC"})
    return parse_commits(result.stdout)
