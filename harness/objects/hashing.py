"""Reading streams in bounded pieces while hashing every byte (SHA-256)."""

from __future__ import annotations

import hashlib
from typing import IO

# Streams are read in pieces this big: what a read holds besides the buffer it fills.
CHUNK = 256 << 10


class HashingReader:
    """A read-only file object over a stream that hashes and counts every byte read."""

    def __init__(self, body: IO[bytes]) -> None:
        """Wrap ``body`` (a botocore StreamingBody or any binary stream)."""
        self._body = body
        self._sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all when negative), hashing them."""
        data = self._body.read() if n is None or n < 0 else self._body.read(n)
        self._sha.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        """SHA-256 of everything read so far."""
        return self._sha.hexdigest()


def hash_stream(body: IO[bytes]) -> tuple[str, int]:
    """SHA-256 and size of a stream, read in pieces (never whole)."""
    reader = HashingReader(body)
    while reader.read(CHUNK):
        pass
    return reader.hexdigest(), reader.size


def fill(reader: HashingReader, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``reader`` piece by piece; the bytes filled (fewer at the end)."""
    filled = 0
    # Released on return: the caller may then resize the buffer.
    with memoryview(buffer) as view:
        while filled < len(buffer) and (piece := reader.read(min(CHUNK, len(buffer) - filled))):
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
    return filled
