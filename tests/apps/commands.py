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

try:
    from sio_redis_streams import ClusterTimeoutError
except ImportError:  # the pub/sub stand-in runs without the package
    ClusterTimeoutError = socketio.exceptions.TimeoutError

logger = logging.getLogger(__name__)

SERVER_EVENT_NAMESPACES = ('/', '/chat')


def describe_handshake(handshake: dict[str, Any]) -> dict[str, Any]:
    """The part of a handshake the tests compare (as the Node server
    reports it)."""
    headers = handshake.get('headers') or {}
    return {
        'address': handshake.get('address'),
        'query': handshake.get('query'),
        'auth': handshake.get('auth'),
        'url': handshake.get('url'),
        'headers': {k: v for k, v in headers.items() if k == 'user-agent'},
    }


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
            'sequence_progress': self.sequence_progress,
            'ping': self.ping,
            'fetch_sockets': self.fetch_sockets,
            'sockets_join': self.sockets_join,
            'sockets_leave': self.sockets_leave,
            'disconnect_sockets': self.disconnect_sockets,
            'set_data': self.set_data,
            'server_side_emit': self.server_side_emit,
            'server_side_call': self.server_side_call,
            'emit_with_ack': self.emit_with_ack,
            'server_count': self.server_count,
            'server_events': self.server_events,
            'fetched_socket': self.fetched_socket,
            'connects': self.connects,
            'recovered': self.recovered,
        }
        self._connects: list[dict[str, Any]] = []
        self._sequences: dict[str, dict[str, Any]] = {}
        self._server_events: dict[str, list[dict[str, Any]]] = {}
        for namespace in SERVER_EVENT_NAMESPACES:
            self._listen_to_servers(namespace)

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
        tag: str | None = None,
    ) -> Ack:
        """Start emitting ``{"n": 1..count, "t": <unix time>, **fields}``
        in the background, one every ``interval`` seconds (0: as fast as
        possible); return at once. With a ``tag``, ``sequence_progress(tag)``
        reports how far it is (for the benchmark: when has the emitter
        finished?)."""
        progress = None
        if tag is not None:
            progress = {'count': count, 'emitted': 0, 'started': time.time(),
                        'finished': None}
            self._sequences[tag] = progress
        self._server.start_background_task(
            self._run_sequence, event, count, interval, to, namespace,
            fields or {}, progress
        )
        return {'ok': True}

    def sequence_progress(self, tag: str) -> Ack:
        """``{"count", "emitted", "started", "finished"}`` of a tracked
        sequence (unix times; ``finished`` is ``None`` until done)."""
        return self._sequences.get(tag) or {'error': f'no sequence {tag!r}'}

    def fetch_sockets(
        self,
        namespace: str = '/',
        to: Any = None,
        skip: Any = None,
        timeout: float | None = None,
    ) -> Ack:
        """The sockets of the cluster, in the Node server's format."""
        sockets = self._manager.fetch_sockets(
            namespace, to=to, skip=skip, timeout=timeout
        )
        return sorted(
            (
                {
                    'id': s.sid,
                    'rooms': sorted(s.rooms),
                    'data': s.data,
                    'server': s.server,
                    'handshake': describe_handshake(s.handshake),
                }
                for s in sockets
            ),
            key=lambda s: s['id'],
        )

    def on_connect(self, namespace: str, sid: str, _environ: Any = None,
                   auth: Any = None) -> bool:
        """The connect handler of every namespace: accept, join the room
        named by ``auth["join"]`` if any, and note whether the manager says
        it is a recovered session."""
        if isinstance(auth, dict) and 'join' in auth:
            self._server.enter_room(sid, auth['join'], namespace=namespace)
        is_recovered = getattr(self._manager, 'is_recovered', None)
        self._connects.append({
            'sid': sid, 'namespace': namespace,
            'recovered': bool(is_recovered and is_recovered(sid, namespace)),
        })
        return True

    def connects(self) -> Ack:
        """Every connection accepted so far, in order."""
        return self._connects

    def recovered(self, sid: str, namespace: str = '/') -> Ack:
        return self._manager.is_recovered(sid, namespace)

    def fetched_socket(self, sid: str, action: str, namespace: str = '/',
                       args: Sequence[Any] = ()) -> Ack:
        """Fetch one socket of the cluster and call ``action`` (``emit``,
        ``call``, ``join``, ``leave``, ``disconnect``) on it with
        ``args``."""
        [socket] = self._manager.fetch_sockets(namespace, to=sid)
        result = getattr(socket, action)(*args)
        return {'ok': True, 'server': socket.server,
                'result': list(result) if isinstance(result, tuple)
                else result}

    def sockets_join(
        self, rooms: Any, namespace: str = '/', to: Any = None,
        skip: Any = None
    ) -> Ack:
        self._manager.sockets_join(rooms, namespace, to=to, skip=skip)
        return {'ok': True}

    def sockets_leave(
        self, rooms: Any, namespace: str = '/', to: Any = None,
        skip: Any = None
    ) -> Ack:
        self._manager.sockets_leave(rooms, namespace, to=to, skip=skip)
        return {'ok': True}

    def disconnect_sockets(
        self, namespace: str = '/', to: Any = None, skip: Any = None,
        close: bool = False
    ) -> Ack:
        self._manager.disconnect_sockets(
            namespace, to=to, skip=skip, close=close
        )
        return {'ok': True}

    def set_data(self, sid: str, data: dict[str, Any],
                 namespace: str = '/') -> Ack:
        """Merge ``data`` into the data of a local socket."""
        merged = dict(self._manager.get_data(sid, namespace) or {})
        merged.update(data)
        self._manager.set_data(sid, merged, namespace)
        return {'ok': True}

    def server_side_emit(self, event: str, args: Sequence[Any] = (),
                         namespace: str = '/') -> Ack:
        self._manager.server_side_emit(event, *args, namespace=namespace)
        return {'ok': True}

    def server_side_call(
        self, event: str, args: Sequence[Any] = (), namespace: str = '/',
        timeout: float | None = None
    ) -> Ack:
        try:
            return {'responses': self._manager.server_side_call(
                event, *args, namespace=namespace, timeout=timeout)}
        except ClusterTimeoutError as exc:
            return {'error': str(exc), 'responses': exc.responses,
                    'expected': exc.expected}

    def emit_with_ack(
        self, event: str, args: Sequence[Any] = (), to: Any = None,
        skip_sid: Any = None, namespace: str = '/',
        timeout: float | None = None
    ) -> Ack:
        try:
            return {'responses': self._manager.emit_with_ack(
                event, tuple(args), to=to, namespace=namespace,
                skip_sid=skip_sid, timeout=timeout)}
        except ClusterTimeoutError as exc:
            return {'error': str(exc), 'responses': exc.responses,
                    'expected': exc.expected}

    def server_count(self, namespace: str = '/') -> Ack:
        return self._manager.server_count(namespace)

    def server_events(self, namespace: str = '/') -> Ack:
        """The server-side events received so far in ``namespace``."""
        return self._server_events.get(namespace, [])

    def _listen_to_servers(self, namespace: str) -> None:
        manager = self._server.manager
        if not hasattr(manager, 'on_server_event'):
            return  # python-socketio's RedisManager has no such thing

        def record(event: str, args: tuple[Any, ...]) -> None:
            self._server_events.setdefault(namespace, []).append(
                {'event': event, 'args': list(args)})

        @manager.on_server_event('ping-servers', namespace=namespace)
        def ping_servers(*args: Any) -> str:
            record('ping-servers', args)
            return f'pong-from-{self._name}'

        @manager.on_server_event('announce', namespace=namespace)
        def announce(*args: Any) -> None:
            record('announce', args)

    @property
    def _manager(self) -> Any:
        return self._server.manager

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
        progress: dict[str, Any] | None = None,
    ) -> None:
        start = time.monotonic()
        for n in range(1, count + 1):
            self._server.emit(
                event,
                {'n': n, 't': time.time(), **fields},
                to=to,
                namespace=namespace,
            )
            if progress is not None:
                progress['emitted'] = n
            # paced against the start, so that the rate does not drift
            self._server.sleep(
                max(0.0, start + n * interval - time.monotonic())
            )
        if progress is not None:
            progress['finished'] = time.time()
