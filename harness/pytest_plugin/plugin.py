"""The pytest plugin (entry point ``pytest11: drill``): options, markers, fixtures, report."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Generator

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
from harness.pytest_plugin.options import DRILL_CONFIG, RUN_ID, add_options, resolve_config
from harness.pytest_plugin.report import pytest_runtest_makereport

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


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the configuration once, register markers and the HTML hooks."""
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    try:
        config.stash[DRILL_CONFIG] = resolve_config(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[RUN_ID] = new_run_id()
    # Every harness logger redacts secrets itself (harness.redact.get_logger); INFO makes
    # the one-line decisions (binaries, run-as mode, ports) visible in captured logs.
    logging.getLogger("harness").setLevel(logging.INFO)
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(report.HtmlHooks(config), "drill-html-hooks")
    _interrupt_on_sigterm()


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
