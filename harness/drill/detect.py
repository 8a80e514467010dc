"""Detecting what a disaster broke, from the fingerprint alone (no hints from the drill)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import PgTarget
from harness.errors import ConnectError
from harness.verify.checks import CheckResult
from harness.verify.compare import Fingerprint, compare, take_fingerprint


@dataclass(frozen=True)
class Detection:
    """What differs from the reference fingerprint."""

    reachable: bool
    damaged_tables: tuple[str, ...]
    catalog_sections: tuple[str, ...]
    detail: str

    @property
    def check(self) -> CheckResult:
        """A check that passes when the damage was detected at all."""
        found = not self.reachable or bool(self.damaged_tables or self.catalog_sections)
        return CheckResult("detect", ok=found, critical=True, detail=self.detail)


def detect(reference: Fingerprint, target: PgTarget) -> Detection:
    """Fingerprint ``target`` and say what differs from ``reference``."""
    try:
        now = take_fingerprint(target)
    except ConnectError as exc:
        return Detection(
            reachable=False,
            damaged_tables=(),
            catalog_sections=(),
            detail=f"database unreachable: {exc}",
        )
    result = compare(reference, now)
    tables = tuple(
        c.name.removeprefix("data ") for c in result.failed() if c.name.startswith("data ")
    )
    sections = tuple(
        c.name.removeprefix("catalog ") for c in result.failed() if c.name.startswith("catalog ")
    )
    detail = (
        f"damaged tables: {', '.join(tables) or 'none'}; changed catalog: "
        f"{', '.join(sections) or 'none'}"
    )
    return Detection(
        reachable=True, damaged_tables=tables, catalog_sections=sections, detail=detail
    )
