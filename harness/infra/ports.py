"""Loopback ports for throwaway servers.

Ports come from port-for: a random port that nothing listens on and that can be bound, taken
from the unassigned ranges *outside* the kernel's ephemeral range. A port the OS hands out
for ``bind(0)`` lies inside that range, where every outgoing connection on the machine (a
server's own client connections included: SeaweedFS opens several between its parts) may
take it as its local port before our server binds it. Random picks also keep parallel
sessions from walking the same sequence. A pick is still only free when made: servers retry
with a new port when they report it taken (:func:`port_taken`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import port_for

from harness.errors import ServerStartError

LOOPBACK = "127.0.0.1"

# Log lines by which servers say their port was taken between our probe and their bind.
PORT_TAKEN_MARKERS = (
    "Address already in use",
    "could not bind",
    "address already in use",
    "Port allocation failed",  # weed mini checks its ports before it binds them
)


@functools.cache
def _candidates() -> frozenset[int]:
    # Reads the ephemeral range from /proc once; the set is ~20,000 ports.
    return frozenset(port_for.available_good_ports())


def free_port(*, exclude: Iterable[int] = ()) -> int:
    """A TCP port free on 127.0.0.1 now, outside the kernel's ephemeral port range.

    Args:
        exclude: ports not to pick (ports already chosen for the same server).

    Raises:
        ServerStartError: no free port was found in the candidate ranges.

    """
    try:
        return port_for.select_random(set(_candidates()), exclude_ports=set(exclude))
    except port_for.PortForException as exc:
        raise ServerStartError(
            f"no free TCP port on {LOOPBACK} outside the ephemeral range ({exc}); stop "
            "servers left over from earlier runs and retry"
        ) from exc


def port_taken(log_text: str) -> bool:
    """Tell whether a server log says it could not bind its port."""
    return any(marker in log_text for marker in PORT_TAKEN_MARKERS)
