"""What can run here: PostgreSQL binaries, run-as mode, S3 backends, Docker engine, Node.js.

``drill doctor`` prints these findings; the embedded default needs PostgreSQL binaries, a way
to run them (not as root), and the configured S3 backend.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from harness.cloudflare.wrangler import PINNED_VERSION, find_wrangler, node_problem
from harness.config import DrillConfig
from harness.errors import DrillError
from harness.infra.pg_server import ClusterTemplate, ThrowawayServer
from harness.infra.privilege import choose_identity
from harness.infra.providers.docker import docker_engine_problem
from harness.infra.s3.seaweed import SeaweedServer, find_weed, weed_version
from harness.pg.binaries import available, find_binaries
from harness.storage.s3 import check_endpoint


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report."""

    area: str
    ok: bool
    detail: str
    needed: bool  # whether the embedded default cannot run without it


def examine(
    config: DrillConfig, *, start: bool = False, workdir: Path | None = None
) -> list[Finding]:
    """Collect every finding; with ``start``, also start a server and the S3 backend.

    Args:
        config: the resolved configuration (bindir, version, run-as mode, S3 backend).
        start: prove the embedded default works by starting it (takes a few seconds).
        workdir: where ``start`` may create servers.

    """
    findings: list[Finding] = []

    def note(area: str, detail: str, *, ok: bool, needed: bool) -> None:
        findings.append(Finding(area, ok=ok, detail=detail, needed=needed))

    for binaries in available():
        note("postgresql", binaries.describe(), ok=True, needed=False)
    chosen = identity = None
    try:
        chosen = find_binaries(bindir=config.pg_bindir, major=config.pg_version)
        note("postgresql", f"default: {chosen.describe()}", ok=True, needed=True)
    except DrillError as exc:
        note("postgresql", str(exc), ok=False, needed=True)
    try:
        identity = choose_identity(config.run_as)
        note("run-as", identity.describe(), ok=True, needed=True)
    except DrillError as exc:
        note("run-as", str(exc), ok=False, needed=True)
    needs_weed = config.s3_backend == "seaweedfs"
    try:
        weed = find_weed()
        note("s3", f"SeaweedFS {weed_version(weed)} ({weed})", ok=True, needed=needs_weed)
    except DrillError as exc:
        note("s3", str(exc), ok=False, needed=needs_weed)
    needs_moto = config.s3_backend == "moto"
    try:
        moto = importlib.metadata.version("moto")
        note("s3", f"moto {moto} (server mode, for fast tests)", ok=True, needed=needs_moto)
    except importlib.metadata.PackageNotFoundError:
        note(
            "s3", "moto is not installed (pip install 'moto[server]')", ok=False, needed=needs_moto
        )
    problem = docker_engine_problem()
    note(
        "docker",
        f"{problem}: the docker provider cannot run (the embedded default needs none)"
        if problem
        else "a Docker engine answers: the docker provider can run",
        ok=problem is None,
        needed=config.provider == "docker",
    )
    # The Cloudflare drills need Node.js and the pinned wrangler; without them they are
    # skipped (and the embedded default runs without them).
    problem = node_problem()
    if problem is None:
        try:
            wrangler = find_wrangler()
        except DrillError as exc:
            problem = str(exc)
    if problem is None:
        detail = f"Node.js and wrangler ({wrangler}; the project pins {PINNED_VERSION})"
        note("cloudflare", detail, ok=True, needed=False)
    else:
        note("cloudflare", f"{problem}; the Cloudflare drills are skipped", ok=False, needed=False)
    if start and chosen is not None and identity is not None and workdir is not None:
        template = ClusterTemplate(chosen, base_dir=workdir, identity=identity)
        findings += _start_check(template, workdir=workdir, needs_weed=needs_weed)
    return findings


def _start_check(template: ClusterTemplate, *, workdir: Path, needs_weed: bool) -> list[Finding]:
    findings = []
    try:
        with ThrowawayServer(template, workdir=workdir / "doctor-pg") as server:
            detail = (
                f"started and stopped PostgreSQL {template.binaries.version} on port {server.port}"
            )
            findings.append(Finding("start", ok=True, detail=detail, needed=True))
    except DrillError as exc:
        findings.append(Finding("start", ok=False, detail=str(exc), needed=True))
    if needs_weed:
        try:
            with SeaweedServer(workdir / "doctor-s3") as s3:
                check_endpoint(s3.target())
                detail = f"started SeaweedFS S3 in {s3.start_seconds:.1f} s"
                findings.append(Finding("start", ok=True, detail=detail, needed=True))
        except DrillError as exc:
            findings.append(Finding("start", ok=False, detail=str(exc), needed=True))
    return findings


def embedded_ready(findings: list[Finding]) -> bool:
    """True when nothing the embedded default needs is missing."""
    return all(f.ok for f in findings if f.needed)
