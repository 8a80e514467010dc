"""The context-manager protocol every throwaway server shares."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Throwaway:
    """A server with ``start`` / ``stop`` / ``remove``, usable as a context manager.

    Entering starts it, and stops whatever came up if starting fails; leaving removes it.
    Cleanup never lives in ``__del__``.
    """

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
