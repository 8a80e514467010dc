import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest

from harness.errors import ConnectError, ServerStartError
from harness.infra.pg_server import ClusterTemplate, ServerSettings, ThrowawayServer
from harness.infra.ports import free_port
from harness.infra.privilege import ServerIdentity, ensure_system_user
from harness.pg.binaries import find_binaries
from harness.pg.sql import connect, count_rows, server_version


def pid_alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_server_from_template_accepts_logins_and_leaves_nothing_behind(default_template, tmp_path):
    server = ThrowawayServer(default_template, workdir=tmp_path / "s1")
    with server:
        assert server.running
        pid = server.pid
        with connect(server.target()) as conn:
            checksums = conn.execute("SHOW data_checksums").fetchone()[0]
            listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        assert checksums == "on"
        assert listen == "127.0.0.1"
        assert server_version(server.target()).split(".")[0] == str(default_template.binaries.major)
        if default_template.identity.mode == "userns":
            # Inside its namespace the postmaster is nobody; root's files stay root's.
            inside, outside, _ = Path(f"/proc/{pid}/uid_map").read_text().split()
            assert (inside, outside) == ("65534", "0")
    assert pid is not None
    assert not pid_alive(pid)
    assert not server.workdir.exists()


def test_two_servers_run_at_once_on_different_ports(default_template, tmp_path):
    with (
        ThrowawayServer(default_template, workdir=tmp_path / "a") as a,
        ThrowawayServer(default_template, workdir=tmp_path / "b") as b,
    ):
        assert a.port != b.port
        with connect(a.target()) as conn:
            conn.execute("CREATE TABLE only_on_a (x int)")
            conn.commit()
        with connect(b.target()) as conn:
            assert conn.execute("SELECT to_regclass('only_on_a')").fetchone()[0] is None


def test_port_taken_between_probe_and_bind_is_retried(default_template, tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    picks = iter([taken, free_port()])
    try:
        with ThrowawayServer(
            default_template, workdir=tmp_path / "p", port_picker=lambda: next(picks)
        ) as server:
            assert server.port != taken
            assert server.running
            assert "could not bind" in server.log_tail(200) or "already in use" in server.log_tail(
                200
            )
    finally:
        blocker.close()


class _FirstLoginsRefused(ThrowawayServer):
    """A server whose first login probes are refused, as while it finishes crash recovery."""

    refusals = 2

    def _can_login(self):
        if self.refusals:
            self.refusals -= 1
            raise ConnectError("cannot connect: the database system is starting up")
        return super()._can_login()


def test_logins_refused_while_the_server_starts_are_retried(default_template, tmp_path):
    with _FirstLoginsRefused(default_template, workdir=tmp_path / "slow") as server:
        assert server.refusals == 0
        assert server.running
        assert server_version(server.target())


class _DiesOnceAccepting(ThrowawayServer):
    """A postmaster that ends right after it began to accept connections."""

    def _launch(self, *, new_port):
        super()._launch(new_port=new_port)
        postmaster = psutil.Process(self.pid)
        postmaster.send_signal(signal.SIGKILL)
        postmaster.wait(timeout=30)


def test_a_postmaster_that_ends_after_accepting_is_reported_not_waited_for(
    default_template, tmp_path
):
    # A start timeout no test would wait out: the error must come from the exit itself.
    server = _DiesOnceAccepting(default_template, workdir=tmp_path / "dies", start_timeout=3600)
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert "the postmaster exited after it began to accept connections" in str(info.value)
    assert "did not start" in str(info.value)
    assert not server.running


def test_stop_leaves_alone_a_process_that_took_over_a_stale_pid(default_template, tmp_path):
    server = ThrowawayServer(default_template, workdir=tmp_path / "stale")
    server.start()
    server.stop()
    # A crash leaves postmaster.pid behind; the system later gives that pid to someone else.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (server.datadir / "postmaster.pid").write_text(f"{bystander.pid}\n{server.datadir}\n")
        again = ThrowawayServer(default_template, workdir=server.workdir)
        assert not again.running
        again.stop()
        assert bystander.poll() is None, "stop() killed a process that is not the postmaster"
    finally:
        bystander.kill()
        bystander.wait()
        server.remove()


def test_start_failure_carries_the_server_log_tail(default_template, tmp_path):
    bad = ServerSettings(extra=(("shared_buffers", "not-a-size"),))
    server = ThrowawayServer(
        default_template, workdir=tmp_path / "bad", settings=bad, start_timeout=20
    )
    with pytest.raises(ServerStartError) as info:
        server.start()
    message = str(info.value)
    assert "did not start" in message
    assert "last lines of" in message
    assert "shared_buffers" in message  # the server's own complaint, from its log
    assert not server.running


def test_stop_escalates_to_kill_when_the_postmaster_hangs(default_template, tmp_path):
    server = ThrowawayServer(default_template, workdir=tmp_path / "hang", stop_timeout=1)
    server.start()
    pid = server.pid
    os.kill(pid, signal.SIGSTOP)  # a postmaster that ignores every shutdown request
    try:
        server.stop()
        assert not pid_alive(pid)
    finally:
        server.remove()


def test_a_drill_can_ask_for_a_specific_major_version(identity, second_major, tmp_path):
    template = ClusterTemplate(
        find_binaries(major=second_major), base_dir=tmp_path / "t", identity=identity
    )
    with ThrowawayServer(template, workdir=tmp_path / "v") as server:
        assert server_version(server.target()).startswith(f"{second_major}.")


def test_wrong_password_is_a_clear_connect_error_without_the_password(default_template, tmp_path):
    with ThrowawayServer(default_template, workdir=tmp_path / "pw") as server:
        good = server.target()
        bad = type(good)(good.host, good.port, good.user, good.dbname, password="wrong-pass-5150")
        with pytest.raises(ConnectError) as info:
            connect(bad)
    message = str(info.value)
    assert "password was rejected" in message
    assert "wrong-pass-5150" not in message
    assert good.password not in message


def test_unreachable_server_is_a_clear_connect_error(default_template):
    from harness.config import PgTarget

    target = PgTarget("127.0.0.1", free_port(), "postgres", "postgres", password="x-unused-1")
    with pytest.raises(ConnectError, match=r"cannot connect to postgresql://postgres@127\.0\.0\.1"):
        connect(target)


@pytest.mark.skipif(os.geteuid() != 0, reason="the system-user fallback is for root only")
def test_system_user_fallback_runs_the_server_as_that_user(public_tmp):
    # Debian's binaries live outside root's private home, which the system user cannot enter.
    debian = [
        b
        for b in (find_binaries(major=m) for m in (15, 16, 17) if _has(m))
        if str(b.bindir).startswith("/usr/")
    ]
    if not debian:
        pytest.skip("needs PostgreSQL binaries under /usr (apt-get install postgresql-15)")
    ensure_system_user("drillpg")
    identity = ServerIdentity("system-user", "drillpg")
    identity.hand_over(public_tmp)
    template = ClusterTemplate(debian[0], base_dir=public_tmp / "t", identity=identity)
    with ThrowawayServer(template, workdir=public_tmp / "s") as server:
        owner = _process_owner(server.pid)
        with psycopg.connect(server.target().conninfo()) as conn:
            conn.execute("CREATE TABLE t AS SELECT generate_series(1, 10) AS x")
            conn.commit()
        assert count_rows(server.target(), "public", "t") == 10
    import pwd

    assert owner == pwd.getpwnam("drillpg").pw_uid


def _has(major):
    try:
        find_binaries(major=major)
    except Exception:
        return False
    return True


def _process_owner(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")
