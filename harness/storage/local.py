"""An object store in a local directory, with atomic writes (temp name, then rename).

A local directory may have been prepared by someone else (a backup set copied from a share,
a bucket synced to disk), so it is read as untrusted: every key is checked before it becomes
a path, and only regular files are objects. A symbolic link or a special file (FIFO, device)
anywhere below the root is refused rather than followed; a FIFO would block a reader forever.

Copies cost a full write of every byte, so two moves avoid them where that is safe:
:meth:`LocalObjectStore.adopt_file` stores a file the caller gives up (a staged backup) as a
second name of the same inode, and :meth:`LocalObjectStore.link_out` hands a reader the
stored object's inode itself. A hard link pins the inode: renaming, replacing or deleting
the stored file afterwards does not change what the link holds, so the bytes a reader
hashed are the bytes it uses. It does not stop a write *into* the file by someone allowed to
write it: ``link_out`` therefore links only files of this user that no one else may write,
and copies everything else.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Callable
from datetime import datetime
from io import BufferedReader
from pathlib import Path

from harness.errors import ConfigError, ObjectNotFound, StorageError, UnsafeObjectError
from harness.storage.base import ObjectInfo, require_key, shown

_TMP_PREFIX = ".tmp-"


class LocalObjectStore:
    """Keys map to files below ``root``; ``/`` in a key is a directory separator."""

    def __init__(self, root: Path) -> None:
        """Use ``root``; it is created by the first write, never by reading."""
        self.root = root

    @property
    def location(self) -> str:
        """The directory, printable."""
        return str(self.root)

    def _path(self, key: str) -> Path:
        require_key(key, str(self.root))
        path = self.root.joinpath(*key.split("/"))
        # Every directory on the way must be a real one: a symbolic link would lead out.
        current = self.root
        for part in key.split("/")[:-1]:
            current = current / part
            if current.is_symlink():
                raise self._unsafe(key, f"{part} is a symbolic link")
        return path

    def _unsafe(self, key: str, why: str) -> UnsafeObjectError:
        return UnsafeObjectError(
            f"refusing {shown(key)} in {self.root}: {why}; a store holds regular files only"
        )

    def put_file(self, key: str, path: Path, *, lock_until: datetime | None = None) -> None:
        """Copy ``path`` in under ``key`` atomically.

        Raises:
            ConfigError: ``lock_until`` was given (a directory has no Object Lock).
            UnsafeObjectError: the key is not safe.
            StorageError: ``path`` cannot be read or the copy cannot be written.

        """
        self._refuse_lock(lock_until)
        dest = self._path(key)
        self._write(key, dest, lambda tmp: shutil.copyfile(path, tmp))

    def put_bytes(self, key: str, data: bytes, *, lock_until: datetime | None = None) -> None:
        """Write ``data`` under ``key`` atomically (errors as :meth:`put_file`)."""
        self._refuse_lock(lock_until)
        dest = self._path(key)
        self._write(key, dest, lambda tmp: tmp.write_bytes(data))

    def get_file(self, key: str, path: Path, *, version_id: str | None = None) -> None:
        """Copy ``key`` out to ``path`` atomically.

        Raises:
            ObjectNotFound: no such key.
            UnsafeObjectError: the key is not safe, or names a link or special file.
            ConfigError: ``version_id`` was given (a directory keeps no versions).

        """
        self._refuse_versions(version_id)
        with self._open(key) as source:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _atomic_write(path, lambda tmp: _copy_from(source, tmp))
            except OSError as exc:
                raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def adopt_file(self, key: str, path: Path) -> None:
        """Store ``path`` under ``key`` as a hard link: for a file the caller gives up.

        The caller must not write to ``path`` again (a staged backup, discarded after it is
        published): the stored object is the same inode. Where a link is impossible (another
        filesystem, links refused) or ``path`` is not a regular file, it is copied as
        :meth:`put_file` does.

        Raises:
            UnsafeObjectError: the key is not safe.
            StorageError: neither a link nor a copy could be made.

        """
        dest = self._path(key)
        try:
            regular = stat.S_ISREG(path.lstat().st_mode)
        except OSError:
            regular = False
        if regular:
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                _atomic_write(dest, lambda tmp: _link(path, tmp))
            except OSError:
                pass  # copy instead, below
            else:
                return
        self.put_file(key, path)

    def link_out(self, key: str, path: Path) -> bool:
        """Give the new ``path`` the stored object's inode, where that is safe; else do nothing.

        The object is opened without following links and must be a regular file of this user
        that neither group nor others may write; the link must then be to the very inode
        opened (a name swapped in between is detected, and the link undone), so nothing done
        to the stored name after that check changes what ``path`` holds.

        Returns:
            True when ``path`` was linked; False when the caller must copy instead (another
            owner, writable by others, another filesystem, links refused).

        Raises:
            ObjectNotFound: no such key.
            UnsafeObjectError: the key is not safe, or names a link or special file.

        """
        with self._open(key) as source:
            info = os.fstat(source.fileno())
            if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return False
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.link(self._path(key), path, follow_symlinks=False)
                linked = path.lstat()
            except OSError:
                return False
            if (linked.st_dev, linked.st_ino) != (info.st_dev, info.st_ino):
                # The name was given another file between the check and the link.
                path.unlink()
                return False
        return True

    def get_bytes(self, key: str, *, version_id: str | None = None) -> bytes:
        """Read ``key`` (errors as :meth:`get_file`)."""
        self._refuse_versions(version_id)
        with self._open(key) as source:
            return source.read()

    def _open(self, key: str) -> BufferedReader:
        path = self._path(key)
        try:
            # O_NOFOLLOW: the file itself may not be a link; O_NONBLOCK: a FIFO must not hang
            # the open (it is refused just below).
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"{shown(key)} not found in {self.root}") from exc
        except OSError as exc:
            if path.is_symlink():
                raise self._unsafe(key, "it is a symbolic link") from exc
            raise StorageError(f"cannot read {shown(key)} in {self.root}: {exc.strerror}") from exc
        reader = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            reader.close()
            raise self._unsafe(key, "it is not a regular file")
        return reader

    def list(self, prefix: str = "", *, as_of: datetime | None = None) -> list[ObjectInfo]:
        """Every regular file below the root whose key starts with ``prefix``.

        Raises:
            UnsafeObjectError: a symbolic link or special file lies below the root.
            ConfigError: ``as_of`` was given (a directory keeps no versions).
            StorageError: the root is not a readable directory.

        """
        self._refuse_versions(as_of)
        if not self.root.exists():
            return []
        if not self.root.is_dir():
            raise StorageError(f"{self.root} is not a directory")
        found = []

        def fail(exc: OSError) -> None:
            raise StorageError(f"cannot list {self.root}: {exc.strerror or exc}") from exc

        for directory, dirs, files in os.walk(self.root, onerror=fail):
            base = Path(directory)
            for name in dirs:
                if (base / name).is_symlink():
                    key = (base / name).relative_to(self.root).as_posix()
                    raise self._unsafe(key, "it is a symbolic link")
            for name in files:
                if name.startswith(_TMP_PREFIX):
                    continue  # a write in progress, not an object yet
                path = base / name
                key = path.relative_to(self.root).as_posix()
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    raise self._unsafe(key, "it is a symbolic link")
                if not stat.S_ISREG(info.st_mode):
                    raise self._unsafe(key, "it is not a regular file")
                if key.startswith(prefix):
                    found.append(ObjectInfo(key=key, size=info.st_size))
        return sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {shown(key)} in {self.root}: {exc}") from exc

    def _write(self, key: str, dest: Path, write: Callable[[Path], object]) -> None:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(dest, write)
        except OSError as exc:
            raise StorageError(
                f"cannot store {shown(key)} in {self.root}: {exc.strerror or exc}"
            ) from exc

    def _refuse_lock(self, until: datetime | None) -> None:
        if until is not None:
            raise ConfigError(
                f"{self.root} is a local directory: Object Lock needs an s3:// location "
                "in a bucket with Object Lock enabled"
            )

    def _refuse_versions(self, marker: object) -> None:
        if marker is not None:
            raise ConfigError(
                f"{self.root} is a local directory and keeps no versions: reading as of a "
                "time needs an s3:// location in a versioned bucket"
            )


def _link(source: Path, tmp: Path) -> None:
    tmp.unlink()  # the placeholder _atomic_write made: a link needs a free name
    os.link(source, tmp, follow_symlinks=False)


def _copy_from(source: BufferedReader, tmp: Path) -> None:
    with tmp.open("wb") as out:
        shutil.copyfileobj(source, out)


def _atomic_write(dest: Path, write: Callable[[Path], object]) -> None:
    """Let ``write`` fill a temp file beside ``dest``, then rename it into place."""
    # Created with mode 0666 less the umask, as any other file the user writes (mkstemp
    # would make every stored object 0600).
    tmp = dest.parent / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
