"""The secrets inventory keeps names only: planted values appear in no output."""

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.inventory.secrets import (
    backup_inventory,
    compare_names,
    load_inventory,
    names_from_env_file,
    names_from_environment,
    names_from_listing,
)
from harness.storage.local import LocalObjectStore

PLANTED = ["s3cr3t-api-key-value-1", "p4ss-word-line-one", "line-two-of-the-key", "tok-9f8e"]

ENV = f"""# deployment
export CLOUDFLARE_API_TOKEN={PLANTED[0]}
DATABASE_PASSWORD="{PLANTED[1]}
{PLANTED[2]} \\" still quoted"
  STRIPE_KEY = '{PLANTED[3]}'
EMPTY=
not a line
"""


def _all_text(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_names_only_and_no_value_anywhere(tmp_path, capsys, caplog):
    env = tmp_path / "prod.env"
    env.write_text(ENV)
    inventory = names_from_env_file(env)
    assert sorted(inventory.names) == [
        "CLOUDFLARE_API_TOKEN",
        "DATABASE_PASSWORD",
        "EMPTY",
        "STRIPE_KEY",
    ]
    store = LocalObjectStore(tmp_path / "backups")
    work = tmp_path / "work"
    work.mkdir()
    manifest = backup_inventory(inventory, store, workdir=work)
    restored = load_inventory(store, manifest.set_id)
    checks = compare_names(restored, names_from_listing(b'[{"name": "STRIPE_KEY"}]'))
    print(repr(inventory), repr(restored), checks)
    written = _all_text(tmp_path / "backups") + _all_text(work)
    output = capsys.readouterr().out + caplog.text + repr(checks) + manifest.to_json()
    for value in PLANTED:
        assert value not in written
        assert value not in output
    assert checks[0].ok is False
    assert "missing: CLOUDFLARE_API_TOKEN, DATABASE_PASSWORD, EMPTY" in checks[0].detail


def test_listings_of_providers():
    wrangler = b'[{"name": "API_TOKEN", "type": "secret_text"}]'
    github = json.dumps({"total_count": 1, "secrets": [{"name": "DEPLOY_KEY"}]}).encode()
    assert list(names_from_listing(wrangler).names) == ["API_TOKEN"]
    assert list(names_from_listing(github).names) == ["DEPLOY_KEY"]
    assert list(names_from_listing(b'["A", "B"]').names) == ["A", "B"]
    with pytest.raises(ConfigError, match="without a name"):
        names_from_listing(b'[{"value": "x"}]')


def test_environment_names(monkeypatch):
    monkeypatch.setenv("MACHIPOKE_SECRET", PLANTED[0])
    inventory = names_from_environment(["MACHIPOKE_"])
    assert inventory.names == {"MACHIPOKE_SECRET": "environment"}
    assert PLANTED[0] not in inventory.to_json()
