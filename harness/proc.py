"""The only module that starts subprocesses.

Commands are argv lists (never a shell), every call has a timeout, credentials travel in the
environment (never in argv), and whatever reaches an exception or a log line is redacted.
Variables of libpq (``PG*``) inherited from the caller's shell are dropped so that a user's
``PGHOST`` or ``PGPASSWORD`` can never redirect a command aimed at a throwaway server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import IO

from harness.errors import ToolFailed, ToolNotFound, ToolTimeout
from harness.redact import get_logger, redact

log = get_logger(__name__)

_TAIL_LINES = 20

Process = subprocess.Popen[bytes]
"""A background process started by :func:`spawn`."""


@dataclass(frozen=True)
class CompletedRun:
    """The outcome of one finished command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def tail(text: str, lines: int = _TAIL_LINES) -> str:
    """Return the last ``lines`` lines of ``text``, redacted."""
    return redact("\n".join(text.splitlines()[-lines:]))


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Build a child's environment: ours without inherited ``PG*`` variables, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if overrides:
        env.update(overrides)
    return env


def run(
    argv: Sequence[str | PathLike[str]],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    user: str | None = None,
    stdin_data: bytes | None = None,
    stdout_path: Path | None = None,
) -> CompletedRun:
    """Run a command to completion and capture its output.

    Args:
        argv: the command; ``argv[0]`` is a path or a name looked up on ``PATH``.
        timeout: seconds before the command is killed.
        env: variables added to the (``PG*``-free) inherited environment.
        cwd: working directory.
        check: raise :class:`ToolFailed` on a non-zero exit.
        user: run as this system user (and its primary group); needs root.
        stdin_data: bytes written to the command's standard input.
        stdout_path: write standard output to this file, byte for byte, instead of
            capturing it (binary output: captured output is decoded as text).

    Raises:
        ToolNotFound: the executable does not exist.
        ToolTimeout: the command ran past ``timeout``.
        ToolFailed: the command exited non-zero and ``check`` is set.

    """
    args = [os.fspath(a) for a in argv]
    shown = [redact(a) for a in args]
    log.debug("run: %s", " ".join(shown))
    started = time.monotonic()
    try:
        with _stdout_sink(stdout_path) as sink:
            proc = subprocess.run(  # noqa: S603 - argv list, no shell
                args,
                input=stdin_data,
                stdout=sink,
                stderr=subprocess.PIPE,
                timeout=timeout,
                env=child_env(env),
                cwd=cwd,
                user=user,
                group=_primary_group(user),
                check=False,
            )
    except FileNotFoundError as exc:
        raise ToolNotFound(
            f"{shown[0]} was not found; install it or point the harness at it (see `drill doctor`)"
        ) from exc
    except PermissionError as exc:
        raise ToolNotFound(f"{shown[0]} exists but cannot be executed: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolTimeout(
            f"{shown[0]} did not finish within {timeout:g} s and was killed "
            f"(command: {' '.join(shown)})"
        ) from exc
    result = CompletedRun(
        argv=tuple(shown),
        returncode=proc.returncode,
        stdout=(proc.stdout or b"").decode("utf-8", "replace"),
        stderr=proc.stderr.decode("utf-8", "replace"),
        seconds=time.monotonic() - started,
    )
    if check and result.returncode != 0:
        raise ToolFailed(shown, result.returncode, tail(result.stderr or result.stdout))
    return result


@contextmanager
def _stdout_sink(path: Path | None) -> Iterator[int | IO[bytes]]:
    if path is None:
        yield subprocess.PIPE
        return
    with path.open("wb") as out:
        yield out


def spawn(
    argv: Sequence[str | PathLike[str]],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start a long-running command in the background with its output sent to ``log_path``.

    The child gets its own session so that a signal aimed at it never reaches the test run.

    Raises:
        ToolNotFound: the executable does not exist.

    """
    args = [os.fspath(a) for a in argv]
    log.debug("spawn: %s", " ".join(redact(a) for a in args))
    with log_path.open("ab") as out:
        try:
            return subprocess.Popen(  # noqa: S603 - argv list, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(env),
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise ToolNotFound(f"{args[0]} was not found") from exc


def stop_process(proc: Process, *, grace: float) -> int:
    """Stop a spawned process: SIGTERM, then SIGKILL after ``grace`` seconds.

    Returns:
        The process's exit status.

    """
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.debug("pid %d ignored SIGTERM for %.1f s; killing it", proc.pid, grace)
        proc.kill()
        return proc.wait(timeout=30)


def pid_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def kill_pid(pid: int) -> None:
    """Send SIGKILL to ``pid`` if it still exists."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _primary_group(user: str | None) -> str | None:
    if user is None:
        return None
    import grp
    import pwd  # local: POSIX only, and only needed for the system-user fallback

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
