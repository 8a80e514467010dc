"""The envelope a manifest travels in: a digest of its canonical body, and a signature.

Every kind of manifest (a database set's ``manifest.json``, an object set's manifest) is its
body plus ``digest`` (SHA-256 of the canonical body) and, when ``DRILL_SIGNING_KEY`` was set,
``signature`` (:mod:`harness.sets.signing`). Reading one is the same for every kind: a strict
JSON object, a format version this harness knows, the digest present and matching, a
well-formed signature, and with a key, a signature that matches. Each kind fixes how its
canonical body is spelled (digests of existing sets depend on it) and what is signed before
it, so that a signature over one kind never verifies as another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from harness.errors import ManifestError, SignatureError
from harness.sets import signing
from harness.sets.jsondoc import json_object


@dataclass(frozen=True)
class Opened:
    """A manifest's body, and the digest and signature found beside it (unchecked)."""

    body: dict[str, Any]
    digest: object
    signature: object


@dataclass(frozen=True)
class Envelope:
    """How one kind of manifest is sealed and opened."""

    what: str  # how messages name the document ("manifest.json")
    newest: int  # the newest format version this harness reads
    limit: int  # bytes read at most
    context: bytes = b""  # signed before the body
    ensure_ascii: bool = True  # how the canonical body spells non-ASCII text

    def canonical(self, body: dict[str, Any]) -> bytes:
        """The bytes the digest and the signature cover."""
        text = json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=self.ensure_ascii
        )
        return text.encode()

    def digest(self, body: dict[str, Any]) -> str:
        """SHA-256 of the canonical body: the set's identity, signed or not."""
        return hashlib.sha256(self.canonical(body)).hexdigest()

    def seal(self, body: dict[str, Any], *, signing_key: bytes | None) -> dict[str, Any]:
        """``body`` with its digest, and its signature given a key."""
        sealed = {**body, "digest": self.digest(body)}
        if signing_key is not None:
            sealed["signature"] = signing.sign(self.context + self.canonical(body), signing_key)
        return sealed

    def open(self, data: bytes) -> Opened:
        """Split untrusted bytes into the body and its digest and signature.

        Raises:
            ManifestError: not a strict JSON object, or a format version newer than
                :attr:`newest`.

        """
        body = json_object(data, what=self.what, limit=self.limit)
        digest = body.pop("digest", None)
        signature = body.pop("signature", None)
        version = body.get("format_version")
        if type(version) is int and version > self.newest:
            raise ManifestError(
                f"{self.what} has format version {version}: it was made by a newer harness "
                f"(this one reads version {self.newest}); upgrade recovery-drill-harness"
            )
        return Opened(body, digest, signature)

    def verdict(self, opened: Opened, *, signing_key: bytes | None) -> signing.Verdict:
        """Check the digest and the signature of an opened manifest (its body validated).

        Args:
            opened: what :meth:`open` returned.
            signing_key: require a signature made with this key; None accepts unsigned
                manifests and reports signed ones as not verified.

        Raises:
            ManifestError: the digest is missing or does not match, or the signature is
                malformed.
            SignatureError: a key is given and the manifest is unsigned or signed with
                another.

        """
        if opened.digest is None:
            raise ManifestError(f"{self.what} has no digest: it was not written by this harness")
        if not isinstance(opened.digest, str) or opened.digest != self.digest(opened.body):
            raise ManifestError(
                f"{self.what} was modified after it was written (its digest does not match "
                "its content)"
            )
        signature = opened.signature
        if signature is not None and not (
            isinstance(signature, str) and signing.is_signature(signature)
        ):
            raise ManifestError(
                f"{self.what} has a malformed signature (expected {signing.SCHEME}:<hex>)"
            )
        if signing_key is None:
            return "unsigned" if signature is None else "unverified"
        if signature is None:
            raise SignatureError(
                f"{self.what} is not signed but {signing.ENV_VAR} is set: only signed sets are "
                "accepted (the set was written without the key, or its signature was removed)"
            )
        if not signing.matches(self.context + self.canonical(opened.body), signature, signing_key):
            raise SignatureError(
                f"{self.what} signature does not match: the set was altered or signed with "
                "another key"
            )
        return "verified"
