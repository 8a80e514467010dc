"""Recovery targets: where a point-in-time recovery stops.

A time (with a UTC offset), an LSN, a restore point's name, a transaction id, the first
consistent point (``immediate``), or the end of the archive (``latest``); each turns into
PostgreSQL's ``recovery_target_*`` settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from harness.errors import ConfigError
from harness.pg.wal import format_lsn, is_lsn, parse_lsn

_KINDS = ("time", "lsn", "name", "xid", "immediate", "latest")


@dataclass(frozen=True)
class RecoveryTarget:
    """Where recovery stops: a time, LSN, restore point name, transaction id, or the end."""

    kind: str
    value: str = ""
    inclusive: bool = True

    def __post_init__(self) -> None:
        """Refuse unknown kinds early, with the list of known ones."""
        if self.kind not in _KINDS:
            raise ConfigError(f"unknown recovery target kind {self.kind!r}; use one of {_KINDS}")

    def settings(self) -> list[tuple[str, str]]:
        """The ``recovery_target*`` settings for this target."""
        if self.kind == "immediate":
            return [("recovery_target", "immediate")]
        if self.kind == "latest":
            return []  # replay everything archived, then promote
        return [
            (f"recovery_target_{self.kind}", self.value),
            ("recovery_target_inclusive", "on" if self.inclusive else "off"),
        ]

    def describe(self) -> str:
        """One line for logs and reports."""
        if self.kind == "immediate":
            return "the end of the base backup (first consistent point)"
        if self.kind == "latest":
            return "the end of the archived WAL"
        where = "up to and including" if self.inclusive else "just before"
        return f"{where} {self.kind} {self.value}"


def parse_target(text: str, *, inclusive: bool = True) -> RecoveryTarget:
    """Read a ``--to`` value into a recovery target.

    An LSN (``0/3000060``), an xid (digits), an ISO time with a UTC offset,
    ``name:<restore point>``, ``immediate``, ``latest``, or any other text as a restore point name.

    Raises:
        ConfigError: a time without a UTC offset (ambiguous), or an empty value.

    """
    text = text.strip()
    if not text:
        raise ConfigError("empty recovery target; give a time, an LSN, an xid or a name")
    if text.startswith("name:"):
        return RecoveryTarget("name", text.removeprefix("name:"), inclusive)
    if text in ("immediate", "latest"):
        return RecoveryTarget(text)
    if is_lsn(text):
        return RecoveryTarget("lsn", format_lsn(parse_lsn(text)), inclusive)
    if text.isdigit():
        return RecoveryTarget("xid", text, inclusive)
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]", text):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ConfigError(f"cannot read the recovery time {text!r}: {exc}") from exc
        if moment.tzinfo is None:
            raise ConfigError(
                f"the recovery time {text!r} has no UTC offset; add one (e.g. +00:00)"
            )
        return RecoveryTarget("time", moment.isoformat(), inclusive)
    return RecoveryTarget("name", text, inclusive)


def time_target(moment: datetime, *, inclusive: bool = False) -> RecoveryTarget:
    """A time target (timezone-aware); by default stops just before ``moment``.

    Raises:
        ConfigError: ``moment`` has no timezone.

    """
    if moment.tzinfo is None:
        raise ConfigError("a recovery time needs a timezone")
    return RecoveryTarget("time", moment.isoformat(), inclusive)
