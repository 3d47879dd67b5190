"""Tell systemd the controller is ready (``Type=notify`` in deploy/systemd/phonebank.service).

Hand-written: the protocol is one datagram of ``KEY=value`` lines to the socket named in ``$NOTIFY_SOCKET``
(sd_notify(3)); the Python bindings need libsystemd's headers to build, which a venv install should not require.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``); False when not run by systemd or the socket refused it."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket (Linux): NUL first
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True
