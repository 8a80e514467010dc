"""Polling with a deadline: every wait in the harness goes through :func:`wait_until`.

Built on tenacity with explicit predicates: retry while the probe raises one of the
``transient`` exceptions or returns ``None`` / ``False``; any other exception ends the wait
at once (a bug or a definite failure must not be polled for a minute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from harness.errors import WaitTimeout
from harness.redact import redact

T = TypeVar("T")


def _not_ready(result: object) -> bool:
    return result is None or result is False


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    transient: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until it returns something other than ``None`` or ``False``.

    Args:
        check: the probe; its first ready result is returned.
        timeout: seconds before giving up (the probe running at the deadline finishes).
        what: what is being waited for, for the error message.
        interval: seconds between probes.
        transient: exceptions that mean "not yet" rather than failure.

    Raises:
        WaitTimeout: the deadline passed; the last transient error is in the message.

    """
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_exception_type(transient) | retry_if_result(_not_ready),
    )
    try:
        result = retrying(check)
    except RetryError as exc:
        last = exc.last_attempt
        error = last.exception() if last.failed else None
        detail = f"; last error: {redact(str(error)).strip()}" if error is not None else ""
        raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{detail}") from error
    # The retry predicate only lets a ready result through.
    return result  # type: ignore[return-value]
