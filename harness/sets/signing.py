"""Optional signing of manifests: HMAC-SHA256 with a key that never goes near the bucket.

The manifest's digest only detects damage: anyone who can write to the bucket can recompute
it. With ``DRILL_SIGNING_KEY`` set, every manifest the harness publishes carries an
HMAC-SHA256 over its canonical body, and every check and restore refuses a manifest that is
unsigned or signed with another key. The key is read from the environment when needed (never
at import), registered with :func:`harness.redact.register_secret`, and used exactly as
given (its UTF-8 bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Literal

from harness.errors import ConfigError
from harness.redact import register_secret

ENV_VAR = "DRILL_SIGNING_KEY"
MIN_KEY_LENGTH = 16
SCHEME = "hmac-sha256"
# Domain separation: a signature over a manifest is never valid for any other document.
_CONTEXT = b"recovery-drill-harness manifest\n"

_SIGNATURE = re.compile(r"hmac-sha256:[0-9a-f]{64}")

Verdict = Literal["verified", "unverified", "unsigned"]


def is_signature(value: str) -> bool:
    """True for ``hmac-sha256:`` followed by 64 lowercase hex digits."""
    return _SIGNATURE.fullmatch(value) is not None


def configured_key() -> bytes | None:
    """The signing key from ``DRILL_SIGNING_KEY``, or None when it is unset or empty.

    Raises:
        ConfigError: the key is shorter than 16 characters (a guessable key signs nothing).

    """
    value = os.environ.get(ENV_VAR, "")
    if not value:
        return None
    register_secret(value)
    if len(value) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"{ENV_VAR} is shorter than {MIN_KEY_LENGTH} characters; use a long random "
            "value (for example the output of `openssl rand -hex 32`)"
        )
    return value.encode("utf-8", "surrogateescape")


def sign(body: bytes, key: bytes) -> str:
    """The signature of a canonical manifest body: ``hmac-sha256:<64 hex digits>``."""
    return f"{SCHEME}:" + hmac.new(key, _CONTEXT + body, hashlib.sha256).hexdigest()


def matches(body: bytes, signature: str, key: bytes) -> bool:
    """True when ``signature`` is the signature of ``body`` under ``key`` (constant time)."""
    return hmac.compare_digest(sign(body, key).encode(), signature.encode())
