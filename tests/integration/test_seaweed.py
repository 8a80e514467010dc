"""The SeaweedFS server's lifecycle: ports, retries, and what it leaves on the machine."""

import socket
import tempfile
from pathlib import Path

import httpx

from harness.infra.ports import free_port
from harness.infra.s3.seaweed import SeaweedServer


def _mentions(names, ports):
    return sorted(n for n in names if "seaweedfs" in n and any(str(p) in n for p in ports))


def test_start_and_stop_leave_nothing_in_the_system_temp_dir(tmp_path):
    system_tmp = Path(tempfile.gettempdir())
    before = {p.name for p in system_tmp.iterdir()}
    server = SeaweedServer(tmp_path / "weed")
    with server:
        ports = list(server.ports.values())
        assert httpx.get(f"{server.endpoint_url}/healthz", timeout=5).status_code == 200
    new = {p.name for p in system_tmp.iterdir()} - before
    assert _mentions(new, ports) == []


def test_a_port_taken_before_weed_binds_it_is_retried_with_new_ports(tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    picks = iter([taken])

    def picker():
        return next(picks, None) or free_port()

    try:
        with SeaweedServer(tmp_path / "weed", port_picker=picker) as server:
            assert taken not in server.ports.values()
            assert httpx.get(f"{server.endpoint_url}/healthz", timeout=5).status_code == 200
            said = server.log_text().lower()
            # weed mini checks its ports first; a part that binds late says it on binding.
            assert "port allocation failed" in said or "address already in use" in said
    finally:
        blocker.close()
