"""Strict reading of untrusted JSON documents (manifests): one object, nothing ambiguous.

A manifest comes from a bucket anyone with write access can fill. Before a schema looks at
it, the text must be UTF-8, bounded in size and depth, free of NaN/Infinity (not JSON) and
of duplicate keys (two readers could take different values), and a single JSON object.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from harness.errors import ManifestError
from harness.storage.base import shown


def json_object(data: bytes, *, what: str, limit: int) -> dict[str, Any]:
    """Parse ``data`` as one JSON object, or raise one clear :class:`ManifestError`.

    Args:
        data: the document's bytes.
        what: how messages name the document, e.g. ``manifest.json``.
        limit: the most bytes such a document may have.

    Raises:
        ManifestError: too big, not UTF-8, not JSON, not an object, NaN, duplicate keys,
            absurd nesting or numbers.

    """
    if len(data) > limit:
        raise ManifestError(
            f"{what} is {len(data)} bytes, more than the {limit} a manifest may have: "
            "not a manifest"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc

    def no_constant(name: str) -> Any:
        raise ManifestError(f"{what} holds {name}, which is not a JSON number")

    def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key, value in pairs:
            if key in body:
                raise ManifestError(f"{what} names the field {shown(key, limit=60)} twice")
            body[key] = value
        return body

    try:
        body = json.loads(text, parse_constant=no_constant, object_pairs_hook=no_duplicate_keys)
    except ManifestError:
        raise
    except RecursionError as exc:
        raise ManifestError(f"{what} nests too deeply to be a manifest") from exc
    except json.JSONDecodeError as exc:
        empty = " (it is empty: a truncated upload?)" if not text.strip() else ""
        raise ManifestError(f"{what} is not valid JSON{empty} ({exc})") from exc
    except ValueError as exc:  # an integer of thousands of digits
        raise ManifestError(f"{what} holds a number too long to be read") from exc
    if not isinstance(body, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return body


def iso_time(value: str) -> str:
    """``value`` when it is an ISO 8601 time (a manifest field's validator).

    Raises:
        ValueError: it is not.

    """
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("is not an ISO 8601 time") from exc
    return value
