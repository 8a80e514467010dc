"""Infrastructure facts from parallel workers: one line per label in the report."""

import json

from harness.pytest_plugin.session import worker_facts


def _write(run_dir, worker, facts):
    (run_dir / f"infrastructure-{worker}.json").write_text(json.dumps({"facts": facts}))


def test_a_fact_alike_on_every_worker_is_said_once_and_a_worker_own_one_is_attributed(
    tmp_path,
):
    _write(
        tmp_path,
        "gw0",
        [["provider", "embedded"], ["S3", "SeaweedFS 4.48 at http://127.0.0.1:14423"]],
    )
    _write(
        tmp_path,
        "gw1",
        [["provider", "embedded"], ["S3", "SeaweedFS 4.48 at http://127.0.0.1:32651"]],
    )
    _write(tmp_path, "gw2", [["S3", "SeaweedFS 4.48 at http://127.0.0.1:14423"]])
    assert worker_facts(tmp_path) == [
        ("provider", "embedded"),
        (
            "S3",
            "SeaweedFS 4.48 at http://127.0.0.1:14423 (gw0, gw2); "
            "SeaweedFS 4.48 at http://127.0.0.1:32651 (gw1)",
        ),
    ]


def test_no_worker_files_give_no_facts(tmp_path):
    (tmp_path / "infrastructure.json").write_text(json.dumps({"facts": [["S3", "x"]]}))
    assert worker_facts(tmp_path) == []
