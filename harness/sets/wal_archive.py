"""The WAL archive in an object store: compressed segments, each with a checksum sidecar.

Layout below a prefix (``wal`` by default)::

    wal/000000010000000000000003.gz      the segment, compressed
    wal/000000010000000000000003.json    its sidecar: raw size, SHA-256, codec, when archived
    wal/000000010000000000000004.partial.gz (+ .json)   the streamed tail, on shutdown
    wal/00000002.history.gz (+ .json)    timeline history files

The sidecar is written after the data object, so a sidecar always names a complete object.
Only the :class:`~harness.storage.base.ObjectStore` protocol is used (``put_file``,
``get_file``, ``put_bytes``, ``get_bytes``, ``list``).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import importlib.util
import json
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from harness.errors import ManifestError, StorageError, WalGapError
from harness.pg.wal import (
    DEFAULT_SEGMENT_SIZE,
    TimelineSpan,
    format_lsn,
    is_history_name,
    is_segment_name,
    parse_segment_name,
    segment_name,
)
from harness.redact import get_logger
from harness.storage.base import ObjectStore

log = get_logger(__name__)

SIDECAR_FORMAT = "wal-sidecar/1"
PARTIAL = ".partial"
_CHUNK = 1 << 20
_EXTENSIONS = {"gzip": ".gz", "zstd": ".zst"}


def available_codecs() -> tuple[str, ...]:
    """Compression codecs usable here: gzip always, zstd where the stdlib has it (3.14+)."""
    has_zstd = importlib.util.find_spec("compression") is not None and (
        importlib.util.find_spec("compression.zstd") is not None
    )
    return ("gzip", "zstd") if has_zstd else ("gzip",)


def _open_codec(codec: str, path: Path, mode: str) -> IO[bytes]:
    if codec == "gzip":
        # Level 1: WAL compresses well (zero-filled tails) and the uploader must keep up.
        return gzip.open(path, mode, compresslevel=1) if "w" in mode else gzip.open(path, mode)  # type: ignore[return-value]
    if codec == "zstd" and codec in available_codecs():
        module: Any = importlib.import_module("compression.zstd")
        return module.open(path, mode)  # type: ignore[no-any-return]
    raise StorageError(
        f"WAL codec {codec!r} is not available here; use one of {available_codecs()}"
    )


@dataclass(frozen=True)
class ArchivedFile:
    """One archived WAL file as its sidecar describes it."""

    name: str
    size: int
    sha256: str
    codec: str
    key: str
    stored_size: int
    archived_at: str
    format: str = SIDECAR_FORMAT

    @property
    def is_partial(self) -> bool:
        """True for the streamed, unfinished tail segment."""
        return self.name.endswith(PARTIAL)


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix else name


def _retrying(attempts: int) -> Retrying:
    # Bounded: a store that is gone must not hold an uploader (or a shutdown) forever.
    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        retry=retry_if_exception_type((StorageError, OSError)),
        reraise=True,
    )


def upload_wal_file(
    store: ObjectStore,
    prefix: str,
    path: Path,
    *,
    name: str | None = None,
    codec: str = "gzip",
    attempts: int = 5,
) -> ArchivedFile:
    """Compress one WAL file, upload it, then its sidecar.

    Args:
        store: the object store.
        prefix: the archive's key prefix.
        path: the local file (a finished segment, a history file, or a partial segment).
        name: the archived name (default: the file's name).
        codec: ``gzip`` (always available) or ``zstd``.
        attempts: tries per object before giving up.

    Raises:
        StorageError: the store kept failing for ``attempts`` tries.

    """
    name = name or path.name
    digest = hashlib.sha256()
    size = 0
    with tempfile.TemporaryDirectory(prefix="drill-wal-") as tmp:
        packed = Path(tmp) / (name + _EXTENSIONS[codec])
        with path.open("rb") as source, _open_codec(codec, packed, "wb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        entry = ArchivedFile(
            name=name,
            size=size,
            sha256=digest.hexdigest(),
            codec=codec,
            key=_join(prefix, packed.name),
            stored_size=packed.stat().st_size,
            archived_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        for attempt in _retrying(attempts):
            with attempt:
                store.put_file(entry.key, packed)
    sidecar = json.dumps(asdict(entry), sort_keys=True).encode()
    for attempt in _retrying(attempts):
        with attempt:
            store.put_bytes(_join(prefix, name + ".json"), sidecar)
    return entry


@dataclass(frozen=True)
class WalArchive:
    """What an archive prefix holds, read from its sidecars."""

    prefix: str
    files: dict[str, ArchivedFile]
    segment_size: int = DEFAULT_SEGMENT_SIZE

    def segments(self, timeline: int) -> list[str]:
        """Complete segments of ``timeline``, oldest first."""
        return sorted(
            n
            for n in self.files
            if is_segment_name(n) and parse_segment_name(n, self.segment_size)[0] == timeline
        )

    def newest(self, timeline: int) -> str | None:
        """The newest complete segment of ``timeline``."""
        found = self.segments(timeline)
        return found[-1] if found else None

    def chain(
        self,
        timeline: int,
        start_lsn: int,
        end_lsn: int | None = None,
        *,
        lineage: Sequence[TimelineSpan] = (),
    ) -> list[str]:
        """The files replay from ``start_lsn`` needs, checked for holes.

        Without ``end_lsn`` the chain runs to the newest segment or streamed partial tail of
        the last timeline (replaying the tail is what makes streaming's RPO near zero); a
        hole anywhere before it is a gap. Along a ``lineage`` (a timeline's history, see
        :func:`~harness.pg.wal.parse_history`) each segment is taken from the newest
        timeline that had begun by then, as PostgreSQL reads them; without one, every
        segment is on ``timeline``.

        Raises:
            WalGapError: a needed segment is not archived; the message names it.

        """
        spans = tuple(lineage) or (TimelineSpan(timeline, 0, None),)
        size = self.segment_size
        start = segment_name(timeline, start_lsn // size, size)
        if end_lsn is not None and end_lsn < start_lsn:
            raise WalGapError(
                f"the target {format_lsn(end_lsn)} lies before the backup's start "
                f"{format_lsn(start_lsn)}; pick an older base backup",
                segment=start,
                phase="plan",
            )
        # A streamed tail counts as the segment it will become; a hole before it is a gap.
        usable = {n for n in self.files if is_segment_name(n)} | {
            n.removesuffix(PARTIAL)
            for n in self.files
            if n.endswith(PARTIAL) and is_segment_name(n.removesuffix(PARTIAL))
        }
        first = start_lsn // size
        if end_lsn is not None:
            last = max(first, (max(end_lsn, 1) - 1) // size)
        else:
            # The newest segment archived along the lineage: on each timeline, only those
            # before the next one branched off count (the old primary may have gone on).
            ranges = {s.timeline: (s.begins // size, s.ends) for s in spans}
            along = [first]
            for name in usable:
                on, segno = parse_segment_name(name, size)
                if on in ranges:
                    begin, ends = ranges[on]
                    if segno >= begin and (ends is None or segno <= ends // size):
                        along.append(segno)
            last = max(along)

        def owner(segno: int) -> int:
            return max(s.timeline for s in spans if s.begins // size <= segno)

        wanted = [segment_name(owner(n), n, size) for n in range(first, last + 1)]
        gap = next((name for name in wanted if name not in usable), None)
        if gap is not None:
            on = parse_segment_name(gap, size)[0]
            newest = self.newest(on) or "none"
            raise WalGapError(
                f"WAL segment {gap} is missing from the archive at {self.prefix!r} "
                f"(timeline {on}, needed from {format_lsn(start_lsn)}"
                + (f" to {format_lsn(end_lsn)}" if end_lsn is not None else "")
                + f"; newest archived: {newest}); recovery cannot pass it: recover to "
                "an earlier target or restore the segment into the archive",
                segment=gap,
            )
        return wanted

    def timelines(self) -> list[int]:
        """Timelines the archive holds WAL (or a history file) of."""
        found = set()
        for name in self.files:
            bare = name.removesuffix(PARTIAL)
            if is_segment_name(bare):
                found.add(parse_segment_name(bare, self.segment_size)[0])
            elif is_history_name(name):
                found.add(int(name.split(".")[0], 16))
        return sorted(found)

    def has_wal_of(self, timeline: int) -> bool:
        """True when a segment (or streamed tail) of ``timeline`` is archived."""
        for name in self.files:
            bare = name.removesuffix(PARTIAL)
            if is_segment_name(bare) and parse_segment_name(bare, self.segment_size)[0] == timeline:
                return True
        return False

    def histories(self) -> list[str]:
        """Timeline history files in the archive."""
        return sorted(n for n in self.files if is_history_name(n))


def read_archive(
    store: ObjectStore, prefix: str = "wal", *, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> WalArchive:
    """Read every sidecar below ``prefix``.

    Raises:
        ManifestError: a sidecar is unreadable.
        StorageError: the store failed.

    """
    files: dict[str, ArchivedFile] = {}
    for info in store.list(_join(prefix, "")):
        if not info.key.endswith(".json"):
            continue
        try:
            entry = ArchivedFile(**json.loads(store.get_bytes(info.key)))
        except (ValueError, TypeError) as exc:
            raise ManifestError(f"WAL sidecar {info.key} is unreadable ({exc})") from exc
        files[entry.name] = entry
    return WalArchive(prefix=prefix, files=files, segment_size=segment_size)


def read_text(store: ObjectStore, archive: WalArchive, name: str) -> str:
    """A small archived file (a timeline history), decompressed and checksum-verified.

    Raises:
        WalGapError: the file is not archived, cannot be read, or fails its checksum.

    """
    entry = archive.files.get(name)
    if entry is None:
        raise WalGapError(f"{name} is not in the archive at {archive.prefix!r}", segment=name)
    with tempfile.TemporaryDirectory(prefix="drill-wal-") as tmp:
        staged = stage(store, archive, [name], Path(tmp), jobs=1)[0]
        return staged.read_text(encoding="utf-8", errors="replace")


def stage(
    store: ObjectStore,
    archive: WalArchive,
    names: Iterable[str],
    dest: Path,
    *,
    jobs: int = 4,
    progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Download, decompress and checksum WAL files into ``dest`` (for ``restore_command``).

    Files are fetched in order by ``jobs`` threads and each appears in ``dest`` under its
    name only once complete and checked (renamed into place), so a ``restore_command`` may
    take it while later ones are still on their way. A streamed partial tail is staged
    under its segment name: PostgreSQL replays what it holds and stops at its zero-filled
    end.

    Args:
        store: the object store.
        archive: the archive's sidecars.
        names: the files to stage, in replay order.
        dest: the staging directory.
        jobs: parallel downloads.
        progress: called with one line per staged file.
        cancel: once set, files not yet started are skipped.

    Raises:
        WalGapError: a file is missing or fails its checksum; the message names it.

    """
    dest.mkdir(parents=True, exist_ok=True)
    wanted = list(names)

    def fetch_one(name: str) -> Path | None:
        if cancel is not None and cancel.is_set():
            return None
        entry = archive.files.get(name) or archive.files.get(name + PARTIAL)
        if entry is None:
            raise WalGapError(f"WAL file {name} is not in the archive", segment=name)
        out = dest / name
        with tempfile.TemporaryDirectory(prefix="drill-wal-", dir=dest) as tmp:
            packed = Path(tmp) / "packed"
            try:
                for attempt in _retrying(3):
                    with attempt:
                        store.get_file(entry.key, packed)
            except StorageError as exc:
                raise WalGapError(
                    f"WAL file {entry.name} could not be read from the store: {exc}",
                    segment=name,
                ) from exc
            raw = Path(tmp) / "raw"
            # One pass: the digest is computed while decompressing, not by reading again.
            digest, size = hashlib.sha256(), 0
            with _open_codec(entry.codec, packed, "rb") as source, raw.open("wb") as out_f:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out_f.write(chunk)
            if digest.hexdigest() != entry.sha256 or size != entry.size:
                raise WalGapError(
                    f"WAL file {entry.name} in the archive fails its SHA-256 check "
                    "(damaged or replaced); recovery cannot use it",
                    segment=name,
                )
            raw.replace(out)
        return out

    staged: list[Path] = []
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        for path in pool.map(fetch_one, wanted):
            if path is None:
                continue
            staged.append(path)
            if progress:
                progress(f"staged {path.name}")
    finally:
        # After a failure, files not yet started are not fetched for nothing.
        pool.shutdown(wait=True, cancel_futures=True)
    return staged
