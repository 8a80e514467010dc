"""The pytest plugin (entry point ``pytest11: drill``): options, markers, fixtures, report."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Generator
from typing import Any

import pytest

from harness.errors import ConfigError, UnsupportedByProvider
from harness.infra.naming import new_run_id
from harness.pytest_plugin import report
from harness.pytest_plugin.fixtures import (
    drill_config,
    drill_fixtures,
    drill_provider,
    drill_record,
    drill_run,
    drill_workdir,
    lesson_app,
    object_store,
    object_store_factory,
    pg_restore_target,
    pg_server_factory,
    pg_source,
    s3_target,
)
from harness.pytest_plugin.logs import (
    redact_log_handlers,
    redact_metadata,
    register_environment_secrets,
)
from harness.pytest_plugin.options import (
    DRILL_CONFIG,
    REPORT_SETTINGS,
    RUN_ID,
    add_options,
    add_report_options,
    resolve_config,
    resolve_report_settings,
)
from harness.pytest_plugin.report import LABELS, pytest_runtest_makereport
from harness.pytest_plugin.session import configure as configure_outputs
from harness.pytest_plugin.session import write_worker_facts
from harness.report import Labels

pytest_plugins = [
    "harness.pytest_plugin.stores",  # Redis, key-value stores, buckets
    "harness.pytest_plugin.cloudflare",  # D1, Workers KV and R2 through wrangler
]

__all__ = [
    "drill_config",
    "drill_fixtures",
    "drill_provider",
    "drill_record",
    "drill_run",
    "drill_workdir",
    "lesson_app",
    "object_store",
    "object_store_factory",
    "pg_restore_target",
    "pg_server_factory",
    "pg_source",
    "pytest_runtest_makereport",
    "s3_target",
]

MARKERS = (
    "drill: an end-to-end disaster-recovery drill",
    "integration: needs real PostgreSQL binaries and S3 servers on this machine",
    "docker: needs a Docker engine",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--drill-*`` options."""
    add_options(parser)
    add_report_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Resolve the configuration once, register markers, outputs and the HTML hooks.

    ``tryfirst``: the run directory must be chosen before pytest-html, junitxml and the
    logging plugin read their paths in their own ``pytest_configure``.
    """
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    register_environment_secrets()
    try:
        config.stash[DRILL_CONFIG] = resolve_config(config)
        settings = resolve_report_settings(config)
        config.stash[REPORT_SETTINGS] = settings
        config.stash[RUN_ID] = new_run_id()
        config.stash[LABELS] = Labels(settings.lang)
        configure_outputs(config, settings)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    # Every harness logger redacts secrets itself (harness.redact.get_logger); INFO makes
    # the one-line decisions (binaries, run-as mode, ports) and phase progress visible.
    logging.getLogger("harness").setLevel(logging.INFO)
    if config.pluginmanager.hasplugin("html"):
        hooks = report.HtmlHooks(config, config.stash[LABELS])
        config.pluginmanager.register(hooks, "drill-html-hooks")
    _interrupt_on_sigterm()


@pytest.hookimpl(optionalhook=True)
def pytest_metadata(metadata: dict[str, Any], config: pytest.Config) -> None:
    """pytest-metadata: mask secrets in the environment table the HTML report embeds."""
    redact_metadata(metadata)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mask secrets in whatever pytest's log handlers write (file, terminal, report)."""
    redact_log_handlers(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker, leave this process's infrastructure facts for the controller."""
    if hasattr(session.config, "workerinput"):
        write_worker_facts(session.config)


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM (a CI timeout, a cancelled job) like Ctrl-C.

    pytest runs fixture teardown on KeyboardInterrupt, so throwaway servers (daemonized,
    outside our process group) are stopped; on SIGTERM's default action they would be left.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Report a drill whose provider cannot give what it needs as skipped, not failed."""
    try:
        return (yield)
    except UnsupportedByProvider as exc:
        provider = item.config.stash[DRILL_CONFIG].provider
        pytest.skip(f"not with the {provider} provider: {exc}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which provider and profile this session uses."""
    cfg = config.stash[DRILL_CONFIG]
    return [
        f"drill: provider={cfg.provider} s3={cfg.s3_backend} "
        f"environment={cfg.targets.environment} keep={cfg.keep.value} scale={cfg.scale} "
        f"run={config.stash[RUN_ID]}"
    ]
