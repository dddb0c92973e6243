"""Loopback port allocation."""

from __future__ import annotations

import socket

LOOPBACK = '127.0.0.1'


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now.

    The port is only reserved until this function returns, so callers that
    hand it to another process must retry when that process fails to bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]
