"""`drill fingerprint` and `drill verify`: equal, different, bad input."""

import json

import pytest
from appdb import load_app

from harness.cli.main import main
from harness.pg.sql import connect


def _dsn(target, dbname="app"):
    return f"postgresql://{target.user}:{target.password}@{target.host}:{target.port}/{dbname}"


@pytest.fixture
def app(pg_server_factory):
    server = pg_server_factory("cli")
    load_app(server)
    with connect(server.target(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE twin TEMPLATE app")
        # A template copy leaves out what belongs to the database itself.
        conn.execute("ALTER DATABASE twin SET app.environment = 'production'")
        conn.execute("ALTER ROLE anon IN DATABASE twin SET statement_timeout = '5s'")
        conn.execute("COMMENT ON DATABASE twin IS 'lesson booking'")
    return server


def test_fingerprint_prints_tables_and_sections_or_json(app, monkeypatch, capsys):
    monkeypatch.setenv("DRILL_DSN", _dsn(app.target()))
    assert main(["fingerprint"]) == 0
    out = capsys.readouterr().out
    assert "public.reservations" in out
    assert "catalog policies" in out
    assert main(["fingerprint", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert {t["name"] for t in body["data"]["tables"]} >= {"reservations", "users"}


def test_verify_against_a_twin_is_equal_then_different_with_located_rows(app, monkeypatch, capsys):
    monkeypatch.setenv("DRILL_DSN", _dsn(app.target(), "twin"))
    monkeypatch.setenv("DRILL_AGAINST_DSN", _dsn(app.target(), "app"))
    assert main(["verify", "--tables", "public.reservations,public.payments"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("equal")
    with connect(app.target("twin"), autocommit=True) as conn:
        conn.execute("UPDATE public.payments SET amount = amount + 1 WHERE id = 3")
    assert main(["verify", "--tables", "public.payments", "--locate"]) == 1
    out = capsys.readouterr().out
    assert "FAIL data public.payments: same" in out
    assert "public.payments (by primary key (id)); 1 changed: 3" in out
    assert "DIFFERENT" in out


def test_verify_against_a_backup_set(app, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DRILL_DSN", _dsn(app.target()))
    assert main(["backup", "--to", str(tmp_path / "set")]) == 0
    with connect(app.target("app"), autocommit=True) as conn:
        conn.execute("ALTER TABLE public.payments NO FORCE ROW LEVEL SECURITY")
    capsys.readouterr()
    assert main(["verify", "--against", str(tmp_path / "set")]) == 1
    out = capsys.readouterr().out
    assert "FAIL catalog rls: changed: public.payments" in out
    assert "enabled=true forced=true" in out


def test_verify_without_a_reference_is_bad_input(app, monkeypatch, capsys):
    monkeypatch.setenv("DRILL_DSN", _dsn(app.target()))
    monkeypatch.delenv("DRILL_AGAINST_DSN", raising=False)
    assert main(["verify", "--against-dsn", ""]) == 2
    assert "no reference database" in capsys.readouterr().err
