"""The ``drill`` command.

Exit codes: 0 success; 1 a check or verification failed (or, for ``doctor``, the embedded
default cannot run); 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import doctor
from harness.config import OPTIONS_BY_NAME, DrillConfig, OptionSpec
from harness.errors import DrillError
from harness.redact import redact

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Options of DrillConfig the CLI exposes, as --<name> (the pytest spelling is --drill-<name>).
_CLI_OPTIONS = ("pg_bindir", "pg_version", "run_as", "s3", "provider")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``drill``."""
    parser = argparse.ArgumentParser(prog="drill", description="Recovery-drill harness.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doctor", help="show what can run here; exit 1 if the default cannot")
    doc.add_argument(
        "--start",
        action="store_true",
        help="also start a throwaway PostgreSQL server and the S3 backend",
    )
    for name in _CLI_OPTIONS:
        spec = OPTIONS_BY_NAME[name]
        doc.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            choices=spec.choices,
            help=f"{spec.help} (env {spec.env})",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``drill``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "doctor":
            return _doctor(args)
    except DrillError as exc:
        print(f"drill: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE  # pragma: no cover - parser.error exits


def _config_from(args: argparse.Namespace) -> DrillConfig:
    def lookup(spec: OptionSpec) -> str | None:
        value = getattr(args, spec.name, None)
        return str(value) if value is not None else None

    return DrillConfig.resolve(lookup)


def _doctor(args: argparse.Namespace) -> int:
    config = _config_from(args)
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
