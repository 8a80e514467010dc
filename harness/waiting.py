"""Polling with a deadline: every wait in the harness goes through :func:`wait_until`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import WaitTimeout
from harness.redact import redact

T = TypeVar("T")


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
        check: the probe; its first truthy result is returned.
        timeout: seconds before giving up.
        what: what is being waited for, for the error message.
        interval: seconds between probes.
        transient: exceptions that mean "not yet" rather than failure.

    Raises:
        WaitTimeout: the deadline passed; the last transient error is in the message.

    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except transient as exc:
            last_error = exc
        else:
            if result is not None and result is not False:
                return result
        if time.monotonic() >= deadline:
            detail = f"; last error: {redact(str(last_error)).strip()}" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)
