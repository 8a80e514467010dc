import shlex
from pathlib import Path

from harness.infra.pg_server import ServerSettings
from harness.infra.privilege import NOBODY_UID, ServerIdentity


def test_settings_bind_loopback_on_the_given_port_without_unix_socket():
    lines = ServerSettings().lines(port=54321)
    assert "listen_addresses = '127.0.0.1'" in lines
    assert "port = '54321'" in lines
    assert "unix_socket_directories = ''" in lines
    assert not any(line.startswith("archive_mode") for line in lines)


def test_archiving_copies_without_overwriting_and_quotes_for_the_shell():
    lines = ServerSettings(archive_dir=Path("/tmp/it's wal")).lines(port=1)
    assert "archive_mode = 'on'" in lines
    command = next(line for line in lines if line.startswith("archive_command"))
    # Undo the conf quoting ('' for '), then split the way the server's shell will.
    value = command.split(" = ", 1)[1][1:-1].replace("''", "'")
    target = "/tmp/it's wal/%f"
    assert shlex.split(value) == ["test", "!", "-f", target, "&&", "cp", "%p", target]


def test_extra_settings_are_quoted():
    lines = ServerSettings(extra=(("application_name", "a'b"),)).lines(port=1)
    assert "application_name = 'a''b'" in lines


def test_userns_identity_prefixes_unshare_mapped_to_nobody():
    argv = ServerIdentity("userns").wrap([Path("/bin/pg_ctl"), "start"])
    assert argv[:4] == [
        "unshare",
        "--user",
        f"--map-user={NOBODY_UID}",
        f"--map-group={NOBODY_UID}",
    ]
    assert argv[4:] == ["/bin/pg_ctl", "start"]
    assert ServerIdentity("direct").wrap(["pg_ctl"]) == ["pg_ctl"]
    assert ServerIdentity("system-user", "drillpg").run_user == "drillpg"
    assert ServerIdentity("userns").run_user is None
