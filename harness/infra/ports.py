"""Loopback ports for throwaway servers."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"

# Log lines by which servers say their port was taken between our probe and their bind.
PORT_TAKEN_MARKERS = ("Address already in use", "could not bind", "address already in use")


def free_port() -> int:
    """Ask the OS for a currently free TCP port on 127.0.0.1.

    The port is free when this returns, not necessarily when a server binds it: callers
    retry with a new port when the server reports it taken (see :data:`PORT_TAKEN_MARKERS`).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_taken(log_text: str) -> bool:
    """Tell whether a server log says it could not bind its port."""
    return any(marker in log_text for marker in PORT_TAKEN_MARKERS)
