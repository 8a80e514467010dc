import logging

from harness.redact import MASK, get_logger, redact, register_secret


def test_registered_secret_is_masked_anywhere():
    register_secret("Tr0ub4dor&3-horse")
    assert redact("failed with Tr0ub4dor&3-horse inside") == f"failed with {MASK} inside"


def test_short_values_are_not_registered_so_words_survive():
    register_secret("abc")
    assert redact("abc def") == "abc def"


def test_secret_shapes_are_masked_without_registration():
    text = redact(
        "dsn host=h password='it''s' port=1; url postgresql://u:pa55word@h/db; "
        "PGPASSWORD=letmein AWS_SECRET_ACCESS_KEY=abcd1234"
    )
    for leaked in ("it''s", "pa55word", "letmein", "abcd1234"):
        assert leaked not in text
    assert "postgresql://u:" + MASK + "@h/db" in text


def test_harness_loggers_redact_before_any_handler_sees_the_record(caplog):
    register_secret("log-secret-value-42")
    log = get_logger("harness.test")
    with caplog.at_level(logging.INFO, logger="harness.test"):
        log.info("connecting with %s", "log-secret-value-42")
    assert "log-secret-value-42" not in caplog.text
    assert MASK in caplog.text
