"""Command-line and ini options, resolved once into ``config.stash[DRILL_CONFIG]``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config import OPTIONS, OPTIONS_BY_NAME, DrillConfig, OptionSpec, load_profiles
from harness.errors import ConfigError
from harness.report.labels import LANGUAGES

DRILL_CONFIG = pytest.StashKey[DrillConfig]()
RUN_ID = pytest.StashKey[str]()
"""Random characters drawn once per session: names made on shared systems carry them."""


def add_options(parser: pytest.Parser) -> None:
    """Register ``--drill-<name>`` and ini ``drill_<name>`` for every option."""
    _register(parser, OPTIONS)


def _register(parser: pytest.Parser, specs: Iterable[OptionSpec]) -> None:
    """Add each spec as a ``--drill-...`` option and a ``drill_...`` ini key."""
    group = parser.getgroup("drill", "recovery drills")
    for spec in specs:
        default = f" (default: {spec.default})" if spec.default else ""
        group.addoption(
            spec.cli,
            dest=_dest(spec),
            default=None,
            choices=spec.choices,
            help=f"{spec.help}{default}; ini {spec.ini}, env {spec.env}",
        )
        parser.addini(spec.ini, help=spec.help, default=None)


def resolve_config(config: pytest.Config) -> DrillConfig:
    """Resolve CLI, then ini, then environment, then defaults, into one frozen config."""

    def lookup(spec: OptionSpec) -> str | None:
        value = config.getoption(_dest(spec))
        if value in (None, ""):
            value = config.getini(spec.ini)
        return str(value) if value not in (None, "", []) else None

    return DrillConfig.resolve(lookup, profiles=load_profiles(config.rootpath / "pyproject.toml"))


def _dest(spec: OptionSpec) -> str:
    return f"drill_{spec.name}"


REPORT_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "report",
        "write the HTML report, JUnit XML, log and evidence index under a new run directory "
        "(auto: whenever drills run)",
        "auto",
        ("auto", "on", "off"),
    ),
    OptionSpec("report_dir", "where run directories and reports/latest go", "reports"),
    OptionSpec("lang", "language of the report's labels", "en", LANGUAGES),
    OptionSpec(
        "history",
        "where each run is indexed for trends: a directory or s3://bucket/prefix "
        "(default: the report directory)",
    ),
    OptionSpec("operator", "who ran the drills (default: $GITHUB_ACTOR, else user@host)"),
)
REPORT_OPTIONS_BY_NAME = {spec.name: spec for spec in REPORT_OPTIONS}


@dataclass(frozen=True)
class ReportSettings:
    """How the session reports: whether, where, in which language, who ran it."""

    mode: str = "auto"
    root: Path = Path("reports")
    lang: str = "en"
    history: str | None = None
    operator: str | None = None
    evidence_dir_given: bool = False  # --drill-evidence-dir (or its ini/env) was set


REPORT_SETTINGS = pytest.StashKey[ReportSettings]()
RUN_DIR = pytest.StashKey[Path]()
"""The session's run directory, when it reports (on xdist workers too)."""


def add_report_options(parser: pytest.Parser) -> None:
    """Register ``--drill-<name>`` and ini ``drill_<name>`` for the report options."""
    _register(parser, REPORT_OPTIONS)


def resolve_report_settings(
    config: pytest.Config, environ: Mapping[str, str] | None = None
) -> ReportSettings:
    """Resolve the report options: CLI, then ini, then environment, then default.

    Relative paths are taken from the directory pytest was started in, as ``--html`` and
    ``--junitxml`` are.

    Raises:
        ConfigError: a value is not one of the allowed choices.

    """
    env = os.environ if environ is None else environ

    def value(spec: OptionSpec) -> str | None:
        raw = config.getoption(_dest(spec))
        if raw in (None, ""):
            raw = config.getini(spec.ini)
        if raw in (None, "", []):
            raw = env.get(spec.env) or spec.default
        if raw is not None and spec.choices and raw not in spec.choices:
            raise ConfigError(
                f"{spec.cli} / {spec.ini} / {spec.env} = {raw!r} is not one of "
                f"{', '.join(spec.choices)}"
            )
        return str(raw) if raw is not None else None

    evidence = OPTIONS_BY_NAME["evidence_dir"]
    given = (
        config.getoption(_dest(evidence)) or config.getini(evidence.ini) or env.get(evidence.env)
    )
    root = Path(value(REPORT_OPTIONS_BY_NAME["report_dir"]) or "reports")
    if not root.is_absolute():
        root = config.invocation_params.dir / root
    return ReportSettings(
        mode=value(REPORT_OPTIONS_BY_NAME["report"]) or "auto",
        root=root,
        lang=value(REPORT_OPTIONS_BY_NAME["lang"]) or "en",
        history=value(REPORT_OPTIONS_BY_NAME["history"]),
        operator=value(REPORT_OPTIONS_BY_NAME["operator"]),
        evidence_dir_given=bool(given),
    )
