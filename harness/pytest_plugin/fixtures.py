"""Fixtures: the provider (session), server factories and servers, S3 endpoint and stores.

The provider and the S3 endpoint live for the whole session; each drill gets servers of its
own (copied from a template, ~0.2 s) and a bucket of its own. Servers of failed drills are
kept on disk under ``--drill-keep=failed`` (the default), like pytest's tmp_path retention.

On systems shared by the whole suite (an external server, the user's S3 endpoint) a drill's
databases and buckets carry names unique to the drill and the run
(:mod:`harness.infra.naming`), and are removed after the drill whatever its outcome.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.config import DrillConfig, KeepPolicy, PgTarget, S3Target
from harness.drill.dataset import load_lesson_app
from harness.drill.run import DrillRun
from harness.errors import DrillError, UnsupportedByProvider
from harness.infra.janitor import remove_bucket
from harness.infra.naming import bucket_name, drill_namespace, server_namespace
from harness.infra.pg_server import ServerSettings
from harness.infra.providers import Fact, PgServer, Provider, make_provider
from harness.pytest_plugin.options import DRILL_CONFIG, RUN_ID
from harness.pytest_plugin.report import OUTCOMES, RECORD, SESSION_FACTS, SKIPPED, DrillRecord
from harness.redact import get_logger
from harness.storage.s3 import S3ObjectStore

log = get_logger(__name__)

PgServerFactory = Callable[..., PgServer]
ObjectStoreFactory = Callable[..., S3ObjectStore]
# Numbers unique within this process; with the session's run id, names unique to the run.
_drill_counter = itertools.count(1)
_bucket_counter = itertools.count(1)
# Set when a drill's servers were kept, so the session directory holding them survives too.
_KEPT = pytest.StashKey[list[bool]]()


def _keep(config: DrillConfig, node: pytest.Item | pytest.Collector) -> bool:
    if config.keep is KeepPolicy.ALL:
        return True
    if config.keep is KeepPolicy.NONE:
        return False
    outcomes = node.stash.get(OUTCOMES, {})
    return not all(outcomes.values())


@pytest.fixture(scope="session")
def drill_config(pytestconfig: pytest.Config) -> DrillConfig:
    """The session's resolved configuration."""
    return pytestconfig.stash[DRILL_CONFIG]


@pytest.fixture(scope="session")
def drill_provider(
    drill_config: DrillConfig,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
    request: pytest.FixtureRequest,
) -> Iterator[Provider]:
    """The infrastructure provider; everything it started is stopped at session end."""
    try:
        provider = make_provider(drill_config, base_dir=tmp_path_factory.mktemp("drill-infra"))
    except DrillError as exc:
        pytest.fail(str(exc), pytrace=False)
    prepare_s3 = getattr(provider, "prepare_s3", None)
    if prepare_s3 is not None and any(
        "s3_target" in getattr(item, "fixturenames", ()) for item in request.session.items
    ):
        # The S3 server starts while the PostgreSQL templates build.
        prepare_s3()
    kept: list[bool] = []
    pytestconfig.stash[_KEPT] = kept
    try:
        yield provider
    finally:
        targets = drill_config.targets
        pytestconfig.stash[SESSION_FACTS] = [
            Fact(
                "environment profile",
                f"{targets.environment}: RTO "
                f"{targets.rto_seconds / 3600:g} h, RPO {targets.rpo_seconds / 3600:g} h",
            ),
            Fact("run id", pytestconfig.stash[RUN_ID]),
            *provider.facts(),
        ]
        try:
            provider.close(keep=drill_config.keep is KeepPolicy.ALL or any(kept))
        except DrillError as exc:
            pytest.fail(f"could not clean up after the drills: {exc}", pytrace=False)


@pytest.fixture
def drill_record(request: pytest.FixtureRequest) -> DrillRecord:
    """Facts this drill adds to its entry in the HTML report."""
    record = DrillRecord()
    request.node.stash[RECORD] = record
    return record


@pytest.fixture
def pg_server_factory(
    drill_provider: Provider,
    drill_config: DrillConfig,
    drill_record: DrillRecord,
    request: pytest.FixtureRequest,
) -> Iterator[PgServerFactory]:
    """Make servers for this drill: ``pg_server_factory(name, major=None, settings=None)``.

    Every server made here is released when the drill ends (kept on disk if it failed and
    ``--drill-keep=failed``; on a shared external server the drill's databases are dropped
    whatever the outcome).
    """
    made: list[PgServer] = []
    namespace = drill_namespace(request.config.stash[RUN_ID], next(_drill_counter))

    def make(
        name: str = "pg", *, major: int | None = None, settings: ServerSettings | None = None
    ) -> PgServer:
        try:
            server = drill_provider.pg_server(
                name=name,
                major=major,
                settings=settings,
                namespace=server_namespace(namespace, len(made) + 1),
            )
        except UnsupportedByProvider as exc:
            pytest.skip(str(exc))
        except DrillError as exc:
            pytest.fail(str(exc), pytrace=False)
        made.append(server)
        drill_record.add("PostgreSQL", server.binaries.version)
        return server

    yield make
    keep = _keep(drill_config, request.node)
    problems: list[str] = []
    for server in made:
        # Every server is released even if one fails: nothing may be left behind.
        try:
            drill_provider.release(server, keep=keep)
        except DrillError as exc:
            problems.append(str(exc))
            continue
        if keep and server.datadir is not None:
            request.config.stash.get(_KEPT, []).append(True)
            log.warning("kept %s of failed drill %s", server.datadir.parent, request.node.nodeid)
    if problems:
        pytest.fail("could not release this drill's servers: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def pg_source(pg_server_factory: PgServerFactory) -> PgServer:
    """The server a drill backs up and breaks."""
    return pg_server_factory("source")


@pytest.fixture
def pg_restore_target(pg_server_factory: PgServerFactory) -> PgServer:
    """A fresh server a drill restores into."""
    return pg_server_factory("target")


@pytest.fixture(scope="session")
def s3_target(drill_provider: Provider) -> S3Target:
    """The session's S3 endpoint (SeaweedFS by default)."""
    try:
        return drill_provider.s3_target()
    except DrillError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def object_store_factory(
    s3_target: S3Target, drill_provider: Provider, request: pytest.FixtureRequest
) -> Iterator[ObjectStoreFactory]:
    """Make buckets for this drill: ``object_store_factory(object_lock=False)``.

    Names are unique to the drill and the run. On the user's own S3 endpoint the buckets
    are removed after the drill, whatever its outcome (one under COMPLIANCE retention stays
    until its date, in nobody's way); a throwaway endpoint takes them with it.
    """
    made: list[S3ObjectStore] = []

    def make(*, object_lock: bool = False) -> S3ObjectStore:
        name = bucket_name(request.config.stash[RUN_ID], request.node.name, next(_bucket_counter))
        store = S3ObjectStore(s3_target, name)
        try:
            store.create_bucket(object_lock=object_lock)
        except DrillError as exc:
            pytest.fail(str(exc), pytrace=False)
        made.append(store)
        return store

    yield make
    if not drill_provider.s3_throwaway:
        for store in made:
            remove_bucket(store)


@pytest.fixture
def object_store(object_store_factory: ObjectStoreFactory) -> S3ObjectStore:
    """A fresh bucket for this drill."""
    return object_store_factory()


@pytest.fixture
def drill_run(
    drill_config: DrillConfig, drill_record: DrillRecord, request: pytest.FixtureRequest
) -> Iterator[DrillRun]:
    """The drill's timed phases, checks and RTO/RPO; its evidence is written afterwards."""
    callspec = getattr(request.node, "callspec", None)
    parameters: dict[str, str] = {}
    for key, value in callspec.params.items() if callspec else ():
        if isinstance(value, dict):
            parameters.update({str(k): str(v) for k, v in value.items()})
        else:
            parameters[key] = str(value)
    # The scenario is the drill function's name (test_complete_data_loss_pitr ->
    # complete_data_loss_pitr): one module may hold several scenarios.
    scenario = getattr(request.node, "originalname", request.node.name).removeprefix("test_")
    run = DrillRun(
        scenario=scenario,
        parameters=parameters,
        targets=drill_config.targets,
        test=request.node.nodeid,
        method=method_label(request.node),
    )
    directory = drill_config.evidence_dir
    if not directory.is_absolute():
        directory = request.config.rootpath / directory
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    # The report row is built right after the drill's body, before this teardown: the
    # makereport hook summarises the run from the record; the file follows here.
    drill_record.run = run
    drill_record.evidence = directory / f"{name}.json"
    yield run
    if request.node.stash.get(SKIPPED, False):
        # A drill that could not run here (its reason is in the report) proves nothing.
        drill_record.evidence = None
        return
    run.write(directory, name)


def method_label(item: pytest.Item) -> str:
    """The id of the drill's ``method`` parameter (``logical-custom``), else its whole id.

    Read from the ``parametrize`` marks, so ``pytest.param(..., id=...)`` and ``ids=`` both
    name it; the parameter set is found by the identity of the value the drill received
    (pytest numbers parameter sets across stacked marks). An unparametrized drill has none.
    """
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ""
    value = callspec.params.get("method", _NOTHING)
    for mark in item.iter_markers("parametrize"):
        names = mark.args[0]
        argnames = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
        if value is _NOTHING or "method" not in argnames:
            continue
        ids = mark.kwargs.get("ids")
        for index, candidate in enumerate(mark.args[1]):
            # pytest.param(...) is a ParameterSet, a named tuple (values, marks, id).
            is_set = isinstance(candidate, tuple) and hasattr(candidate, "marks")
            if is_set:
                values = candidate.values
            else:
                values = (candidate,) if len(argnames) == 1 else candidate
            if values[list(argnames).index("method")] is not value:
                continue
            ident = candidate.id if is_set else None
            if ident is None and isinstance(ids, list | tuple) and index < len(ids):
                ident = ids[index]
            if ident:
                return str(ident)
    return str(callspec.id)


_NOTHING = object()


@pytest.fixture(scope="session")
def drill_fixtures(pytestconfig: pytest.Config) -> Path:
    """The project's ``fixtures/`` directory (SQL seeds and data sets)."""
    return pytestconfig.rootpath / "fixtures"


@pytest.fixture
def lesson_app(drill_config: DrillConfig, drill_fixtures: Path) -> Callable[[PgServer], PgTarget]:
    """Load the lesson-booking application (at ``--drill-scale``) into a server's ``app``."""

    def load(server: PgServer) -> PgTarget:
        # The server names the database: on a shared server it is unique to the drill.
        return load_lesson_app(
            server.target(),
            drill_fixtures,
            dbname=server.target("app").dbname,
            scale=drill_config.scale,
        )

    return load


@pytest.fixture
def drill_workdir(tmp_path: Path) -> Path:
    """Scratch space for dumps and downloads (pytest keeps recent ones)."""
    return tmp_path
