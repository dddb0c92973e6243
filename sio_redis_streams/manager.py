"""The python-socketio client manager: every cross-server operation of a
``socketio.Server`` (or Flask-SocketIO app) becomes a cluster message on the
Redis stream or on PUB/SUB, and the messages of the other servers become
local operations.

This module is python-socketio's side only: the protocol is
:mod:`sio_redis_streams.core`'s, the connections and tasks are the sync
driver's (:mod:`sio_redis_streams.sync`), and the cluster API is
:class:`~sio_redis_streams.cluster_api.ClusterAPI`.
"""
from __future__ import annotations

import logging
import secrets
from typing import Any, Callable, List, Optional, Union

import socketio

from . import hooks
from .cluster_api import ClusterAPI
from .core.arguments import arguments
from .core.addressing import BroadcastOptions
from .core.requests import AckRequest
from .core.stats import Stats
from .options import Options, param_docs
from .sync.driver import SyncDriver
from .sync.local import reaches
from .sync.tasks import check_monkey_patched

Room = Union[str, int]
Rooms = Union[Room, List[Room], None]

default_logger = logging.getLogger('sio_redis_streams')


class RedisStreamsManager(ClusterAPI, socketio.Manager):
    """A python-socketio client manager that links servers through a Redis
    stream, speaking the protocol of ``@socket.io/redis-streams-adapter``.

    Use it as ``socketio.Server(client_manager=mgr)`` or
    ``flask_socketio.SocketIO(app, client_manager=mgr)``; with
    ``write_only=True`` it is an emitter for processes that run no server.

    :param url: where Redis is: ``redis://``, ``rediss://`` (TLS),
                ``unix://``, ``valkey://`` / ``valkeys://`` (the valkey client
                when it is installed), ``redis+sentinel://`` /
                ``valkey+sentinel://`` (``host:port,host:port/db/service``)
                or ``redis+cluster://`` / ``rediss+cluster://`` /
                ``valkey+cluster://`` (``host:port,host:port``: a Redis
                Cluster, any one node being enough).
    :raises ValueError: naming an unknown option, or one with a wrong value.

    The options, all keyword arguments:

"""
    __doc__ = (__doc__ or '') + param_docs()
    name = 'redis-streams'

    def __init__(self, url: str = 'redis://localhost:6379/0',
                 **options: Any) -> None:
        self.options = Options.of(url, options)
        super().__init__()
        self.logger = self.options.logger or default_logger
        self.write_only = self.options.write_only
        #: This server's id in the cluster (16 hex digits, as Node's).
        self.uid = secrets.token_hex(8)
        #: The same, where python-socketio's Admin UI looks for it.
        self.host_id = self.uid
        self._driver = SyncDriver(self.options, self.uid, Stats(),
                                  self.logger)

    # -- lifecycle ---------------------------------------------------------

    def set_server(self, server: Any) -> None:
        """Attach to a python-socketio server (called by the server)."""
        check_monkey_patched(server.eio.async_mode)
        super().set_server(server)
        if self.write_only:
            hooks.attach(server, on_shutdown=self.close)
            return
        self._driver.attach(self, server)
        recovery = self._driver.recovery
        recovering = self.options.connection_state_recovery
        hooks.attach(server, on_shutdown=self.close,
                     before_connect=self._before_connect,
                     after_connect=self._after_connect,
                     send_packet=recovery.send_packet if recovering else None,
                     connection_lost=recovery.connection_lost
                     if recovering else None)

    def initialize(self) -> None:
        """Start the background tasks (called by the server on its first
        connection)."""
        self.start()

    def start(self) -> None:
        """Start the background tasks now, if they are not running yet.

        The server starts them with its first client, and any cluster
        operation starts them too; call this to have a server take part in
        the cluster (heartbeats, requests) before any of that happens.
        """
        self._driver.start()

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until the outbox is empty: every message emitted so far is
        in Redis, or was refused by Redis for good (logged and counted in
        ``write_errors``); ``False`` on timeout (``timeout`` seconds)."""
        return self._driver.writer.flush(timeout)

    def close(self) -> None:
        """Stop the background tasks and close the connections to Redis.

        What waits in the outbox is written, and the sessions of connected
        clients are stored, within ``close_timeout`` seconds.
        ``sio.shutdown()`` calls this.
        """
        self._driver.close()

    # -- python-socketio manager interface ---------------------------------

    def pre_connect(self, eio_sid: str, namespace: str) -> Optional[str]:
        """Give a connecting client its sid (python-socketio >= 5.18 calls
        this, then ``connect(sid)`` once the client is accepted)."""
        return self._admit(eio_sid, namespace, super().pre_connect)

    def connect(self, eio_sid: str, namespace: str) -> Optional[str]:
        if hooks.TWO_STEP_CONNECT:
            return super().connect(eio_sid, namespace)  # here, it is a sid
        return self._admit(eio_sid, namespace, super().connect)

    def emit(self, event: str, data: Any, namespace: Optional[str] = None,
             room: Rooms = None, skip_sid: Union[str, List[str], None] = None,
             callback: Optional[Callable[..., Any]] = None,
             to: Rooms = None, **kwargs: Any) -> None:
        """Emit to clients of every server of the cluster.

        The arguments are those of ``socketio.Server.emit``; ``callback``
        may address clients of other servers, and runs here with each
        client's answer.
        """
        namespace = namespace or '/'
        room = to if to is not None else room
        if kwargs.get('ignore_queue'):
            return super().emit(event, data, namespace, room=room,
                                skip_sid=skip_sid, callback=callback)
        if callback is not None:
            if self.server is None:
                raise RuntimeError('Callbacks can only be issued from the '
                                   'context of a server.')
            if room is None:
                raise ValueError('Cannot use callback without a room set.')
        local_first = callback is not None or \
            self._driver.recovery.delivers_own_broadcasts
        if self.server is not None and local_first and \
                reaches(self, namespace, room):
            super().emit(event, data, namespace, room=room,
                         skip_sid=skip_sid, callback=callback)
        opts = BroadcastOptions.of(room, skip_sid)
        if callback is None:
            self._driver.submit(self._driver.protocol.broadcast(
                namespace, event, arguments(data), opts))
        elif not self._is_local_sid(room, namespace):
            self._emit_with_callback(namespace, event, arguments(data), opts,
                                     callback)

    def call_socket(self, event: str, args: tuple, sid: str, namespace: str,
                    timeout: float) -> Any:
        """``sio.call()`` to one socket of any server (for
        :meth:`RemoteSocket.call`)."""
        if self.write_only or self.server is None:
            raise RuntimeError('call() needs a server to hear the answer: '
                               'use it on a server, not a write-only '
                               'manager')
        return self.server.call(event, args, to=sid, namespace=namespace,
                                timeout=timeout)

    def can_disconnect(self, sid: str, namespace: str) -> bool:
        if self._is_local(sid, namespace) and \
                self._driver.recovery.delivers_own_broadcasts:
            return True
        self.disconnect_sockets(namespace, to=sid)
        return False

    def disconnect(self, sid: str, namespace: Optional[str] = None,
                   **kwargs: Any) -> None:
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            eio_sid = self.eio_sid_from_sid(sid, namespace)
            if eio_sid is not None and self._driver.local is not None:
                self._driver.local.disconnected(eio_sid, namespace)
            self._driver.recovery.forget(namespace, sid)
            return super().disconnect(sid, namespace)
        if self.server is not None and self._is_local(sid, namespace) \
                and self._driver.recovery.delivers_own_broadcasts:
            self.server.disconnect(sid, namespace=namespace,
                                   ignore_queue=True)
        else:
            self.disconnect_sockets(namespace, to=sid)

    def enter_room(self, sid: str, namespace: str, room: Room,
                   eio_sid: Optional[str] = None) -> None:
        if self._is_local(sid, namespace):
            return super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.sockets_join(room, namespace, to=sid)

    def leave_room(self, sid: str, namespace: str, room: Room) -> None:
        if self._is_local(sid, namespace):
            return super().leave_room(sid, namespace, room)
        self.sockets_leave(room, namespace, to=sid)

    def close_room(self, room: Room, namespace: Optional[str] = None) -> None:
        self.sockets_leave(room, namespace or '/', to=room)

    # -- helpers -----------------------------------------------------------

    def _emit_with_callback(self, namespace: str, event: str, args: List[Any],
                            opts: BroadcastOptions,
                            callback: Callable[..., Any]) -> None:
        """An emit with a callback to a socket of another server: the
        callback runs here with the client's answer."""
        timeout = self.options.ack_timeout
        request = AckRequest(callback, timeout, self.uid)
        message = self._driver.protocol.broadcast(
            namespace, event, args,
            opts.with_flags(timeout=int(timeout * 1000)), request.id)
        try:
            self._driver.ask(request, message, timeout, wait=False)
        except RuntimeError as exc:  # closed
            self.logger.error('cannot send an emit with callback to other '
                              'servers: %s', exc)

    def _before_connect(self, eio_sid: str, namespace: str,
                        auth: Any) -> None:
        self._driver.local.connected(eio_sid, namespace, auth)
        self._driver.recovery.before_connect(eio_sid, namespace, auth)

    def _after_connect(self, eio_sid: str, namespace: str) -> None:
        self._driver.recovery.after_connect(eio_sid, namespace)
        if self.sid_from_eio_sid(eio_sid, namespace) is None:
            self._driver.local.disconnected(eio_sid, namespace)  # refused

    def _admit(self, eio_sid: str, namespace: str,
               allocate: Callable[[str, str], Optional[str]]
               ) -> Optional[str]:
        """The sid of a connecting client (its old one when its session is
        recovered)."""
        sid = self._driver.recovery.admit(eio_sid, namespace, allocate)
        if sid is not None:
            self._driver.watch(namespace)
        return sid

    def _is_local_sid(self, room: Rooms, namespace: str) -> bool:
        return isinstance(room, str) and self._is_local(room, namespace)

    def _is_local(self, sid: str, namespace: str) -> bool:
        """Whether ``sid`` is connected to this server, or connecting: from
        python-socketio 5.18 on, a client is only "pre-connected" while its
        connect handler runs, and that handler often joins rooms."""
        return self.is_connected(sid, namespace) or bool(
            getattr(self, 'is_pre_connected', None) and
            self.is_pre_connected(sid, namespace))
