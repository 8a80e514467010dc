"""The context-manager protocol every throwaway server shares."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self


class Throwaway:
    """A server with ``start`` / ``stop`` / ``remove``, usable as a context manager.

    Entering starts it, and stops whatever came up if starting fails; leaving removes it.
    Cleanup never lives in ``__del__``.
    """

    log_path: Path  # set by servers that write a log file

    def log_text(self) -> str:
        """Everything the server logged so far ("" when there is no log, or none yet)."""
        path: Path | None = getattr(self, "log_path", None)
        if path is None:
            return ""
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> Self:
        """Start the server."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        raise NotImplementedError

    def remove(self) -> None:
        """Stop the server and delete its files."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        """Start; on failure stop whatever came up and re-raise."""
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Remove the server."""
        self.remove()
