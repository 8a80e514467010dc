"""A base backup in tar format, checked against PostgreSQL's manifest while it is compressed.

``pg_basebackup --format=tar`` writes the data directory as one ``base.tar`` (one file
written, not thousands) with ``backup_manifest`` beside it, which holds the SHA-256 of every
file and a checksum of itself. :func:`check_and_pack` reads the tar once: each member is
checked against the manifest (what ``pg_verifybackup`` does for a plain copy; before
PostgreSQL 18 it cannot read a tar) while the very bytes read are gzip-compressed into the
artifact that is published. Incremental backups are checked the same way (their
``INCREMENTAL.*`` files are in the manifest too). :func:`extract` unpacks one for recovery.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import queue
import tarfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.errors import BackupError, RestoreError

_CHUNK = 1 << 20
_CHECKSUM_KEY = b'"Manifest-Checksum"'


@dataclass(frozen=True)
class _Expected:
    size: int
    algorithm: str
    checksum: str


def read_manifest_files(path: Path) -> dict[str, _Expected]:
    """The files ``backup_manifest`` lists, after checking the manifest's own checksum.

    Raises:
        BackupError: the manifest is unreadable, altered, or lists no SHA-256 checksums.

    """
    text = path.read_bytes()
    cut = text.rfind(_CHECKSUM_KEY)
    try:
        body = json.loads(text)
        stated = str(body["Manifest-Checksum"])
        files = body["Files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(
            f"{path} is not a readable backup manifest ({exc})", phase="verify"
        ) from exc
    # PostgreSQL's manifest checksum covers every byte before its own line.
    if cut < 0 or hashlib.sha256(text[:cut]).hexdigest() != stated:
        raise BackupError(f"{path} fails its own checksum: it was altered", phase="verify")
    expected = {}
    for entry in files:
        name = entry.get("Path")
        if name is None:  # a name that is not UTF-8 is hex-encoded
            name = bytes.fromhex(entry["Encoded-Path"]).decode("utf-8", "surrogateescape")
        algorithm = str(entry.get("Checksum-Algorithm", "NONE"))
        if algorithm != "SHA256":
            raise BackupError(
                f"{path} lists {algorithm} checksums; take the backup with "
                "--manifest-checksums=SHA256",
                phase="verify",
            )
        expected[name] = _Expected(int(entry["Size"]), algorithm, str(entry["Checksum"]))
    return expected


class _Tee:
    """A read-only file whose every byte read is also compressed into ``sink``.

    Compression runs in a thread of its own (zlib releases the GIL): on two cores the
    checksums and the compression of the same bytes overlap.
    """

    def __init__(self, source: IO[bytes], sink: gzip.GzipFile) -> None:
        self._source, self._sink = source, sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._compress, name="base-tar-gzip", daemon=True)
        self._thread.start()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            if self._error is not None:
                raise BackupError(
                    f"compressing the base backup failed: {self._error}", phase="pack"
                )
            self._queue.put(data)
        return data

    def finish(self) -> None:
        """Wait until everything read is compressed.

        Raises:
            BackupError: the compression failed (a full disk ...).

        """
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise BackupError(f"compressing the base backup failed: {self._error}", phase="pack")

    def _compress(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                self._sink.write(data)
        except BaseException as exc:  # reported by finish(); keep draining so read() never blocks
            self._error = exc
            while self._queue.get() is not None:
                pass


def check_and_pack(tar_path: Path, manifest_path: Path, packed: Path) -> int:
    """Check every file of ``tar_path`` against the manifest and gzip it into ``packed``.

    Returns:
        How many files were checked.

    Raises:
        BackupError: a file's size or SHA-256 differs from the manifest, a listed file is
            missing, or the tar holds a file the manifest does not list.

    """
    expected = read_manifest_files(manifest_path)
    seen: set[str] = set()
    # Level 1: base backups compress well at once, and the backup window matters more.
    with tar_path.open("rb") as raw, gzip.open(packed, "wb", compresslevel=1) as out:
        tee = _Tee(raw, out)
        try:
            _check_members(tee, tar_path, expected, seen)
            # The tar's zero padding after its last member belongs to the artifact too.
            while tee.read(_CHUNK):
                pass
        finally:
            tee.finish()
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(
            f"{len(missing)} files of the manifest are missing from the backup, first {missing[0]}",
            phase="verify",
        )
    return len(seen)


def _check_members(
    tee: _Tee, tar_path: Path, expected: dict[str, _Expected], seen: set[str]
) -> None:
    reader: Any = tee  # tarfile wants a file object; reading is all it does here
    with tarfile.open(fileobj=reader, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.removeprefix("./")
            want = expected.get(name)
            if want is None:
                raise BackupError(
                    f"{name} is in the backup but not in its manifest", phase="verify"
                )
            digest, size = hashlib.sha256(), 0
            data = tar.extractfile(member)
            if data is None:
                raise BackupError(f"{name} cannot be read from {tar_path}", phase="verify")
            while chunk := data.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
            if size != want.size or digest.hexdigest() != want.checksum:
                raise BackupError(
                    f"{name} in the backup differs from its manifest (size {size}, "
                    f"manifest {want.size}, or its SHA-256): the copy is damaged",
                    phase="verify",
                )
            seen.add(name)


def extract(packed: Path, dest: Path) -> None:
    """Unpack a gzip-compressed base tar into ``dest`` (``data`` filter: nothing outside it).

    Stream mode: a seekable open would decompress the archive twice (once to list the
    members, once more to extract them).

    Raises:
        RestoreError: the archive is not a readable gzip-compressed tar.

    """
    try:
        with tarfile.open(packed, "r|gz") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise RestoreError(f"{packed.name} cannot be unpacked: {exc}", phase="base") from exc
