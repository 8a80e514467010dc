"""Point-in-time recovery against real servers: archive, base backups, recovery targets.

One module-scoped history is recorded once (a few rows, a WAL switch between steps) and
recovered to many targets; each recovery starts its own throwaway server. Sabotage: a
missing or damaged WAL segment, a target after the end of the WAL, a timeline the archive
does not have or the backup cannot follow, a damaged base backup; and the repair of damaged
tables from a recovered copy.
"""

import gzip
import shutil
import tarfile
import time
from dataclasses import dataclass, replace

import pytest

from harness.errors import (
    BackupError,
    RecoveryTargetNotReached,
    RestoreError,
    TimelineError,
    WalGapError,
)
from harness.infra.pg_server import ServerSettings, ThrowawayServer
from harness.infra.recovery_server import RecoveryServers
from harness.pg.sql import connect, create_database
from harness.pg.wal import parse_lsn
from harness.sets.base_tar import check_and_pack
from harness.sets.physical import read_chain, read_manifest, take_base_backup
from harness.sets.pitr import RecoveryTarget, parse_target, recover
from harness.sets.table_copy import repair_tables
from harness.sets.wal_archive import read_archive, upload_wal_file
from harness.sets.wal_receive import CommandArchiver, StreamingArchiver, switch_wal
from harness.storage.local import LocalObjectStore
from harness.verify.data import table_digest


@dataclass
class History:
    store: LocalObjectStore
    template: object
    marks: dict
    major: int


def _sql(server, query, params=()):
    with connect(server.target(), autocommit=True) as conn:
        cur = conn.execute(query, params)
        row = cur.fetchone() if cur.description else None
    return row[0] if row else None


def _insert(server, step):
    """Insert one row in its own transaction; return its xid."""
    with connect(server.target()) as conn:
        xid = conn.execute("SELECT txid_current()").fetchone()[0]
        conn.execute("INSERT INTO t (step) VALUES (%s)", (step,))
        conn.commit()
    return xid


def _steps(server):
    with connect(server.target()) as conn:
        return [r[0] for r in conn.execute("SELECT step FROM t ORDER BY id")]


@pytest.fixture(scope="module")
def history(default_template, tmp_path_factory):
    base = tmp_path_factory.mktemp("pitr")
    store = LocalObjectStore(base / "store")
    major = default_template.binaries.major
    extra = (("summarize_wal", "on"),) if major >= 17 else ()
    primary = ThrowawayServer(
        default_template, workdir=base / "primary", settings=ServerSettings(extra=extra)
    )
    marks = {}
    with primary:
        archiver = StreamingArchiver(
            primary.target(), primary.binaries, store, spool=base / "spool"
        ).start()
        try:
            _sql(primary, "CREATE TABLE t (id serial PRIMARY KEY, step text)")
            _insert(primary, "base")
            take_base_backup(
                primary.target(),
                primary.binaries,
                store,
                prefix="base/full",
                workdir=base / "bb1",
            )
            _insert(primary, "one")
            marks["lsn_one"] = _sql(primary, "SELECT pg_current_wal_lsn()::text")
            marks["time_after_one"] = _sql(primary, "SELECT clock_timestamp()")
            _sql(primary, "SELECT pg_create_restore_point('after-one')::text")
            switch_wal(primary.target())
            marks["xid_two"] = _insert(primary, "two")
            switch_wal(primary.target())
            _insert(primary, "three")
            if major >= 17:
                take_base_backup(
                    primary.target(),
                    primary.binaries,
                    store,
                    prefix="base/incr",
                    workdir=base / "bb2",
                    incremental_from="base/full",
                )
            switch_wal(primary.target())
            # Never switched out: only the streamed partial tail holds this.
            _insert(primary, "four")
            _sql(primary, "SELECT pg_create_restore_point('end')::text")
            marks["end_lsn"] = _sql(primary, "SELECT pg_current_wal_flush_lsn()::text")
            time.sleep(0.3)  # pg_receivewal --synchronous flushes on receipt; let it arrive
        finally:
            marks["upload"] = archiver.stop(timeout=30)
    return History(store=store, template=default_template, marks=marks, major=major)


def _recover(
    history,
    tmp_path,
    target,
    *,
    set_prefix="base/full",
    action="promote",
    store=None,
    timeline="current",
):
    result = recover(
        store or history.store,
        set_prefix,
        target,
        servers=RecoveryServers(history.template),
        workdir=tmp_path / "recovery",
        action=action,
        timeout=120,
        timeline=timeline,
    )
    try:
        return result, _steps(result.server)
    finally:
        result.server.remove()


def test_archive_holds_segments_with_checksums_and_the_partial_tail(history):
    archive = read_archive(history.store)
    assert len(archive.segments(1)) >= 3
    assert any(f.is_partial for f in archive.files.values())
    assert all(len(f.sha256) == 64 and f.stored_size < f.size for f in archive.files.values())
    assert not history.marks["upload"].pending


def test_base_backup_records_its_wal_range(history):
    manifest = read_manifest(history.store, "base/full")
    assert manifest.backup_type == "full"
    assert parse_lsn(manifest.start_lsn) <= parse_lsn(manifest.stop_lsn)
    assert manifest.timeline == 1
    assert {a.kind for a in manifest.artifacts} == {"base", "pg-manifest"}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (lambda m: RecoveryTarget("lsn", m["lsn_one"]), ["base", "one"]),
        (lambda m: RecoveryTarget("name", "after-one"), ["base", "one"]),
        (lambda m: RecoveryTarget("xid", str(m["xid_two"]), inclusive=False), ["base", "one"]),
        (lambda m: RecoveryTarget("xid", str(m["xid_two"])), ["base", "one", "two"]),
        (
            lambda m: RecoveryTarget("time", m["time_after_one"].isoformat(), inclusive=False),
            ["base", "one"],
        ),
        (lambda m: RecoveryTarget("name", "end"), ["base", "one", "two", "three", "four"]),
    ],
    ids=["lsn", "name", "xid-before", "xid-inclusive", "time-before", "partial-tail"],
)
def test_recovery_reaches_the_target(history, tmp_path, target, expected):
    result, steps = _recover(history, tmp_path, target(history.marks))
    assert steps == expected
    assert result.timeline == 2  # promoted: a new timeline begins
    assert not result.paused


def test_pause_action_stays_in_recovery_at_the_target(history, tmp_path):
    result = recover(
        history.store,
        "base/full",
        parse_target(history.marks["lsn_one"]),
        servers=RecoveryServers(history.template),
        workdir=tmp_path / "r",
        action="pause",
        timeout=120,
    )
    try:
        assert result.paused
        assert _sql(result.server, "SELECT pg_is_in_recovery()") is True
        assert parse_lsn(result.lsn) >= parse_lsn(history.marks["lsn_one"])
        assert _steps(result.server) == ["base", "one"]
    finally:
        result.server.remove()


def test_missing_segment_is_named_before_anything_starts(history, tmp_path):
    copy = _copy_store(history, tmp_path)
    start = read_manifest(copy, "base/full").start_wal
    victim = next(n for n in read_archive(copy).segments(1) if n > start)
    for key in (f"wal/{victim}.gz", f"wal/{victim}.json"):
        copy.delete(key)
    with pytest.raises(WalGapError, match=victim) as caught:
        _recover(history, tmp_path, RecoveryTarget("name", "end"), store=copy)
    assert caught.value.segment == victim
    assert not (tmp_path / "recovery").exists()


def _copy_store(history, tmp_path):
    copy = LocalObjectStore(tmp_path / "store")
    shutil.copytree(history.store.root, copy.root, dirs_exist_ok=True)
    return copy


def test_a_recovery_timeline_the_archive_does_not_know_is_named(history, tmp_path):
    with pytest.raises(TimelineError, match=r"has no 00000005\.history.*timelines archived: 1"):
        recover(
            history.store,
            "base/full",
            RecoveryTarget("latest"),
            servers=RecoveryServers(history.template),
            workdir=tmp_path / "recovery",
            timeline="5",
        )
    assert not (tmp_path / "recovery").exists()


def test_a_set_whose_timeline_the_archive_lacks_is_named(history, tmp_path):
    # A base backup taken after a failover (timeline 2), next to the archive of the old
    # primary (timeline 1 only).
    copy = _copy_store(history, tmp_path)
    manifest = read_manifest(copy, "base/full")
    copy.put_bytes("base/full/manifest.json", replace(manifest, timeline=2).to_json().encode())
    with pytest.raises(TimelineError, match=r"taken on timeline 2.*no WAL of timeline 2") as caught:
        _recover(history, tmp_path, RecoveryTarget("latest"), store=copy)
    assert caught.value.timeline == 2
    assert "timelines archived: 1" in str(caught.value)
    assert not (tmp_path / "recovery").exists()


@pytest.mark.parametrize(
    ("timeline", "history_text", "cause"),
    [
        (
            "2",
            "1\t0/1000000\tno recovery target specified\n",
            "branched off timeline 1 at 0/1000000",
        ),
        ("3", "2\t0/9000000\tno recovery target specified\n", "does not descend from timeline 1"),
    ],
    ids=["branched-before-the-backup-ended", "another-lineage"],
)
def test_a_timeline_the_backup_cannot_follow_is_named(
    history, tmp_path, timeline, history_text, cause
):
    copy = _copy_store(history, tmp_path)
    path = tmp_path / f"{int(timeline):08X}.history"
    path.write_text(history_text)
    upload_wal_file(copy, "wal", path)
    with pytest.raises(TimelineError, match=cause):
        recover(
            copy,
            "base/full",
            RecoveryTarget("latest"),
            servers=RecoveryServers(history.template),
            workdir=tmp_path / "recovery",
            timeline=timeline,
        )
    assert not (tmp_path / "recovery").exists()


def test_recovery_follows_a_later_timeline(history, tmp_path):
    # A copy recovered to "one" and promoted starts timeline 2 and archives into the same
    # archive; timeline 1 (the old primary) went on to "two" ... "four" meanwhile.
    copy = _copy_store(history, tmp_path)
    first = recover(
        copy,
        "base/full",
        RecoveryTarget("lsn", history.marks["lsn_one"]),
        servers=RecoveryServers(history.template),
        workdir=tmp_path / "first",
        timeline="current",
        timeout=120,
    )
    try:
        assert first.timeline == 2
        archiver = StreamingArchiver(
            first.server.target(),
            first.server.binaries,
            copy,
            spool=tmp_path / "spool-2",
            slot="timeline_two",
        ).start()
        try:
            _insert(first.server, "five")
            switch_wal(first.server.target())
            _insert(first.server, "six")
        finally:
            archiver.stop(timeout=30)
    finally:
        first.server.remove()
    assert "00000002.history" in read_archive(copy).files
    for wanted in ("latest", "2"):
        result, steps = _recover(
            history, tmp_path / wanted, RecoveryTarget("latest"), store=copy, timeline=wanted
        )
        assert steps == ["base", "one", "five", "six"]
        assert result.timeline == 3
    _, steps = _recover(history, tmp_path / "current", RecoveryTarget("latest"), store=copy)
    assert steps == ["base", "one", "two", "three", "four"]


@pytest.mark.parametrize("where", ["first", "middle"])
def test_damaged_segment_fails_its_checksum(history, tmp_path, where):
    copy = _copy_store(history, tmp_path)
    start = read_manifest(copy, "base/full").start_wal
    segments = read_archive(copy).segments(1)
    victim = start if where == "first" else segments[segments.index(start) + 2]
    copy.put_bytes(f"wal/{victim}.gz", gzip.compress(b"\0" * 16))
    # WAL is staged while the server replays it: a damaged segment in the middle must stop
    # the recovery, never look like the end of the archive (a "latest" recovery would
    # promote short of the data).
    with pytest.raises(WalGapError, match=f"{victim}.*SHA-256") as caught:
        _recover(history, tmp_path, RecoveryTarget("latest"), store=copy)
    assert caught.value.segment == victim


@pytest.mark.parametrize(
    "text", ["2999-01-01T00:00:00+00:00", "name:never-created"], ids=["time", "restore-point"]
)
def test_target_after_the_end_of_wal_is_reported(history, tmp_path, text):
    beyond = parse_target(text)
    with pytest.raises(RecoveryTargetNotReached, match="recovery ended before") as caught:
        _recover(history, tmp_path, beyond)
    assert "archived WAL ends before it" in str(caught.value)


def test_lsn_beyond_the_archive_names_the_missing_segment(history, tmp_path):
    beyond = RecoveryTarget("lsn", "FF/0")
    with pytest.raises(WalGapError, match="missing from the archive"):
        _recover(history, tmp_path, beyond)


def test_lsn_before_the_backup_is_consistent_is_refused(history, tmp_path):
    with pytest.raises(RestoreError, match="before the end of base backup"):
        _recover(history, tmp_path, RecoveryTarget("lsn", "0/1"))


def test_incremental_chain_is_combined_on_pg17(history, tmp_path):
    if history.major < 17:
        pytest.skip(f"incremental backups need PostgreSQL 17+, this is {history.major}")
    chain = read_chain(history.store, "base/incr")
    assert [m.backup_type for _, m in chain] == ["full", "incremental"]
    _, steps = _recover(history, tmp_path, RecoveryTarget("immediate"), set_prefix="base/incr")
    assert steps == ["base", "one", "two", "three"]
    _, steps = _recover(
        history, tmp_path / "2", RecoveryTarget("name", "end"), set_prefix="base/incr"
    )
    assert steps == ["base", "one", "two", "three", "four"]


def test_archive_command_mode_archives_and_recovers(default_template, tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    archiver = CommandArchiver(store, spool=tmp_path / "spool")
    server = ThrowawayServer(
        default_template,
        workdir=tmp_path / "primary",
        settings=ServerSettings(extra=archiver.settings(archive_timeout=1)),
    )
    with server:
        archiver.start()
        try:
            _sql(server, "CREATE TABLE t (id serial PRIMARY KEY, step text)")
            _insert(server, "base")
            take_base_backup(
                server.target(), server.binaries, store, prefix="base/b", workdir=tmp_path / "bb"
            )
            _insert(server, "after")
            _sql(server, "SELECT pg_create_restore_point('p')::text")
            switch_wal(server.target())
            deadline = time.monotonic() + 30
            wanted = _sql(server, "SELECT pg_walfile_name(pg_current_wal_lsn())")
            while time.monotonic() < deadline and not any(
                n >= wanted for n in read_archive(store).segments(1)
            ):
                switch_wal(server.target())
                time.sleep(0.2)
        finally:
            report = archiver.stop(timeout=30)
    assert report.uploaded
    assert not report.pending
    result = recover(
        store,
        "base/b",
        RecoveryTarget("name", "p"),
        servers=RecoveryServers(default_template),
        workdir=tmp_path / "r",
        timeout=120,
    )
    try:
        assert _steps(result.server) == ["base", "after"]
    finally:
        result.server.remove()


def test_uploader_close_is_bounded_when_the_store_is_gone(tmp_path):
    from harness.sets.wal_receive import WalUploader

    class GoneStore(LocalObjectStore):
        def put_file(self, key, path, **kwargs):
            from harness.errors import StorageUnreachable

            raise StorageUnreachable("the endpoint does not answer")

    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "000000010000000000000001").write_bytes(b"\0" * 1024)
    uploader = WalUploader(GoneStore(tmp_path / "s"), "wal", spool, attempts=2).start()
    report = uploader.close(timeout=3)
    assert report.pending == ("000000010000000000000001",)
    assert report.errors
    assert "does not answer" in report.errors[0]


REPAIR_SCHEMA = """
CREATE TABLE parent (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    shout text GENERATED ALWAYS AS (upper(name)) STORED,
    touched timestamptz NOT NULL
);
CREATE TABLE child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parent, note text);
INSERT INTO parent (name, touched)
    SELECT 'p' || g, timestamptz '2026-01-01' + g * interval '1 minute'
    FROM generate_series(1, 50) g;
INSERT INTO child (parent_id, note) SELECT g % 50 + 1, 'c' || g FROM generate_series(1, 100) g;
-- A trigger that would rewrite every repaired row if it ran during the repair.
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN NEW.touched := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER touch BEFORE INSERT OR UPDATE ON parent FOR EACH ROW EXECUTE FUNCTION touch();
"""


def _app_with_rows(pg_server_factory, name):
    target = pg_server_factory(name).target("app")
    create_database(target, "app")
    with connect(target) as conn:
        conn.execute(REPAIR_SCHEMA)
    return target


def test_damaged_tables_are_repaired_from_a_recovered_copy(pg_server_factory):
    copy = _app_with_rows(pg_server_factory, "copy")
    live = _app_with_rows(pg_server_factory, "live")
    with connect(live) as conn:
        conn.execute("UPDATE parent SET name = 'garbled' WHERE id % 3 = 0")
        conn.execute("DELETE FROM child WHERE id <= 10")
        conn.execute("CREATE TABLE untouched AS SELECT 1 AS n")
    result = repair_tables(copy, live, ["public.parent", "public.child"])
    assert all(c.ok for c in result.checks), result.checks
    with connect(copy) as a, connect(live) as b:
        for table in ("parent", "child"):
            assert table_digest(a, "public", table) == table_digest(b, "public", table)
        # The damaged rows were kept aside, and the rest of the live database is untouched.
        kept = b.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_drill\\_kept\\_%'"
        ).fetchone()
        assert kept == (2,)
        assert b.execute("SELECT n FROM untouched").fetchone() == (1,)
    assert [t.rows_before for t in result.tables] == [50, 90]


def test_a_repair_that_cannot_finish_changes_nothing(pg_server_factory):
    copy = _app_with_rows(pg_server_factory, "copy")
    live = _app_with_rows(pg_server_factory, "live")
    with connect(live) as conn:
        conn.execute("DELETE FROM child WHERE id <= 10")
    with pytest.raises(RestoreError, match=r"public\.gone does not exist in the recovered copy"):
        repair_tables(copy, live, ["public.child", "public.gone"])
    with connect(live) as conn:
        assert conn.execute("SELECT count(*) FROM child").fetchone() == (90,)
        kept = conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_drill%'")
        assert kept.fetchone() == (0,)


@pytest.fixture
def base_tar(history, tmp_path):
    """The full backup's tar and PostgreSQL's manifest, as pg_basebackup wrote them."""
    history.store.get_file("base/full/base.tar.gz", tmp_path / "base.tar.gz")
    history.store.get_file("base/full/backup_manifest", tmp_path / "backup_manifest")
    with gzip.open(tmp_path / "base.tar.gz") as src, (tmp_path / "base.tar").open("wb") as out:
        shutil.copyfileobj(src, out)
    return tmp_path / "base.tar", tmp_path / "backup_manifest"


def test_the_base_tar_is_checked_against_postgres_manifest(base_tar, tmp_path):
    tar_path, manifest = base_tar
    assert check_and_pack(tar_path, manifest, tmp_path / "again.tar.gz") > 100
    # What was compressed is exactly the tar that was read.
    assert gzip.decompress((tmp_path / "again.tar.gz").read_bytes()) == tar_path.read_bytes()


def test_a_damaged_file_in_the_base_tar_is_caught(base_tar, tmp_path):
    tar_path, manifest = base_tar
    with tarfile.open(tar_path) as tar:
        member = next(m for m in tar if m.isfile() and m.size > 100)
    data = bytearray(tar_path.read_bytes())
    data[member.offset_data + 50] ^= 0xFF
    tar_path.write_bytes(bytes(data))
    with pytest.raises(
        BackupError, match=f"{member.name.removeprefix('./')} in the backup differs"
    ):
        check_and_pack(tar_path, manifest, tmp_path / "out.tar.gz")


def test_an_altered_manifest_is_caught(base_tar, tmp_path):
    tar_path, manifest = base_tar
    manifest.write_bytes(manifest.read_bytes().replace(b'"Size": 3', b'"Size": 4', 1))
    with pytest.raises(BackupError, match="fails its own checksum"):
        check_and_pack(tar_path, manifest, tmp_path / "out.tar.gz")


def test_a_file_missing_from_the_base_tar_is_caught(base_tar, tmp_path):
    tar_path, manifest = base_tar
    kept = tmp_path / "short.tar"
    with tarfile.open(tar_path) as src, tarfile.open(kept, "w") as out:
        for member in src:
            if member.name.removeprefix("./") != "PG_VERSION":
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
    with pytest.raises(BackupError, match="missing from the backup, first PG_VERSION"):
        check_and_pack(kept, manifest, tmp_path / "out.tar.gz")
