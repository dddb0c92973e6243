"""Errors of the cluster operations."""
from __future__ import annotations

from typing import Any, List

from socketio.exceptions import TimeoutError as SocketIOTimeoutError


class ClusterTimeoutError(SocketIOTimeoutError):
    """A request to the cluster timed out before every answer arrived.

    It is a ``socketio.exceptions.TimeoutError``, so code written for
    ``sio.call()`` catches it too.

    :ivar responses: the answers that did arrive (for ``fetch_sockets``, the
                     sockets found, this server's included).
    :ivar expected: how many answers (servers, or clients for
                    ``emit_with_ack``) were expected.
    :ivar received: how many arrived.
    """

    def __init__(self, what: str, responses: List[Any], expected: int,
                 received: int) -> None:
        super().__init__(f'{what} timed out: {received} of {expected} '
                         f'expected answers arrived')
        self.responses = responses
        self.expected = expected
        self.received = received
