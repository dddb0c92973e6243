"""The ``cmd`` operations a test client can ask a server to perform.

A client calls ``cmd`` on namespace ``/`` with ``{"op": <name>, ...}``; the
other keys are the keyword arguments of the operation below and the return
value is the acknowledgement. Event arguments are given as a list (``args``)
and emitted as that many Socket.IO arguments: ``[x]`` sends ``x``, ``[]``
sends nothing. Failures come back as ``{"error": "..."}``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Sequence

import socketio

logger = logging.getLogger(__name__)

Ack = Any


class CommandHandler:
    """Executes ``cmd`` requests against one ``socketio.Server``."""

    def __init__(self, server: socketio.Server, name: str) -> None:
        self._server = server
        self._name = name
        self._operations: dict[str, Callable[..., Ack]] = {
            'emit': self.emit,
            'call': self.call,
            'enter_room': self.enter_room,
            'leave_room': self.leave_room,
            'close_room': self.close_room,
            'disconnect': self.disconnect,
            'rooms': self.rooms,
            'stats': self.stats,
            'live_servers': self.live_servers,
            'emit_sequence': self.emit_sequence,
            'ping': self.ping,
        }

    def __call__(self, request: dict[str, Any]) -> Ack:
        """Run one request. Errors are returned, not raised, so that the
        client always gets an acknowledgement."""
        arguments = dict(request)
        operation = self._operations.get(arguments.pop('op', None))
        if operation is None:
            return {'error': f'unknown op in {request!r}'}
        try:
            return operation(**arguments)
        except Exception as exc:
            logger.exception('cmd %r failed', request)
            return {'error': f'{type(exc).__name__}: {exc}'}

    def emit(
        self,
        event: str,
        args: Sequence[Any] = (),
        to: Any = None,
        skip_sid: Any = None,
        namespace: str = '/',
    ) -> Ack:
        """Emit ``event`` with ``args`` to a sid, a room, a list of them or
        everyone."""
        self._server.emit(
            event, tuple(args), to=to, skip_sid=skip_sid, namespace=namespace
        )
        return {'ok': True}

    def call(
        self,
        event: str,
        to: str,
        args: Sequence[Any] = (),
        namespace: str = '/',
        timeout: float = 10,
    ) -> Ack:
        """Emit to one sid (on any server); return the client's ack."""
        try:
            answer = self._server.call(
                event, tuple(args), to=to, namespace=namespace, timeout=timeout
            )
        except socketio.exceptions.TimeoutError:
            return {'error': 'timeout'}
        # Several ack arguments arrive as a tuple; a list keeps them in one
        # argument of the cmd acknowledgement.
        return list(answer) if isinstance(answer, tuple) else answer

    def enter_room(self, sid: str, room: str, namespace: str = '/') -> Ack:
        """Add a sid connected to this server to a room."""
        self._server.enter_room(sid, room, namespace=namespace)
        return {'ok': True}

    def leave_room(self, sid: str, room: str, namespace: str = '/') -> Ack:
        """Remove a sid connected to this server from a room."""
        self._server.leave_room(sid, room, namespace=namespace)
        return {'ok': True}

    def close_room(self, room: str, namespace: str = '/') -> Ack:
        """Remove every member of a room, cluster-wide."""
        self._server.close_room(room, namespace=namespace)
        return {'ok': True}

    def disconnect(self, sid: str, namespace: str = '/') -> Ack:
        """Disconnect a sid, which may be connected to another server."""
        self._server.disconnect(sid, namespace=namespace)
        return {'ok': True}

    def rooms(self, sid: str, namespace: str = '/') -> Ack:
        """Rooms of a sid connected to this server."""
        return list(self._server.rooms(sid, namespace=namespace))

    def stats(self) -> Ack:
        """The manager's counters, ``{}`` if it has none."""
        stats = getattr(self._server.manager, 'stats', None)
        return stats() if stats else {}

    def live_servers(self, namespace: str = '/') -> Ack:
        """The manager's count of live servers, ``None`` if it cannot tell."""
        count = getattr(self._server.manager, 'live_server_count', None)
        return count(namespace) if count else None

    def emit_sequence(
        self,
        event: str,
        count: int,
        interval: float = 0.0,
        to: Any = None,
        namespace: str = '/',
        fields: dict[str, Any] | None = None,
    ) -> Ack:
        """Start emitting ``{"n": 1..count, "t": <unix time>, **fields}``
        in the background, one every ``interval`` seconds (0: as fast as
        possible); return at once."""
        self._server.start_background_task(
            self._run_sequence, event, count, interval, to, namespace,
            fields or {}
        )
        return {'ok': True}

    def ping(self) -> Ack:
        """Identify this server."""
        return {'name': self._name, 'pid': os.getpid()}

    def _run_sequence(
        self,
        event: str,
        count: int,
        interval: float,
        to: Any,
        namespace: str,
        fields: dict[str, Any],
    ) -> None:
        start = time.monotonic()
        for n in range(1, count + 1):
            self._server.emit(
                event,
                {'n': n, 't': time.time(), **fields},
                to=to,
                namespace=namespace,
            )
            # paced against the start, so that the rate does not drift
            self._server.sleep(
                max(0.0, start + n * interval - time.monotonic())
            )
