"""Fixtures of the Cloudflare drills: wrangler, a throwaway local project per drill, targets.

Loaded by :mod:`harness.pytest_plugin.plugin` (``pytest_plugins``). Where Node.js or the
pinned wrangler is missing, every drill that asks for these fixtures is skipped with a reason
that names what is missing and how to install it (``npm ci --prefix cloudflare``; tox's
drills environment runs it). With ``DRILL_REQUIRE_WRANGLER=1`` (CI) they fail instead: a
machine that should run them must not pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from harness.cloudflare.targets import cloudflare_targets
from harness.cloudflare.wrangler import PINNED_VERSION, Wrangler, find_wrangler, node_problem
from harness.drill.cf_steps import CloudflareStack, make_stack
from harness.drill.run import DrillRun
from harness.errors import DrillError, ToolNotFound
from harness.infra.wrangler_project import WranglerProject
from harness.pytest_plugin.report import DrillRecord

REQUIRE_ENV = "DRILL_REQUIRE_WRANGLER"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: the Cloudflare drills must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def wrangler_binary(pytestconfig: pytest.Config) -> Path:
    """The pinned wrangler executable (skips the drill where Node or wrangler is missing)."""
    problem = node_problem()
    if problem is not None:
        _unavailable(problem)
    try:
        return find_wrangler([pytestconfig.rootpath])
    except ToolNotFound as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def wrangler_version(wrangler_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The version of the wrangler the drills run (``4.40.0``)."""
    w = Wrangler(wrangler_binary, tmp_path_factory.mktemp("wrangler-version"))
    try:
        return w.version()
    except DrillError as exc:
        pytest.fail(f"wrangler does not run: {exc}", pytrace=False)


@pytest.fixture
def cf_project(wrangler_binary: Path, tmp_path: Path) -> WranglerProject:
    """An empty throwaway local wrangler project for this drill."""
    return WranglerProject(tmp_path / "cloudflare", wrangler_binary)


@pytest.fixture
def cf_stack(
    cf_project: WranglerProject,
    tmp_path: Path,
    wrangler_version: str,
    drill_record: DrillRecord,
) -> Iterator[CloudflareStack]:
    """The application's D1 database, KV namespace and R2 bucket, with the R2 bridge running.

    The bridge (``wrangler dev`` on 127.0.0.1) is stopped when the drill ends, whatever its
    outcome; the project's directory stays with pytest's temporary directories.
    """
    stack = make_stack(cf_project, tmp_path / "cf-work")
    try:
        stack.bridge.start()
    except DrillError as exc:
        pytest.fail(f"the R2 bridge did not start: {exc}", pytrace=False)
    pinned = "" if wrangler_version == PINNED_VERSION else f" (pinned: {PINNED_VERSION})"
    drill_record.add("wrangler", f"{wrangler_version}{pinned}, local mode")
    try:
        yield stack
    finally:
        stack.bridge.stop()


@pytest.fixture
def cf_drill_run(drill_run: DrillRun, wrangler_version: str) -> DrillRun:
    """The drill run, with the Cloudflare stack's targets (C8: production RPO 24 h)."""
    drill_run.targets = cloudflare_targets(drill_run.targets)
    drill_run.facts["wrangler"] = (
        f"{wrangler_version}, local mode (the Workers runtime, state in the drill's project)"
    )
    return drill_run
