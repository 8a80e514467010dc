"""The ``drill`` command: the parser, the dispatch, and how errors reach the terminal.

Exit codes: 0 success; 1 a check, step or verification failed (or, for ``doctor``, the
embedded default cannot run), database errors included; 2 bad usage or input.

Every error is one line on stderr, never a traceback (``--debug`` adds it). Errors that name
an option are spelled the CLI's way (``--allow-destructive HOST``, not the pytest plugin's
``--drill-allow-destructive=HOST``). The backup-set commands import only the product's
dependencies: ``doctor`` loads the drill stack when it runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import psycopg

from harness.cli import cloudflare, kv, objects, pitr, repo, retention, sets, verify
from harness.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, config_from
from harness.config import OPTIONS_BY_NAME
from harness.errors import (
    BackupError,
    ConfigError,
    ConnectError,
    DrillError,
    ObjectNotFound,
    RestoreError,
)
from harness.pg.sql import explain_db_error
from harness.redact import redact
from harness.sets.restore import INPUT_PHASES

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "exit_code", "main"]

# Options of DrillConfig the CLI exposes, as --<name> (the pytest spelling is --drill-<name>).
_DOCTOR_OPTIONS = ("pg_bindir", "pg_version", "run_as", "s3", "provider")
DRILLS_EXTRA = "drill doctor needs the drill stack: pip install 'recovery-drill-harness[drills]'"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``drill``."""
    parser = argparse.ArgumentParser(prog="drill", description="Recovery-drill harness.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an error as well"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doctor", help="show what can run here; exit 1 if the default cannot")
    doc.add_argument(
        "--start",
        action="store_true",
        help="also start a throwaway PostgreSQL server and the S3 backend",
    )
    for name in _DOCTOR_OPTIONS:
        spec = OPTIONS_BY_NAME[name]
        doc.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            choices=spec.choices,
            help=f"{spec.help} (env {spec.env})",
        )
    doc.set_defaults(run=_doctor)
    sets.add_commands(sub)
    verify.add_commands(sub)
    pitr.add_commands(sub)
    cloudflare.add_commands(sub)
    for store_commands in (objects, kv, repo, retention):
        store_commands.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``drill``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # A handler of our own for this call (not basicConfig): main() may run in-process many
    # times, each with its own stderr.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("harness")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        code: int = args.run(args)
        return code
    except DrillError as exc:
        return _fail(args, exc.render("drill"), exit_code(exc))
    except psycopg.Error as exc:
        return _fail(args, f"database error: {explain_db_error(exc)}", EXIT_FAILED)
    except Exception as exc:  # the last line of defence: one line, not a traceback
        first = (redact(str(exc)).strip().splitlines() or [""])[0]
        return _fail(
            args,
            f"unexpected {type(exc).__name__}: {first} (run with --debug for the traceback)",
            EXIT_FAILED,
        )
    finally:
        logger.removeHandler(handler)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    if args.debug:
        # The traceback may quote values: redact it like everything else we print.
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
    print(f"drill: error: {redact(message)}", file=sys.stderr)
    return code


def exit_code(exc: DrillError) -> int:
    """1 when a check or step failed, 2 when the input was wrong."""
    if isinstance(exc, (ConfigError, ConnectError, ObjectNotFound)):
        return EXIT_USAGE
    if isinstance(exc, RestoreError) and exc.phase in INPUT_PHASES:
        return EXIT_USAGE
    if isinstance(exc, BackupError) and exc.phase in ("preflight", "options"):
        return EXIT_USAGE
    return EXIT_FAILED


def _doctor(args: argparse.Namespace) -> int:
    try:
        # Loaded here: the drill stack (providers, moto, testcontainers) is an optional extra.
        from harness.infra import doctor
    except ImportError:
        print(f"drill: error: {DRILLS_EXTRA}", file=sys.stderr)
        return EXIT_FAILED
    config = config_from(args)
    with tempfile.TemporaryDirectory(prefix="drill-doctor-") as tmp:
        findings = doctor.examine(config, start=args.start, workdir=Path(tmp))
    width = max(len(f.area) for f in findings)
    for finding in findings:
        mark = "ok " if finding.ok else ("ERR" if finding.needed else "-- ")
        print(f"{mark} {finding.area:<{width}}  {redact(finding.detail)}")
    ready = doctor.embedded_ready(findings)
    print("embedded default: " + ("ready" if ready else "NOT ready (see ERR lines)"))
    return EXIT_OK if ready else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
