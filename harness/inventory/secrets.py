"""The secrets inventory: which secret *names* a system needs, and which a target lacks.

Secret values cannot be backed up (providers never return them) and must never be written
anywhere, so the inventory records names only, from:

- an env file (``NAME=value``, ``export NAME=...``, quoted values over several lines): the
  file is scanned in small chunks by a state machine that keeps the characters of names
  and skips every value byte without decoding or keeping it;
- a provider listing in JSON (``wrangler secret list``: ``[{"name": ..., "type": ...}]``;
  GitHub's ``{"secrets": [{"name": ...}]}``; or a plain array of names): only ``name``
  fields are read;
- the names of this process's environment variables with given prefixes (values unread).

An inventory set is an object set of kind ``secrets`` with ``inventory.json`` (sorted names
and where each came from). On restore, :func:`compare_names` reports which expected names
are missing at the target (critical) and which are extra (not critical).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ManifestError
from harness.objects.manifest import (
    ObjectManifest,
    list_set_ids,
    new_set_id,
    read_object_manifest,
)
from harness.objects.single import publish_file_set
from harness.storage.base import ObjectStore
from harness.verify.checks import CheckResult

INVENTORY = "inventory.json"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,254}")
_CHUNK = 4096
_NAME_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


@dataclass(frozen=True)
class Inventory:
    """Secret names and where each was found (``env-file:.env``, ``listing``...)."""

    names: dict[str, str]

    def merged(self, other: Inventory) -> Inventory:
        """Both inventories (the first source of a name wins)."""
        return Inventory({**other.names, **self.names})

    def to_json(self) -> str:
        """``{"format": ..., "names": {name: source}}``, sorted."""
        return json.dumps({"format": "secret-names/1", "names": dict(sorted(self.names.items()))},
                          indent=1, sort_keys=True) + "\n"  # fmt: skip


def names_from_env_file(path: Path) -> Inventory:
    """The variable names an env file defines; values are skipped unread.

    Raises:
        ConfigError: the file cannot be read.

    """
    names: dict[str, str] = {}
    source = f"env-file:{path.name}"
    try:
        with path.open("rb") as f:
            for name in _scan(iter(lambda: f.read(_CHUNK), b"")):
                names.setdefault(name, source)
    except OSError as exc:
        raise ConfigError(f"cannot read the env file {path}: {exc.strerror}") from exc
    return Inventory(names)


def _scan(chunks: Iterable[bytes]) -> Iterable[str]:
    """Names at the start of ``NAME=`` lines; every other byte is looked at and dropped."""
    state, name, quote = "start", bytearray(), 0
    for chunk in chunks:
        for byte in chunk:
            if state == "start":
                if byte in b" \t\r\n":
                    continue
                if byte == ord("#"):
                    state = "skip-line"
                elif byte in _NAME_BYTES:
                    name[:] = bytes([byte])
                    state = "name"
                else:
                    state = "skip-line"
            elif state == "name":
                if byte in _NAME_BYTES:
                    name.append(byte)
                elif byte in b" \t":
                    # "export NAME=..." or "NAME = ...".
                    state = "start" if bytes(name) == b"export" else "after-name"
                    if state == "start":
                        name.clear()
                elif byte == ord("="):
                    text = name.decode("ascii")
                    if NAME.fullmatch(text):
                        yield text
                    name.clear()
                    state = "value-start"
                else:
                    name.clear()
                    state = "start" if byte == ord("\n") else "skip-line"
            elif state == "after-name":
                if byte == ord("="):
                    text = name.decode("ascii")
                    if NAME.fullmatch(text):
                        yield text
                    name.clear()
                    state = "value-start"
                elif byte not in b" \t":
                    name.clear()
                    state = "start" if byte == ord("\n") else "skip-line"
            elif state == "value-start":
                if byte in b" \t":
                    continue
                elif byte in b"\"'":
                    quote, state = byte, "quoted"
                elif byte == ord("\n"):
                    state = "start"
                else:
                    state = "skip-line"
            elif state == "quoted":
                if byte == ord("\\") and quote == ord('"'):
                    state = "escaped"
                elif byte == quote:
                    state = "skip-line"
            elif state == "escaped":
                state = "quoted"
            elif byte == ord("\n"):  # skip-line
                state = "start"


def names_from_listing(data: bytes, *, source: str = "listing") -> Inventory:
    """The ``name`` fields of a provider's JSON listing (other fields are not kept).

    Raises:
        ConfigError: not JSON, or not one of the listing shapes.

    """
    try:
        doc: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the secrets listing ({source}) is not JSON: {exc}") from exc
    items = doc.get("secrets") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ConfigError(
            f"the secrets listing ({source}) is not a list of secrets (expected "
            '[{"name": ...}], {"secrets": [...]}, or ["NAME", ...])'
        )
    names: dict[str, str] = {}
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ConfigError(f"the secrets listing ({source}) holds an entry without a name")
        names.setdefault(name, source)
    return Inventory(names)


def names_from_environment(prefixes: Iterable[str]) -> Inventory:
    """Names of this process's environment variables starting with one of ``prefixes``."""
    wanted = tuple(prefixes)
    return Inventory({n: "environment" for n in os.environ if n.startswith(wanted)})


def backup_inventory(
    inventory: Inventory,
    backup: ObjectStore,
    *,
    workdir: Path,
    kind: str = "secrets",
    now: datetime | None = None,
    signing_key: bytes | None = None,
) -> ObjectManifest:
    """Publish ``inventory`` as a set of ``kind`` (names only).

    Raises:
        StorageError: the store failed (no manifest is written).

    """
    now = now or datetime.now(UTC)
    set_id = new_set_id(now, set(list_set_ids(backup, kind)))
    path = workdir / INVENTORY
    path.write_text(inventory.to_json(), encoding="utf-8")
    manifest, _ = publish_file_set(
        backup,
        path,
        kind=kind,
        set_id=set_id,
        key=INVENTORY,
        now=now,
        source=", ".join(sorted(set(inventory.names.values())))[:1000] or "empty",
        content_type="application/json",
        extra={"names": len(inventory.names)},
        signing_key=signing_key,
    )
    return manifest


def load_inventory(
    backup: ObjectStore, set_id: str, *, kind: str = "secrets", signing_key: bytes | None = None
) -> Inventory:
    """Read an inventory set back (its hash checked against the manifest).

    Raises:
        ObjectNotFound: no such set.
        ManifestError: the manifest is unreadable or the inventory changed after the backup.

    """
    manifest = read_object_manifest(backup, kind, set_id, signing_key=signing_key).manifest
    entry = manifest.by_key().get(INVENTORY)
    if entry is None:
        raise ManifestError(f"set {kind}/{set_id} holds no {INVENTORY}")
    data = backup.get_bytes(manifest.stored_key(entry))
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ManifestError(f"{manifest.stored_key(entry)} was changed after the backup")
    return Inventory(dict(json.loads(data)["names"]))


def compare_names(expected: Inventory, present: Inventory) -> list[CheckResult]:
    """Which expected secret names the target lacks (critical) or has in addition."""
    missing = sorted(set(expected.names) - set(present.names))
    extra = sorted(set(present.names) - set(expected.names))
    return [
        CheckResult(
            "secret names present at the target",
            ok=not missing,
            critical=True,
            detail=f"{len(expected.names) - len(missing)} of {len(expected.names)} present"
            + (f"; missing: {', '.join(missing)}" if missing else ""),
        ),
        CheckResult(
            "no unexpected secret names",
            ok=not extra,
            critical=False,
            detail=f"{len(extra)} extra" + (f": {', '.join(extra)}" if extra else ""),
        ),
    ]
