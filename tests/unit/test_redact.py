import logging

import pytest

from harness import redact as redact_module
from harness.redact import (
    MASK,
    MIN_SECRET_LENGTH,
    SecretRegistry,
    get_logger,
    redact,
    redact_values,
    register_secret,
)


@pytest.fixture
def registry(monkeypatch):
    """A registry of its own, so secrets registered here cannot mask other tests' values."""
    fresh = SecretRegistry()
    monkeypatch.setattr(redact_module, "_registry", fresh)
    return fresh


def test_registered_secret_is_masked_anywhere():
    register_secret("Tr0ub4dor&3-horse")
    assert redact("failed with Tr0ub4dor&3-horse inside") == f"failed with {MASK} inside"


def test_short_values_are_not_registered_so_words_survive(registry):
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


HOSTILE = [
    'quote"in-the-middle',
    "back\\slash\\secret",
    "pässwörd-ünïcode-秘密",
    "new\nline-secret",
    "tab\tand 'single' quotes",
    "ends-with-backslash\\",
]


@pytest.mark.parametrize("secret", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_secrets_are_masked_as_values(registry, secret):
    register_secret(secret)
    assert redact(f"before {secret} after") == f"before {MASK} after"
    assert redact_values({"k": [f"x{secret}y", {secret: secret}]}) == {
        "k": [f"x{MASK}y", {MASK: MASK}]
    }


def test_a_secret_word_that_is_also_a_shape_key_does_not_unmask_the_shape(registry):
    # Masking "password" first would break the "password=..." shape and leak its value.
    register_secret("password")
    register_secret("hunter2")  # short: masked only where a shape or a whole value holds it
    text = redact("host=h password=hunter2 port=5432")
    assert "hunter2" not in text
    assert text == f"host=h {MASK}={MASK} port=5432"


@pytest.mark.parametrize("word", ["true", "null", "data", "1234", "x", "ab", "abcdefg"])
def test_short_secrets_mask_whole_values_and_shapes_but_not_ordinary_text(registry, word):
    assert len(word) < MIN_SECRET_LENGTH
    register_secret(word)
    sentence = f"data public.items: 1234 rows, passed is true, null detail, {word} here"
    assert redact(sentence) == sentence, "a short secret must not rewrite ordinary text"
    assert redact(word) == MASK, "a value that is exactly the secret is masked"
    assert redact(f"host=h password={word}") == f"host=h password={MASK}"
    assert redact(f"postgresql://u:{word}@h/db") == f"postgresql://u:{MASK}@h/db"
    assert redact_values({"passed": True, "n": 1234, "v": None, "s": word, "t": "true!"}) == {
        "passed": True,
        "n": 1234,
        "v": None,
        "s": MASK,
        "t": "true!",
    }


def test_overlapping_secrets_and_shapes_leave_no_fragment(registry):
    register_secret("Sekr1t-overlap-AAAA")
    register_secret("overlap-AAAA-tail-BBB")
    text = redact("x Sekr1t-overlap-AAAA-tail-BBB y")
    assert text == f"x {MASK} y"


def test_redact_values_keeps_structure_and_types(registry):
    register_secret("structure-secret-1")
    value = {"a": ("structure-secret-1", 1.5, False), "b": {"c": None}}
    assert redact_values(value) == {"a": [MASK, 1.5, False], "b": {"c": None}}


def test_log_records_mask_hostile_and_short_secrets(registry, caplog):
    register_secret('multi\nline "quoted" sécret')
    register_secret("1234")
    log = get_logger("harness.test.hostile")
    with caplog.at_level(logging.INFO, logger="harness.test.hostile"):
        log.info("login with %s", 'multi\nline "quoted" sécret')
        log.info("%s", "1234")
        log.info("dsn host=h password=%s, 1234 rows", "1234")
    messages = [r.getMessage() for r in caplog.records if r.name == "harness.test.hostile"]
    assert messages == [f"login with {MASK}", MASK, f"dsn host=h password={MASK} 1234 rows"]


def test_a_short_secret_draws_a_warning_that_does_not_reveal_it(registry, caplog):
    with caplog.at_level(logging.WARNING, logger="harness.redact"):
        register_secret("s3cr")
        register_secret("s3cr")
    warnings = [r.getMessage() for r in caplog.records if r.name == "harness.redact"]
    assert len(warnings) == 1
    assert "s3cr" not in warnings[0]
    assert "shorter than 8 characters" in warnings[0]
