"""Keep secrets out of every log line, report, evidence file and exception message.

Two layers: values registered at run time (passwords and keys the harness holds) are replaced
wherever they appear, and common secret-bearing shapes (``password=...`` in a conninfo,
``user:pass@`` in a URL, ``PGPASSWORD=...``) are masked even when their value was never
registered.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "********"

_lock = threading.Lock()
_secrets: set[str] = set()

# Shapes that carry a secret whatever its value.
_PATTERNS = (
    re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)"),
    re.compile(r"(?i)((?:PGPASSWORD|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN)\s*[=:]\s*)(\S+)"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)"),
)


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it from now on.

    Args:
        value: the secret; empty values and very short ones (which would mask ordinary
            words) are ignored.

    """
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and secret-shaped value masked."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        if pattern.groups == 3:
            text = pattern.sub(lambda m: m.group(1) + MASK + m.group(3), text)
        else:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


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
