"""Command-line and ini options, resolved once into ``config.stash[DRILL_CONFIG]``."""

from __future__ import annotations

import pytest

from harness.config import OPTIONS, DrillConfig, OptionSpec, load_profiles

DRILL_CONFIG = pytest.StashKey[DrillConfig]()
RUN_ID = pytest.StashKey[str]()
"""Random characters drawn once per session: names made on shared systems carry them."""


def add_options(parser: pytest.Parser) -> None:
    """Register ``--drill-<name>`` and ini ``drill_<name>`` for every option."""
    group = parser.getgroup("drill", "recovery drills")
    for spec in OPTIONS:
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
