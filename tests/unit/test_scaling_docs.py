"""The many-database configurations in docs/scaling/ keep the allow-list rules they state."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from harness.config import OPTIONS, DrillConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"
ENV_NAMES = {spec.env for spec in OPTIONS} | {
    "DRILL_S3_ACCESS_KEY_ID",
    "DRILL_S3_SECRET_ACCESS_KEY",
}


def _matrix():
    return yaml.safe_load((DOCS / "scaling" / "drills-matrix.yml").read_text())


def _cnpg():
    docs = list(yaml.safe_load_all((DOCS / "scaling" / "cnpg-drills.yaml").read_text()))
    return {d["kind"]: d for d in docs}


def _resolve(env):
    return DrillConfig.resolve(lambda spec: None, environ=env)


def test_every_option_and_variable_the_scaling_documents_name_exists():
    known = {spec.cli for spec in OPTIONS}
    for doc in ("scaling.md", "scaling/drills-matrix.yml", "scaling/cnpg-drills.yaml"):
        text = (DOCS / doc).read_text()
        named = set(re.findall(r"--drill-[a-z0-9-]+", text))
        assert named <= known, f"{doc} names unknown options: {sorted(named - known)}"
        used = set(re.findall(r"\b(DRILL_[A-Z0-9_]+)\b", text))
        used = {u for u in used if not u.startswith("DRILL_DSN_")}  # names of CI secrets
        assert used <= ENV_NAMES, f"{doc}: {sorted(used - ENV_NAMES)}"


def test_each_matrix_job_may_touch_only_its_own_staging_host():
    workflow = _matrix()
    job = workflow["jobs"]["drill"]
    assert job["strategy"]["fail-fast"] is False
    env = job["env"]
    assert env["DRILL_PROVIDER"] == "external"
    # The DSN comes from a secret chosen by the matrix entry, never written out.
    assert env["DRILL_DSN"] == "${{ secrets[matrix.dsn_secret] }}"
    assert env["DRILL_ALLOW_DESTRUCTIVE"] == "${{ matrix.host }}"
    hosts = [entry["host"] for entry in job["strategy"]["matrix"]["include"]]
    assert len(set(hosts)) == len(hosts), "two jobs would share one allow-list entry"
    assert all("prod" not in host for host in hosts)
    for run in (step.get("run", "") for step in job["steps"]):
        assert "--drill-dsn" not in run, "a DSN on the command line is visible to all"
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload")]
    assert uploads
    assert uploads[0]["if"] == "always()"
    # What one job resolves to: destructive steps allowed on its host, and only there.
    entry = job["strategy"]["matrix"]["include"][0]
    config = _resolve(
        {
            "DRILL_PROVIDER": "external",
            "DRILL_DSN": f"postgresql://postgres:secret-pw@{entry['host']}:5432/postgres",
            "DRILL_ALLOW_DESTRUCTIVE": entry["host"],
            "DRILL_S3": env["DRILL_S3"],
        }
    )
    assert config.allow_destructive == (entry["host"],)
    assert config.s3_backend == "seaweedfs"


def test_the_cronjob_drills_its_own_cloudnativepg_cluster_and_nothing_else():
    kinds = _cnpg()
    cluster, cron = kinds["Cluster"], kinds["CronJob"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["enableSuperuserAccess"] is True
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    assert job["activeDeadlineSeconds"] > 0
    container = job["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["DRILL_PROVIDER"]["value"] == "external"
    assert "value" not in env["DRILL_DSN"], "the DSN must come from a Secret"
    assert env["DRILL_DSN"]["valueFrom"]["secretKeyRef"]["name"]
    rw_service = f"{cluster['metadata']['name']}-rw.{cluster['metadata']['namespace']}"
    assert env["DRILL_ALLOW_DESTRUCTIVE"]["value"] == rw_service
    assert "--drill-dsn" not in " ".join(container["command"])
    assert container["resources"]["requests"]["memory"]
    # The DSN the comments show how to make spells the host as the allow-list does.
    text = (DOCS / "scaling" / "cnpg-drills.yaml").read_text()
    dsn = re.search(r'dsn="(postgresql://[^"]+)"', text).group(1)
    assert urlsplit(dsn).hostname == rw_service


def test_the_scaling_page_states_the_allow_list_rules_and_shows_the_scale_table():
    page = (DOCS / "scaling.md").read_text()
    for heading in (
        "## 1. Cost as the data grows",
        "## 3. Drills in parallel on one machine",
        "## 4. Many databases: a CI matrix",
        "## 5. Many databases: Kubernetes and CloudNativePG",
        "## 6. The allow-list rules",
    ):
        assert heading in page
    assert "bench/scale.py" in page
    assert "exactly as the DSN spells it" in page
