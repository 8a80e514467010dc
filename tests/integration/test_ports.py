"""Loopback ports for throwaway servers."""

import socket
from pathlib import Path

from harness.infra.ports import LOOPBACK, free_port


def test_free_ports_lie_outside_the_kernels_ephemeral_range_and_can_be_bound():
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(20):
        port = free_port()
        assert not low <= port <= high, f"{port} is in the ephemeral range {low}-{high}"
        with socket.socket() as sock:
            sock.bind((LOOPBACK, port))


def test_a_listening_port_and_excluded_ports_are_never_picked():
    chosen = {free_port() for _ in range(5)}
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        for _ in range(50):
            port = free_port(exclude=chosen)
            assert port not in chosen
            assert port != busy.getsockname()[1]
