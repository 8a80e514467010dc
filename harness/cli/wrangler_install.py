"""Install the pinned wrangler where Node.js is present: ``python -m harness.cli.wrangler_install``.

Runs ``npm ci`` in the repository's ``cloudflare/`` directory (the committed
``package.json`` and ``package-lock.json``: exactly the pinned wrangler and its
dependencies, from the npm registry) and checks the version that results. Where Node.js is
missing or too old it says so and exits 0: the Cloudflare drills then skip with the same
reason, and every other drill runs. tox's drills environment runs this before the drills.

Exit codes: 0 installed (or nothing to do without Node), 1 ``npm ci`` failed or installed
another version, 2 no ``cloudflare/package-lock.json`` above the working directory.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from harness.cloudflare.wrangler import PACKAGE_DIR, PINNED_VERSION, Wrangler, node_problem
from harness.errors import ToolError
from harness.proc import run

NPM_TIMEOUT = 600.0


def package_dir(start: Path) -> Path | None:
    """The ``cloudflare/`` directory with a lock file in ``start`` or one of its parents."""
    here = start.resolve()
    for directory in (here, *here.parents):
        if (directory / PACKAGE_DIR / "package-lock.json").is_file():
            return directory / PACKAGE_DIR
    return None


def install(start: Path) -> int:
    """Install the pinned wrangler below the repository holding ``start``; the exit code.

    Args:
        start: a directory inside the repository (the working directory).

    """
    problem = node_problem()
    if problem is not None:
        print(f"wrangler not installed: {problem}; the Cloudflare drills will be skipped")
        return 0
    where = package_dir(start)
    if where is None:
        print(f"no {PACKAGE_DIR}/package-lock.json in {start} or above: run from the repository")
        return 2
    npm = shutil.which("npm")
    if npm is None:
        print("wrangler not installed: node is here but npm is not; install npm")
        return 0
    try:
        run([npm, "ci", "--no-audit", "--no-fund"], timeout=NPM_TIMEOUT, cwd=where)
        version = Wrangler(where / "node_modules" / ".bin" / "wrangler", where).version()
    except ToolError as exc:
        print(f"npm ci in {where} failed: {exc}")
        return 1
    if version != PINNED_VERSION:
        print(f"npm ci installed wrangler {version}, not the pinned {PINNED_VERSION}")
        return 1
    print(f"wrangler {version} installed in {where / 'node_modules'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(install(Path.cwd()))
