"""Check results: every verification step reports one, none stops at the first failure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check."""

    name: str
    ok: bool
    critical: bool
    detail: str


def first_few(items: Sequence[str], *, total: int | None = None, limit: int = 5) -> str:
    """The first ``limit`` of ``items``, then how many more (of ``total``, default all)."""
    count = len(items) if total is None else total
    more = f" and {count - limit} more" if count > limit else ""
    return ", ".join(items[:limit]) + more


def failures(results: Iterable[CheckResult]) -> list[CheckResult]:
    """The critical checks that failed."""
    return [r for r in results if r.critical and not r.ok]


def render(results: Iterable[CheckResult]) -> str:
    """One line a check, ``ok`` / ``FAIL`` / ``warn``, for terminals and logs."""
    lines = []
    for r in results:
        mark = "ok  " if r.ok else ("FAIL" if r.critical else "warn")
        lines.append(f"{mark} {r.name}: {r.detail}")
    return "\n".join(lines)
