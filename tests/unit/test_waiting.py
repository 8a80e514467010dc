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


def test_none_and_false_mean_not_yet_but_zero_and_empty_are_results():
    answers = iter([None, False, 0])
    assert wait_until(lambda: next(answers), timeout=5, interval=0.001, what="x") == 0


def test_a_probe_that_never_gets_ready_times_out_naming_what_was_awaited():
    with pytest.raises(WaitTimeout, match=r"^timed out after 0\.05 s waiting for the bucket$"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, what="the bucket")


def test_the_timeout_is_chained_to_the_last_transient_error_and_redacted():
    from harness.redact import MASK

    def probe():
        raise ConnectionRefusedError("refused: host=h password=s3cr3t-value")

    with pytest.raises(WaitTimeout) as info:
        wait_until(probe, timeout=0.05, interval=0.01, what="x", transient=(ConnectionError,))
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert "s3cr3t-value" not in str(info.value)
    assert f"password={MASK}" in str(info.value)
