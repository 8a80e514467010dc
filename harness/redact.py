"""Keep secrets out of every log line, report, evidence file and exception message.

Two layers: values registered at run time (passwords and keys the harness holds) are masked,
and common secret-bearing shapes (``password=...`` in a conninfo, ``user:pass@`` in a URL,
``PGPASSWORD=...``) are masked even when their value was never registered.

The rule for registered values, by length:

- A secret of :data:`MIN_SECRET_LENGTH` characters or more is masked wherever it appears.
- A shorter one is masked only where it cannot be confused with ordinary text: as a whole
  value (a string that *is* the secret, such as a password field) and inside the secret
  shapes above. Masking ``data``, ``true`` or ``1234`` everywhere would rewrite the very
  evidence the masking protects, so such a password can still appear inside free text; the
  harness warns when it is given one. Use generated passwords of 8 characters or more.

Text is redacted as *values*, before it is serialised: :func:`redact_values` walks a
JSON-ready structure and redacts every string (keys too). Redacting serialised JSON instead
would miss secrets the encoder escaped (quotes, backslashes, non-ASCII) and could break the
document's syntax.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "********"
MIN_SECRET_LENGTH = 8
"""Registered secrets at least this long are masked anywhere in a text."""

# Shapes that carry a secret whatever its value; group "value" is what gets masked.
_SHAPES = (
    re.compile(r"(?i)password\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|\S+)"),
    re.compile(
        r"(?i)(?:PGPASSWORD|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN)\s*[=:]\s*(?P<value>\S+)"
    ),
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^:/@\s]*:(?P<value>[^@\s]+)@"),
)

_log = logging.getLogger(__name__)


class SecretRegistry:
    """The secrets one process knows, and how to mask them (see the module docstring)."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._anywhere: set[str] = set()
        self._whole: set[str] = set()

    def register(self, value: str | None) -> None:
        """Remember a secret; empty values are ignored, short ones masked as whole values only.

        Args:
            value: the secret.

        """
        if not value:
            return
        with self._lock:
            if len(value) >= MIN_SECRET_LENGTH:
                self._anywhere.add(value)
                return
            new = value not in self._whole
            self._whole.add(value)
        if new:
            # Never log the value, nor its length: both help a guesser.
            _log.warning(
                "a password or key shorter than %d characters is masked only as a whole "
                "value and in password=/user:password@ positions, not inside other text; "
                "use a longer one",
                MIN_SECRET_LENGTH,
            )

    def redact(self, text: str) -> str:
        """Return ``text`` with every registered secret and secret-shaped value masked."""
        with self._lock:
            anywhere = tuple(self._anywhere)
            whole = text in self._whole
        if whole:
            return MASK
        # Collect every span to mask in the original text, then mask their union: masking
        # one kind first could break the other (a secret equal to "password" would hide the
        # "password=" that marks the next value; a shape could cut a secret in two).
        spans: list[tuple[int, int]] = []
        for shape in _SHAPES:
            spans += [m.span("value") for m in shape.finditer(text)]
        for secret in anywhere:
            start = text.find(secret)
            while start >= 0:
                spans.append((start, start + len(secret)))
                start = text.find(secret, start + 1)
        if not spans:
            return text
        out: list[str] = []
        position = 0
        for start, end in _union(spans):
            out += [text[position:start], MASK]
            position = end
        out.append(text[position:])
        return "".join(out)


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


_registry = SecretRegistry()


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it from now on.

    Args:
        value: the secret; empty values are ignored, and values shorter than
            :data:`MIN_SECRET_LENGTH` are masked only as whole values and in secret shapes.

    """
    _registry.register(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and secret-shaped value masked."""
    return _registry.redact(text)


def redact_values(value: Any) -> Any:
    """Redact every string in a JSON-ready structure (mapping keys included), recursively.

    Mappings become dicts and tuples become lists; numbers, booleans and None are kept as
    they are (a secret is never a JSON literal).
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact_values(k): redact_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the fully formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = redact(record.getMessage())
        record.msg = message
        record.args = None
        return True


def get_logger(name: str) -> logging.Logger:
    """Return the named logger with a :class:`RedactingFilter` attached.

    Logger filters apply only to records created on that very logger, not to records
    propagated from children, so every harness module takes its logger from here.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
