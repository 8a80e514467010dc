"""The report's documents: schemas, runbook, CI example. What they promise must exist."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.config import OPTIONS
from harness.drill.run import EVIDENCE_SCHEMA
from harness.pytest_plugin.options import REPORT_OPTIONS
from harness.report import HISTORY_SCHEMA, INDEX_SCHEMA

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMAS = {
    "drill-evidence": EVIDENCE_SCHEMA,
    "drill-run-index": INDEX_SCHEMA,
    "drill-history": HISTORY_SCHEMA,
}


@pytest.mark.parametrize(("name", "version"), SCHEMAS.items())
def test_each_schema_is_valid_versioned_and_describes_every_field(name, version):
    schema = json.loads((DOCS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == version
    assert schema["$id"].endswith(version.replace("/", ":"))

    def walk(node, where):
        if isinstance(node, dict):
            described = node.get("properties", {}) if "type" in node else {}
            for key, sub in described.items():
                assert "description" in sub, f"{where}.{key} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, name)


def test_every_option_the_documents_name_exists():
    known = {spec.cli for spec in (*OPTIONS, *REPORT_OPTIONS)}
    for doc in ("runbook.md", "reports.md", "ci/nightly-drills.yml"):
        named = set(re.findall(r"--drill-[a-z0-9-]+", (DOCS / doc).read_text()))
        assert named <= known, f"{doc} names unknown options: {sorted(named - known)}"
    env_names = {spec.env for spec in (*OPTIONS, *REPORT_OPTIONS)}
    env_names |= {"DRILL_S3_ACCESS_KEY_ID", "DRILL_S3_SECRET_ACCESS_KEY"}
    workflow = (DOCS / "ci" / "nightly-drills.yml").read_text()
    used = set(re.findall(r"\b(DRILL_[A-Z0-9_]+):", workflow))
    assert used <= env_names, sorted(used - env_names)


def test_the_ci_example_runs_the_drills_nightly_with_docker_and_uploads_the_reports():
    workflow = yaml.safe_load((DOCS / "ci" / "nightly-drills.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"][0]["cron"]
    job = workflow["jobs"]["drills"]
    assert job["env"]["DRILL_PROVIDER"] == "docker"
    runs = [step.get("run", "") for step in job["steps"]]
    assert any("tox -e drills" in run for run in runs)
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload")]
    assert uploads
    assert uploads[0]["if"] == "always()"
    assert "reports/latest/" in uploads[0]["with"]["path"]
    services = workflow["jobs"]["service-containers"]["services"]
    assert {"postgres", "minio"} <= set(services)


def test_the_runbook_covers_running_pointing_reading_and_missed_targets():
    runbook = (DOCS / "runbook.md").read_text()
    for heading in (
        "## 2. Run the drills",
        "## 3. Point the drills at your own systems",
        "## 4. Read the report",
        "## 5. When a target is missed or a check fails",
    ):
        assert heading in runbook
    assert "--drill-allow-destructive" in runbook
    assert "--drill-provider=external" in runbook
