"""The drill evidence record: valid JSON, valid against its published schema, no secrets."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from harness import redact as redact_module
from harness.config import PROFILES
from harness.drill.run import EVIDENCE_SCHEMA, DrillRun
from harness.redact import MASK, SecretRegistry, register_secret
from harness.verify.checks import CheckResult

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "drill-evidence.schema.json"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def registry(monkeypatch):
    fresh = SecretRegistry()
    monkeypatch.setattr(redact_module, "_registry", fresh)
    return fresh


def _strict_load(path):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def _drill(*, detail="", fact="", unbounded=False):
    run = DrillRun(scenario="unit", parameters={"method": "custom"}, targets=PROFILES["production"])
    with run.phase("seed"):
        pass
    with run.phase("disaster", detail):
        pass
    run.add([CheckResult("data public.items", ok=True, critical=True, detail=detail)])
    run.facts["note"] = fact
    run.verified()
    now = datetime.now(UTC)
    run.record_rpo(now, None if unbounded else now - timedelta(seconds=3))
    return run


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_a_detail_ending_in_a_password_keeps_the_file_valid_json(tmp_path, validator):
    run = _drill(detail="restore failed: host=h password=hunter22")
    path = run.write(tmp_path, "d")
    record = _strict_load(path)
    validator.validate(record)
    assert "hunter22" not in path.read_text()
    assert record["checks"][-1]["detail"] == f"restore failed: host=h password={MASK}"


@pytest.mark.parametrize(
    "secret",
    [
        'quote"-in-secret',
        "back\\slash-secret",
        "pässwörd-sécret-秘密",
        "new\nline-secret",
        "ends-in-backslash\\",
    ],
    ids=["quote", "backslash", "non-ascii", "newline", "trailing-backslash"],
)
def test_hostile_secrets_never_reach_the_file_in_any_spelling(tmp_path, registry, secret):
    register_secret(secret)
    run = _drill(detail=f"x {secret} y", fact=secret)
    run.parameters[secret] = f"value {secret}"
    path = run.write(tmp_path, "hostile")
    text = path.read_text(encoding="utf-8")
    record = _strict_load(path)
    for spelling in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)):
        assert spelling not in text
    assert all(secret not in s for s in _strings(record))
    assert record["facts"]["note"] == MASK


@pytest.mark.parametrize("word", ["true", "null", "1234", "data", "ok", "name"])
def test_a_short_secret_equal_to_a_json_word_changes_nothing_but_its_own_values(
    tmp_path, registry, validator, word
):
    register_secret(word)
    run = _drill(detail="data public.items: 1234 rows, all true", fact=word)
    record = _strict_load(run.write(tmp_path, "short"))
    validator.validate(record)
    assert record["passed"] is True
    assert record["checks"][-1]["detail"] == "data public.items: 1234 rows, all true"
    assert record["facts"]["note"] == MASK


def test_an_unbounded_rpo_is_null_with_a_flag_not_infinity(tmp_path, validator):
    run = _drill(unbounded=True)
    path = run.write(tmp_path, "unbounded")
    assert "Infinity" not in path.read_text()
    record = _strict_load(path)
    validator.validate(record)
    assert record["measured"]["rpo_seconds"] is None
    assert record["measured"]["rpo_unbounded"] is True
    assert record["passed"] is False


def test_a_real_drill_record_validates_against_the_published_schema(tmp_path, validator):
    run = _drill(detail="rows overwritten", fact="PostgreSQL 17.10")
    record = _strict_load(run.write(tmp_path, "real"))
    validator.validate(record)
    assert record["schema"] == EVIDENCE_SCHEMA
    assert record["measured"]["rpo_unbounded"] is False
    assert record["measured"]["rpo_seconds"] == pytest.approx(3, abs=0.5)
    assert [p["name"] for p in record["phases"]] == ["seed", "disaster"]


def test_the_schema_rejects_what_it_must(validator):
    record = _drill().evidence()
    assert not list(validator.iter_errors(record))
    for broken in (
        {**record, "schema": "drill-evidence/1"},
        {**record, "measured": {**record["measured"], "rpo_seconds": -1}},
        {**record, "checks": [{"name": "x", "ok": "yes", "critical": True, "detail": ""}]},
        {k: v for k, v in record.items() if k != "passed"},
    ):
        assert list(validator.iter_errors(broken)), broken


def test_the_schema_names_its_version_and_describes_every_field():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(EVIDENCE_SCHEMA.replace("/", ":"))
    assert schema["properties"]["schema"]["const"] == EVIDENCE_SCHEMA

    def walk(node, where):
        if isinstance(node, dict):
            described = node.get("properties", {}) if "type" in node else {}
            for name, sub in described.items():
                assert "description" in sub, f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "$")


def test_evidence_files_from_earlier_drill_runs_validate(validator):
    # Files the latest `pytest drills` run left in reports/latest/evidence, when there are any.
    directory = SCHEMA_PATH.parents[1] / "reports" / "latest" / "evidence"
    files = [
        p
        for p in sorted(directory.glob("*.json"))
        if json.loads(p.read_text(encoding="utf-8")).get("schema") == EVIDENCE_SCHEMA
    ]
    if not files:
        pytest.skip(f"no {EVIDENCE_SCHEMA} files under {directory} (run `pytest drills` first)")
    for path in files:
        validator.validate(_strict_load(path))


def test_the_html_report_calls_an_unbounded_rpo_unbounded():
    from harness.pytest_plugin.report import DrillRecord

    record = DrillRecord(run=_drill(unbounded=True))
    record.summarise_run()
    assert ("RPO", "unbounded") in [(f.label, f.value) for f in record.facts]
