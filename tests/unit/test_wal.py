"""Pure WAL logic: LSNs, segment names, gap detection, tool output parsing, targets."""

from datetime import UTC, datetime

import pytest

from harness.errors import ConfigError, RecoveryTargetNotReached, TimelineError, WalGapError
from harness.pg.wal import (
    TimelineSpan,
    first_gap,
    format_lsn,
    is_segment_name,
    parse_commits,
    parse_controldata,
    parse_history,
    parse_lsn,
    parse_segment_name,
    segment_name,
    segment_of,
    segments_between,
)
from harness.sets.pitr import RecoveryTarget, explain_failure, parse_target
from harness.sets.timelines import parse_timeline
from harness.sets.wal_archive import ArchivedFile, WalArchive

MB16 = 16 * 1024 * 1024


def test_lsn_round_trip():
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("0/3000060")) == "0/3000060"
    with pytest.raises(ConfigError, match="not a WAL position"):
        parse_lsn("3000060")


def test_segment_names_roll_over_every_256_segments_of_16_mb():
    assert segment_name(1, 0xFF) == "0000000100000000000000FF"
    assert segment_name(1, 0x100) == "000000010000000100000000"
    assert parse_segment_name("000000020000000100000003") == (2, 0x103)
    assert segment_name(1, 3, 64 * 1024 * 1024) == "000000010000000000000003"
    assert segment_name(1, 64, 64 * 1024 * 1024) == "000000010000000100000000"


def test_segment_name_validation():
    assert is_segment_name("000000010000000000000003")
    assert not is_segment_name("000000010000000000000003.partial")
    assert not is_segment_name("00000002.history")
    with pytest.raises(ConfigError, match="not a valid segment"):
        parse_segment_name("000000010000000000000100")


def test_segment_of_and_range():
    assert segment_of(parse_lsn("0/3000060"), 1) == "000000010000000000000003"
    assert segments_between(1, parse_lsn("0/2000028"), parse_lsn("0/4000100")) == [
        "000000010000000000000002",
        "000000010000000000000003",
        "000000010000000000000004",
    ]
    # An end exactly on a boundary needs nothing of the next segment.
    assert segments_between(1, 2 * MB16, 3 * MB16) == ["000000010000000000000002"]


def test_first_gap_names_the_first_missing_segment():
    present = {segment_name(1, n) for n in (2, 3, 5, 6)}
    assert first_gap(present, 1, 2 * MB16) == segment_name(1, 4)
    assert first_gap(present, 1, 2 * MB16, end_lsn=3 * MB16 + 10) is None
    assert first_gap(present, 1, 5 * MB16) is None
    assert first_gap(present, 2, 2 * MB16) == segment_name(2, 2)  # other timeline: nothing


def _entry(name):
    return ArchivedFile(name, MB16, "0" * 64, "gzip", f"wal/{name}.gz", 10, "now")


def test_archive_chain_uses_the_partial_tail_and_reports_gaps():
    names = [segment_name(1, n) for n in (2, 3)] + [segment_name(1, 4) + ".partial"]
    archive = WalArchive("wal", {n: _entry(n) for n in names})
    assert archive.chain(1, 2 * MB16 + 40) == [segment_name(1, n) for n in (2, 3, 4)]
    holed = WalArchive("wal", {n: _entry(n) for n in (segment_name(1, 2), segment_name(1, 4))})
    with pytest.raises(WalGapError, match=segment_name(1, 3)) as caught:
        holed.chain(1, 2 * MB16 + 40)
    assert caught.value.segment == segment_name(1, 3)
    with pytest.raises(WalGapError, match=segment_name(1, 5)):
        holed.chain(1, 4 * MB16, end_lsn=5 * MB16 + 1)


def test_a_hole_before_the_partial_tail_is_a_gap():
    names = [segment_name(1, 3), segment_name(1, 5) + ".partial"]
    archive = WalArchive("wal", {n: _entry(n) for n in names})
    with pytest.raises(WalGapError, match=segment_name(1, 4)):
        archive.chain(1, 3 * MB16 + 40)


def test_parse_history_gives_the_lineage_oldest_first():
    text = (
        "1\t0/3000060\tno recovery target specified\n"
        "\n"
        "2\t0/5000000\tbefore 2026-11-02 10:00:00+00\n"
    )
    assert parse_history(text, 3) == (
        TimelineSpan(1, 0, 0x3000060),
        TimelineSpan(2, 0x3000060, 0x5000000),
        TimelineSpan(3, 0x5000000, None),
    )
    assert parse_history("", 1) == (TimelineSpan(1, 0, None),)


@pytest.mark.parametrize(
    "text",
    ["1 nowhere reason\n", "2\t0/1\tx\n1\t0/2\ty\n", "3\t0/1\tx\n"],
    ids=["bad-lsn", "decreasing", "not-an-ancestor"],
)
def test_a_broken_history_file_is_refused(text):
    with pytest.raises(ConfigError, match=r"00000003\.history"):
        parse_history(text, 3)


def test_chain_follows_the_lineage_across_a_timeline_switch():
    # Timeline 2 branched off timeline 1 inside segment 4: PostgreSQL reads segment 4 and
    # later from timeline 2, whose copy of segment 4 holds timeline 1's WAL up to the switch.
    lineage = (TimelineSpan(1, 0, 4 * MB16 + 100), TimelineSpan(2, 4 * MB16 + 100, None))
    names = [segment_name(1, n) for n in (2, 3)]
    names += [segment_name(1, 4) + ".partial", segment_name(1, 5), segment_name(1, 6)]
    names += [segment_name(2, n) for n in (4, 5)] + [segment_name(2, 6) + ".partial"]
    archive = WalArchive("wal", {n: _entry(n) for n in names})
    expected = [segment_name(1, 2), segment_name(1, 3)] + [segment_name(2, n) for n in (4, 5, 6)]
    assert archive.chain(1, 2 * MB16 + 40, lineage=lineage) == expected
    assert archive.chain(1, 2 * MB16 + 40) == [segment_name(1, n) for n in (2, 3, 4, 5, 6)]
    # The old primary's segments after the switch are not on the lineage: a hole on
    # timeline 2 is a gap even though timeline 1 has that segment number.
    del archive.files[segment_name(2, 5)]
    with pytest.raises(WalGapError, match=segment_name(2, 5)):
        archive.chain(1, 2 * MB16 + 40, lineage=lineage)


def test_timelines_held_by_the_archive():
    names = [segment_name(1, 2), segment_name(3, 7) + ".partial", "00000002.history"]
    archive = WalArchive("wal", {n: _entry(n) for n in names})
    assert archive.timelines() == [1, 2, 3]
    assert archive.has_wal_of(3)
    assert not archive.has_wal_of(2)


@pytest.mark.parametrize(
    ("text", "value"),
    [("current", "current"), ("LATEST", "latest"), ("02", "2")],
    ids=["current", "latest", "number"],
)
def test_parse_timeline(text, value):
    assert parse_timeline(text) == value


@pytest.mark.parametrize(
    "text", ["0", "-1", "newest", ""], ids=["zero", "negative", "word", "empty"]
)
def test_a_bad_timeline_is_refused(text):
    with pytest.raises(ConfigError, match="not 'current', 'latest' or a timeline number"):
        parse_timeline(text)


def test_postgres_reasons_for_a_failed_recovery_are_named():
    target = RecoveryTarget("name", "p")
    log = (
        "2026-11-02 LOG:  starting\n2026-11-02 FATAL:  recovery target timeline 7 does not exist\n"
    )
    error = explain_failure(log, target)
    assert isinstance(error, TimelineError)
    assert error.timeline == 7
    assert "recovery target timeline 7 does not exist" in str(error)
    child = "FATAL:  requested timeline 3 is not a child of this server's history"
    assert isinstance(explain_failure(child, target), TimelineError)
    ended = "FATAL:  recovery ended before configured recovery target was reached"
    assert isinstance(explain_failure(ended, target), RecoveryTargetNotReached)
    assert explain_failure("FATAL:  could not open file", target) is None


def test_parse_controldata():
    text = (
        "pg_control version number:            1700\n"
        "Database system identifier:           7300000000000000001\n"
        "Database cluster state:               in production\n"
        "Latest checkpoint location:           0/2000080\n"
        "Latest checkpoint's TimeLineID:       3\n"
        "Bytes per WAL segment:                16777216\n"
    )
    data = parse_controldata(text)
    assert (data.timeline, data.checkpoint_lsn, data.segment_size) == (3, 0x2000080, MB16)
    with pytest.raises(ConfigError, match="unexpected pg_controldata"):
        parse_controldata("nothing here")


def test_parse_commits_from_waldump():
    text = (
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        745, lsn: 0/03000110, "
        "prev 0/030000D8, desc: COMMIT 2026-11-02 10:00:01.123456 UTC\n"
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        746, lsn: 0/03000190, "
        "prev 0/03000150, desc: COMMIT 2026-11-02 10:00:02.000001 UTC; inval msgs: catcache 1\n"
    )
    commits = parse_commits(text)
    assert [(c.xid, c.lsn) for c in commits] == [(745, 0x3000110), (746, 0x3000190)]
    assert commits[0].committed_at == datetime(2026, 11, 2, 10, 0, 1, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("0/3000060", "lsn", "0/3000060"),
        ("745", "xid", "745"),
        ("2026-11-02T10:00:00+00:00", "time", "2026-11-02T10:00:00+00:00"),
        ("name:745", "name", "745"),
        ("before-migration", "name", "before-migration"),
        ("immediate", "immediate", ""),
    ],
    ids=["lsn", "xid", "time", "name-prefix", "name", "immediate"],
)
def test_parse_target(text, kind, value):
    target = parse_target(text)
    assert (target.kind, target.value) == (kind, value)


def test_time_without_offset_is_refused():
    with pytest.raises(ConfigError, match="no UTC offset"):
        parse_target("2026-11-02 10:00:00")


def test_target_settings_just_before():
    settings = dict(RecoveryTarget("xid", "745", inclusive=False).settings())
    assert settings == {"recovery_target_xid": "745", "recovery_target_inclusive": "off"}
    with pytest.raises(ConfigError, match="unknown recovery target kind"):
        RecoveryTarget("epoch", "1")
