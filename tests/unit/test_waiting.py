import itertools

import pytest

from harness.errors import WaitTimeout
from harness.waiting import wait_until


def test_returns_the_first_truthy_result():
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "ready", timeout=5, what="x") == "ready"


def test_transient_errors_are_retried_and_reported_on_timeout():
    def probe():
        raise ConnectionRefusedError("refused on 127.0.0.1:1")

    with pytest.raises(WaitTimeout, match=r"waiting for the server; last error: refused"):
        wait_until(
            probe,
            timeout=0.2,
            interval=0.01,
            what="the server",
            transient=(ConnectionRefusedError,),
        )


def test_other_errors_propagate_at_once():
    def probe():
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        wait_until(probe, timeout=5, what="x", transient=(ConnectionError,))
