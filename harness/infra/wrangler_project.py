"""A throwaway local wrangler project: its own ``wrangler.toml`` and state, one per drill.

Each drill gets a directory with a ``wrangler.toml`` declaring the D1 databases, KV
namespaces and R2 buckets it asked for, and wrangler keeps their content below
``.wrangler/state`` in that directory (local mode: the real Workers runtime, no account, no
network). Two drills never share state, and removing the directory removes everything.

Declaring a resource rewrites ``wrangler.toml``; a local D1 database or KV namespace comes
into existence on first use. ``rebind_d1`` points a binding at another database: how a
restored D1 database replaces a damaged one (D1 cannot rename).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.cloudflare.bridge import Bridge
from harness.cloudflare.wrangler import Wrangler
from harness.errors import ConfigError

COMPATIBILITY_DATE = "2025-09-01"
_BINDING = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


@dataclass(frozen=True)
class D1Decl:
    """A D1 database as ``wrangler.toml`` declares it."""

    binding: str
    name: str
    id: str


@dataclass(frozen=True)
class KvDecl:
    """A KV namespace as ``wrangler.toml`` declares it."""

    binding: str
    id: str


@dataclass(frozen=True)
class R2Decl:
    """An R2 bucket as ``wrangler.toml`` declares it."""

    binding: str
    bucket: str


class WranglerProject:
    """A project directory, its declared resources, and a :class:`Wrangler` bound to it."""

    def __init__(self, root: Path, binary: Path, *, name: str = "drill-app") -> None:
        """Create the directory and an empty ``wrangler.toml``.

        Args:
            root: the project directory (created; must be empty or absent).
            binary: the wrangler executable.
            name: the Worker's name in ``wrangler.toml``.

        Raises:
            ConfigError: ``root`` exists and is not empty.

        """
        if root.exists() and any(root.iterdir()):
            raise ConfigError(f"{root} is not empty: a throwaway project needs a fresh directory")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.name = name
        self.wrangler = Wrangler(binary, root)
        self._d1: dict[str, D1Decl] = {}
        self._extra_d1: dict[str, D1Decl] = {}  # declared under a spare binding
        self._kv: dict[str, KvDecl] = {}
        self._r2: dict[str, R2Decl] = {}
        self.write_config()

    @property
    def state_dir(self) -> Path:
        """Where wrangler keeps this project's local data."""
        return self.root / ".wrangler" / "state"

    def add_d1(self, binding: str, name: str) -> D1Decl:
        """Declare a D1 database (created locally on first use).

        Raises:
            ConfigError: a bad binding or name, or one already declared.

        """
        decl = D1Decl(_binding(binding), _name(name), str(uuid.uuid4()))
        if binding in self._d1 or any(d.name == name for d in self.d1_databases()):
            raise ConfigError(f"D1 binding {binding} or database {name} is already declared")
        self._d1[binding] = decl
        self.write_config()
        return decl

    def add_spare_d1(self, name: str) -> D1Decl:
        """Declare a database no binding uses yet (a restore target), under a spare binding."""
        binding = f"SPARE_{len(self._extra_d1) + 1}"
        decl = D1Decl(binding, _name(name), str(uuid.uuid4()))
        self._extra_d1[binding] = decl
        self.write_config()
        return decl

    def rebind_d1(self, binding: str, name: str) -> None:
        """Point ``binding`` at database ``name`` (a restored one); the old one stays declared.

        Raises:
            ConfigError: no such binding or database.

        """
        if binding not in self._d1:
            raise ConfigError(f"no D1 binding {binding} in {self.root / 'wrangler.toml'}")
        spare = next((k for k, d in self._extra_d1.items() if d.name == name), None)
        if spare is None:
            raise ConfigError(f"no spare D1 database {name} to bind as {binding}")
        old = self._d1[binding]
        target = self._extra_d1.pop(spare)
        self._d1[binding] = D1Decl(binding, target.name, target.id)
        self._extra_d1[spare] = D1Decl(spare, old.name, old.id)
        self.write_config()

    def add_kv(self, binding: str) -> KvDecl:
        """Declare a KV namespace."""
        decl = KvDecl(_binding(binding), uuid.uuid4().hex)
        self._kv[binding] = decl
        self.write_config()
        return decl

    def add_r2(self, binding: str, bucket: str) -> R2Decl:
        """Declare an R2 bucket."""
        decl = R2Decl(_binding(binding), _name(bucket))
        self._r2[binding] = decl
        self.write_config()
        return decl

    def d1_databases(self) -> list[D1Decl]:
        """Every declared database, bound or spare."""
        return [*self._d1.values(), *self._extra_d1.values()]

    def d1(self, binding: str) -> D1Decl:
        """The database ``binding`` points at."""
        return self._d1[binding]

    def kv(self, binding: str) -> KvDecl:
        """The namespace declared as ``binding``."""
        return self._kv[binding]

    def r2(self, binding: str) -> R2Decl:
        """The bucket declared as ``binding``."""
        return self._r2[binding]

    def bridge(self, *, workdir: Path | None = None) -> Bridge:
        """A bridge (not started) over every declared bucket."""
        return Bridge(
            self.wrangler,
            [d.bucket for d in self._r2.values()],
            workdir=workdir or self.root.parent / f"{self.root.name}-bridge",
        )

    def wipe_state(self) -> None:
        """Delete every database, namespace and bucket's data at once (the local state)."""
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def remove(self) -> None:
        """Delete the project directory and its bridge's."""
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.root.parent / f"{self.root.name}-bridge", ignore_errors=True)

    def write_config(self) -> None:
        """Write ``wrangler.toml`` from the declarations (atomically)."""
        lines = [
            f"name = {json.dumps(self.name)}",
            f'compatibility_date = "{COMPATIBILITY_DATE}"',
        ]
        for d in self.d1_databases():
            lines += [
                "",
                "[[d1_databases]]",
                f'binding = "{d.binding}"',
                f"database_name = {json.dumps(d.name)}",
                f'database_id = "{d.id}"',
            ]
        for k in self._kv.values():
            lines += ["", "[[kv_namespaces]]", f'binding = "{k.binding}"', f'id = "{k.id}"']
        for r in self._r2.values():
            lines += [
                "",
                "[[r2_buckets]]",
                f'binding = "{r.binding}"',
                f"bucket_name = {json.dumps(r.bucket)}",
            ]
        path = self.root / "wrangler.toml"
        tmp = path.with_name(".wrangler.toml.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)


def _binding(value: str) -> str:
    if not _BINDING.fullmatch(value):
        raise ConfigError(f"{value!r} is not a binding name (uppercase letters, digits, _)")
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ConfigError(f"{value!r} is not a resource name (lowercase letters, digits, -)")
    return value
