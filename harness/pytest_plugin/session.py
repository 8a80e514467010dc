"""Where a drill session writes its outputs, and how the controller assembles them.

When drills run (``--drill-report=auto``, the default: any path given to pytest lies in a
``drills`` directory) the session gets a run directory ``reports/<timestamp>/`` holding the
self-contained HTML report, JUnit XML, the log and the evidence; ``reports/latest`` points at
it and the history gets one more line. Options the user set (``--html``, ``--junitxml``,
``--log-file``, ``--drill-evidence-dir``) win over these defaults.

Under pytest-xdist each worker writes its own evidence files (and its infrastructure facts)
into the controller's run directory, passed through ``workerinput``; the controller, which
has no ``workerinput``, assembles the index, history and HTML at session end from the files.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from harness.config import DrillConfig
from harness.errors import ConfigError
from harness.pytest_plugin.logs import PROGRESS_ONLY
from harness.pytest_plugin.options import DRILL_CONFIG, RUN_DIR, RUN_ID, ReportSettings
from harness.pytest_plugin.report import SESSION_FACTS
from harness.redact import get_logger, redact
from harness.report import (
    DrillEntry,
    DrillEvidence,
    HistoryStore,
    Labels,
    LocalHistory,
    ObjectHistory,
    RunInfo,
    failure_sentence,
    history_line,
    new_run_directory,
    point_latest,
    render_report,
    run_index,
    trends,
    write_json,
)
from harness.report.index import INDEX_FILE
from harness.report.sections import tools_text

log = get_logger(__name__)

WORKER_KEY = "drill_run_dir"  # in xdist's workerinput
INFRASTRUCTURE = "infrastructure{suffix}.json"


def drills_requested(config: pytest.Config) -> bool:
    """True when a path given to pytest lies in (or is) a ``drills`` directory."""
    base = config.invocation_params.dir
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        resolved = path if path.is_absolute() else base / path
        if "drills" in resolved.resolve().parts:
            return True
    return False


def configure(config: pytest.Config, settings: ReportSettings) -> Path | None:
    """Decide whether this session reports; if so, point every output at its run directory.

    Runs before pytest-html, junitxml and the logging plugin read their options.

    Returns:
        The run directory, or None when the session does not report.

    Raises:
        ConfigError: the report directory cannot be created.

    """
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        shared = workerinput.get(WORKER_KEY)
        if not shared:
            return None
        run_dir = Path(shared)
        _point_log(config, run_dir / f"drills-{workerinput.get('workerid', 'worker')}.log")
    else:
        if settings.mode == "off" or (settings.mode == "auto" and not drills_requested(config)):
            return None
        try:
            run_dir = new_run_directory(settings.root)
        except OSError as exc:
            raise ConfigError(
                f"cannot create a run directory under {settings.root}: {exc}; name a writable "
                "one with --drill-report-dir, or turn the report off with --drill-report=off"
            ) from exc
        if config.pluginmanager.hasplugin("html") and not config.getoption("htmlpath", None):
            config.option.htmlpath = str(run_dir / "report.html")
            config.option.self_contained_html = True
        if not config.getoption("xmlpath", None):
            config.option.xmlpath = str(run_dir / "junit.xml")
        _point_log(config, run_dir / "drills.log")
        config.pluginmanager.register(ReportSession(config, settings, run_dir), "drill-report")
    # Progress: long phases log a line every few seconds; show those live (with warnings)
    # unless the user chose how live logging works.
    if config.getoption("log_cli_level", None) is None and not config.getini("log_cli"):
        config.option.log_cli_level = "INFO"
        config.option.log_cli_format = "%(asctime)s %(levelname)s %(message)s"
        config.option.log_cli_date_format = "%H:%M:%S"
        config.stash[PROGRESS_ONLY] = True
    config.stash[RUN_DIR] = run_dir
    if not settings.evidence_dir_given:
        config.stash[DRILL_CONFIG] = replace(
            config.stash[DRILL_CONFIG], evidence_dir=run_dir / "evidence"
        )
    return run_dir


def _point_log(config: pytest.Config, path: Path) -> None:
    if not (config.getoption("log_file", None) or config.getini("log_file")):
        config.option.log_file = str(path)
        if config.getoption("log_file_level", None) is None:
            config.option.log_file_level = "INFO"


def write_worker_facts(config: pytest.Config) -> None:
    """On a process that ran drills, leave its infrastructure facts for the controller."""
    run_dir = config.stash.get(RUN_DIR, None)
    facts = config.stash.get(SESSION_FACTS, [])
    if run_dir is None or not facts:
        return
    worker = getattr(config, "workerinput", {}).get("workerid")
    path = run_dir / INFRASTRUCTURE.format(suffix=f"-{worker}" if worker else "")
    write_json(path, {"facts": [[f.label, redact(f.value)] for f in facts]})


@dataclass
class _Seen:
    """What the controller saw of one test through its reports."""

    outcome: str = "passed"
    message: str = ""
    evidence: str | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)


def worker_facts(run_dir: Path) -> list[tuple[str, str]]:
    """The infrastructure facts every xdist worker left in ``run_dir``, one line per label.

    A fact alike on every worker is said once; one each worker has its own value of (its
    S3 server, say) is one line with each value followed by the workers that had it.
    """
    workers: dict[str, dict[str, list[str]]] = {}  # label -> value -> workers
    prefix = INFRASTRUCTURE.format(suffix="-").removesuffix(".json")
    for path in sorted(run_dir.glob(INFRASTRUCTURE.format(suffix="-*"))):
        worker = path.stem.removeprefix(prefix)
        for label, value in json.loads(path.read_text())["facts"]:
            workers.setdefault(str(label), {}).setdefault(str(value), []).append(worker)
    return [
        (label, next(iter(values)))
        if len(values) == 1
        else (label, "; ".join(f"{v} ({', '.join(w)})" for v, w in values.items()))
        for label, values in workers.items()
    ]


class ReportSession:
    """The controller's part: collect outcomes, then write index, history and summary."""

    def __init__(self, config: pytest.Config, settings: ReportSettings, run_dir: Path) -> None:
        """Bind to the session."""
        self.config = config
        self.settings = settings
        self.run_dir = run_dir
        self.labels = Labels(settings.lang)
        self.started_at = datetime.now(UTC).astimezone()
        self.seen: dict[str, _Seen] = {}
        self.order: dict[str, int] = {}  # test id -> its place in the collection
        self.entries: list[DrillEntry] = []
        self.html = ""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist: tell each worker where the run's files go."""
        node.workerinput[WORKER_KEY] = str(self.run_dir)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Remember the collection order: the report lists drills in it."""
        if session.items:
            self.order = {item.nodeid: i for i, item in enumerate(session.items)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """pytest-xdist: the controller collects nothing; a worker's collection is the order.

        Workers run drills as they free up, so reports arrive in no useful order; every
        worker collects the same items.
        """
        if not self.order:
            self.order = {test: i for i, test in enumerate(ids)}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Track each test's outcome, first failure and evidence file."""
        seen = self.seen.setdefault(report.nodeid, _Seen())
        for key, value in report.user_properties:
            if key == "evidence":
                seen.evidence = str(value)
            elif report.when == "call":
                seen.facts.append((str(key), str(value)))
        if report.skipped and report.when in ("setup", "call"):
            seen.outcome = "skipped"
            seen.message = seen.message or _message(report)
        if report.failed:
            failed_outcome = "failed" if report.when == "call" else "error"
            if seen.outcome not in ("failed", "error"):
                seen.outcome = failed_outcome
                seen.message = _message(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Assemble entries, the index, the history line and the report's summary.

        Runs before pytest-html writes the page (its hook is ``trylast``).
        """
        tests = sorted(self.seen, key=lambda test: self.order.get(test, len(self.order)))
        self.entries = [self._entry(test, self.seen[test]) for test in tests]
        run = self._run_info()
        base = self.config.invocation_params.dir
        outputs = {
            "html": _relative(self.config.getoption("htmlpath", None), self.run_dir, base),
            "junit": _relative(self.config.getoption("xmlpath", None), self.run_dir, base),
            "log": _relative(
                self.config.getoption("log_file", None) or self.config.getini("log_file"),
                self.run_dir,
                base,
            ),
        }
        write_json(self.run_dir / INDEX_FILE, run_index(run, self.entries, outputs))
        history = self._history()
        runs: list[dict[str, Any]] = []
        try:
            history.append(history_line(run, self.entries, str(self.run_dir)))
            runs = history.read()
        except Exception as exc:  # a history out of reach costs the trend, never the report
            log.warning("could not update the history at %s: %s", history.where, exc)
        self.html = render_report(
            run,
            self.entries,
            trends(runs, environment=run.environment),
            history_where=history.where,
            labels=self.labels,
            version=_version("recovery-drill-harness"),
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the outputs are, and what failed, in one line each."""
        bad = [e for e in self.entries if e.outcome in ("failed", "error")]
        terminalreporter.write_sep("-", "recovery drill outputs")
        terminalreporter.write_line(f"run directory: {self.run_dir}")
        latest = self.run_dir.parent / "latest"
        terminalreporter.write_line(f"latest:        {latest} -> {self.run_dir.name}")
        for entry in bad:
            terminalreporter.write_line(failure_sentence(entry, self.labels), red=True)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Point ``latest`` at this run once every file is written."""
        try:
            point_latest(self.run_dir)
        except OSError as exc:
            log.warning("could not point %s/latest at this run: %s", self.run_dir.parent, exc)

    def _entry(self, test: str, seen: _Seen) -> DrillEntry:
        evidence = None
        message = seen.message
        relative = None
        if seen.evidence:
            path = Path(seen.evidence)
            if path.is_file():
                try:
                    evidence = DrillEvidence.load(path)
                    relative = _relative(str(path), self.run_dir)
                except ValueError as exc:
                    message = message or str(exc)
        return DrillEntry(
            test=test,
            outcome=seen.outcome,
            message=redact(message),
            evidence=evidence,
            evidence_file=relative,
            facts=tuple(seen.facts),
        )

    def _run_info(self) -> RunInfo:
        cfg: DrillConfig = self.config.stash[DRILL_CONFIG]
        facts = [(f.label, redact(f.value)) for f in self.config.stash.get(SESSION_FACTS, [])]
        facts += worker_facts(self.run_dir)
        # The profile and run id head the summary already.
        shown = {"environment profile", "run id"}
        unique = [f for f in dict.fromkeys(facts) if f[0] not in shown]
        return RunInfo(
            run_id=self.config.stash[RUN_ID],
            started_at=self.started_at,
            finished_at=datetime.now(UTC).astimezone(),
            operator=self.settings.operator or _operator(),
            host=socket.gethostname(),
            environment=cfg.targets.environment,
            rto_target=cfg.targets.rto_seconds,
            rpo_target=cfg.targets.rpo_seconds,
            versions=tuple(self._versions()),
            infrastructure=tuple(unique),
            lang=self.settings.lang,
        )

    def _versions(self) -> list[tuple[str, str]]:
        versions = [
            ("recovery-drill-harness", _version("recovery-drill-harness")),
            ("Python", platform.python_version()),
            ("pytest", pytest.__version__),
            ("pytest-html", _version("pytest-html")),
            ("platform", platform.platform()),
        ]
        servers: set[str] = set()
        tools: set[str] = set()
        for entry in self.entries:
            servers |= {v for k, v in entry.facts if k == "PostgreSQL"}
            if entry.evidence and entry.evidence.backup:
                backup = entry.evidence.backup
                servers.add(backup.source_server_version)
                tools |= set(tools_text(backup.tools).split(", "))
        if servers:
            versions.append(("PostgreSQL", ", ".join(sorted(servers))))
        if tools:
            versions.append(("backup tools", ", ".join(sorted(tools))))
        return versions

    def _history(self) -> HistoryStore:
        where = self.settings.history
        if where and where.startswith("s3://"):
            from harness.storage.s3 import S3ObjectStore

            bucket, _, prefix = where.removeprefix("s3://").partition("/")
            target = self.config.stash[DRILL_CONFIG].external_s3_target()
            return ObjectHistory(S3ObjectStore(target, bucket), prefix)
        directory = Path(where) if where else self.settings.root
        if not directory.is_absolute():
            directory = self.config.invocation_params.dir / directory
        return LocalHistory(directory)


def _message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = str(getattr(crash, "message", "") or report.longreprtext or "")
    lines = [line for line in text.splitlines() if line.strip()]
    return redact(lines[0].strip() if lines else report.outcome)


def _relative(path: str | None, run_dir: Path, base: Path | None = None) -> str | None:
    """``path`` relative to the run directory, else absolute (relative ones from ``base``)."""
    if not path:
        return None
    full = Path(path)
    if not full.is_absolute() and base is not None:
        full = base / full
    full = full.resolve()
    try:
        return str(full.relative_to(run_dir.resolve()))
    except ValueError:
        return str(full)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _operator() -> str:
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"{actor} (GitHub Actions)"
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
