"""The python-socketio client manager: every cross-server operation of a
``socketio.Server`` (or Flask-SocketIO app) becomes a cluster message on the
Redis stream or on PUB/SUB, and the messages of the other servers become
local operations.
"""
from __future__ import annotations

import atexit
import functools
import json as stdlib_json
import logging
import secrets
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Set, Union

import socketio
from socketio.manager import Manager

from . import codec, hooks
from .codec import BroadcastOptions, ClusterMessage, MessageType
from .concurrency import Tasks, check_monkey_patched
from .connection import RedisConnector
from .exceptions import ClusterTimeoutError
from .heartbeat import Heartbeat
from .local import LocalSockets, arguments
from .options import Options
from .pubsub import PubSub
from .recovery import Recovery, SessionStore
from .remote import RemoteSocket
from .requests import AckRequest, CollectRequest, PendingRequests, Request, \
    ack_data
from .stats import Stats
from .stream import StreamReader, StreamWriter

Room = Union[str, int]
Rooms = Union[Room, List[Room], None]

default_logger = logging.getLogger('sio_redis_streams')


class RedisStreamsManager(socketio.PubSubManager):
    """A python-socketio client manager that links servers through a Redis
    stream, speaking the protocol of ``@socket.io/redis-streams-adapter``.

    Use it as ``socketio.Server(client_manager=mgr)`` or
    ``flask_socketio.SocketIO(app, client_manager=mgr)``; with
    ``write_only=True`` it is an emitter for processes that run no server.

    :param url: where Redis is: ``redis://``, ``rediss://`` (TLS),
                ``unix://``, ``valkey://`` / ``valkeys://`` (the valkey client
                when it is installed) or ``redis+sentinel://`` /
                ``valkey+sentinel://`` (``host:port,host:port/db/service``).
    :param redis_client: a ready ``redis.Redis`` (or ``valkey.Valkey``) to
                         take the connection settings from, instead of
                         ``url``. The manager opens its own connections.
    :param stream_name: the name of the stream (the prefix of the stream
                        names when ``stream_count`` > 1).
    :param stream_count: how many streams the namespaces are spread over.
    :param channel_prefix: the prefix of the PUB/SUB channels.
    :param use_sharded_pubsub: use SSUBSCRIBE/SPUBLISH (Redis 7+).
    :param maxlen: the stream is trimmed to about this many entries.
    :param read_count: the most entries one XREAD returns.
    :param block_time_ms: how long one XREAD waits for entries.
    :param session_key_prefix: the prefix of the keys of stored sessions.
    :param heartbeat_interval: seconds between two heartbeats.
    :param heartbeat_timeout: seconds of silence after which a server is
                              considered gone.
    :param write_only: only emit; read nothing and run no server tasks.
    :param logger: the logger to use; ``logging.getLogger(
                   'sio_redis_streams')`` by default.
    :param json: the JSON module for stream entries; by default the one
                 of the server's packets.
    :param redis_options: more keyword arguments for the Redis client.
    :param outbox_size: how many entries may wait for Redis.
    :param outbox_timeout: how long an emit may wait for room in a full
                           outbox while Redis is reachable; with Redis
                           unreachable, a full outbox drops at once.
    :param write_batch_size: the most entries sent in one round trip.
    :param request_timeout: the default timeout of requests to the cluster.
    :param ack_timeout: how long a callback of an emit to a client of
                        another server stays registered.
    :param socket_timeout: the socket timeout for commands (XREAD adds its
                           block time to it).
    :param max_message_size: stream entries and PUB/SUB payloads larger than
                             this are skipped.
    :param close_timeout: how long shutting down may wait for the outbox to
                          drain.
    :param connection_state_recovery: recover the sessions of clients whose
                                      connection dropped (Socket.IO 4.6+
                                      clients): same sid, rooms, data and
                                      every broadcast they missed.
    :param max_disconnection_duration: how long, in seconds, a dropped
                                       session can be recovered.
    :param recovery_max_packets: a client that missed more packets than this
                                 gets a new session instead.
    """
    name = 'redis-streams'

    def __init__(self, url: str = 'redis://localhost:6379/0', *,
                 redis_client: Any = None, stream_name: str = 'socket.io',
                 stream_count: int = 1, channel_prefix: str = 'socket.io',
                 use_sharded_pubsub: bool = False, maxlen: int = 10_000,
                 read_count: int = 100, block_time_ms: int = 5_000,
                 session_key_prefix: str = 'sio:session:',
                 heartbeat_interval: float = 5.0,
                 heartbeat_timeout: float = 10.0, write_only: bool = False,
                 logger: Optional[logging.Logger] = None, json: Any = None,
                 redis_options: Optional[Dict[str, Any]] = None,
                 outbox_size: int = 10_000, outbox_timeout: float = 5.0,
                 write_batch_size: int = 100, request_timeout: float = 5.0,
                 ack_timeout: float = 60.0, socket_timeout: float = 5.0,
                 max_message_size: int = 16 * 1024 * 1024,
                 close_timeout: float = 5.0,
                 connection_state_recovery: bool = False,
                 max_disconnection_duration: float = 120.0,
                 recovery_max_packets: int = 1000) -> None:
        self.options = Options(
            url=url, redis_client=redis_client, stream_name=stream_name,
            stream_count=stream_count, channel_prefix=channel_prefix,
            use_sharded_pubsub=use_sharded_pubsub, maxlen=maxlen,
            read_count=read_count, block_time_ms=block_time_ms,
            session_key_prefix=session_key_prefix,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout, write_only=write_only,
            logger=logger, json=json, redis_options=redis_options,
            outbox_size=outbox_size, outbox_timeout=outbox_timeout,
            write_batch_size=write_batch_size,
            request_timeout=request_timeout, ack_timeout=ack_timeout,
            socket_timeout=socket_timeout, max_message_size=max_message_size,
            close_timeout=close_timeout,
            connection_state_recovery=connection_state_recovery,
            max_disconnection_duration=max_disconnection_duration,
            recovery_max_packets=recovery_max_packets)
        super().__init__(channel=channel_prefix, write_only=write_only,
                         logger=logger or default_logger)
        #: This server's id in the cluster (16 hex digits, as Node's).
        self.uid = secrets.token_hex(8)
        self._stats = Stats()
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()
        self._started = False
        self._closed = False
        self._tasks: Optional[Tasks] = None
        self._namespaces: Set[str] = set()
        self._requests = PendingRequests()
        self._connector = RedisConnector(self.options,
                                         f'sio-redis-streams:{self.uid}')
        self._commands = self._connector.client('commands',
                                                self.options.socket_timeout)
        self._writer = StreamWriter(
            self._connector,
            self._connector.client('writer', self.options.socket_timeout),
            self.options, self.uid, self._stats, self.logger, self._stopping)
        self._readers: List[StreamReader] = []
        self._pubsub: Optional[PubSub] = None
        self._heartbeat: Optional[Heartbeat] = None
        self._local = LocalSockets(self, self.logger)
        #: set when the server starts, if connection_state_recovery is on
        self._recovery: Optional[Recovery] = None
        self._server_handlers: Dict[tuple, Callable[..., Any]] = {}
        self._message_handlers = {
            MessageType.BROADCAST: self._on_broadcast,
            MessageType.SOCKETS_JOIN: self._on_sockets_join,
            MessageType.SOCKETS_LEAVE: self._on_sockets_leave,
            MessageType.DISCONNECT_SOCKETS: self._on_disconnect_sockets,
            MessageType.FETCH_SOCKETS: self._on_fetch_sockets,
            MessageType.SERVER_SIDE_EMIT: self._on_server_side_emit,
            MessageType.FETCH_SOCKETS_RESPONSE: self._on_response,
            MessageType.SERVER_SIDE_EMIT_RESPONSE: self._on_response,
            MessageType.BROADCAST_CLIENT_COUNT: self._on_response,
            MessageType.BROADCAST_ACK: self._on_response,
        }

    # -- lifecycle ---------------------------------------------------------

    def set_server(self, server: Any) -> None:
        """Attach to a python-socketio server (called by the server)."""
        check_monkey_patched(server.eio.async_mode)
        super().set_server(server)
        hooks.on_shutdown(server, self.close)
        hooks.on_connect(server, self._before_connect, self._after_connect)
        if self.options.connection_state_recovery:
            hooks.on_send_packet(server, self._send_packet)
            hooks.on_connection_lost(server, self._connection_lost)

    def initialize(self) -> None:
        """Start the background tasks (called by the server on its first
        connection)."""
        Manager.initialize(self)
        self.start()

    def start(self) -> None:
        """Start the background tasks now, if they are not running yet.

        The server starts them with its first client, and any cluster
        operation starts them too; call this to have a server take part in
        the cluster (heartbeats, requests) before any of that happens.
        """
        with self._lifecycle:
            if self._started or self._closed:
                return
            self._started = True
        server = None if self.write_only else self.server
        self._tasks = Tasks(server, self.logger)
        self._tasks.start('writer', self._writer.run)
        if server is None:
            atexit.register(_close_at_exit, weakref.ref(self))
        else:
            self._start_cluster_tasks(server)
        self.logger.info('%s manager %s started (stream %s)', self.name,
                         self.uid, self.options.stream_name)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every message emitted so far is in Redis; ``False``
        if that did not happen within ``timeout`` seconds."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Stop the background tasks and close the connections to Redis.

        What waits in the outbox is sent first, for up to
        ``close_timeout`` seconds. ``sio.shutdown()`` calls this.
        """
        with self._lifecycle:
            if self._closed:
                return
            self._closed = True
            started = self._started
        reachable = False
        try:
            reachable = started and self._drain()
        finally:
            self._stop_tasks(reachable)

    def _drain(self) -> bool:
        """What closing does with Redis: write what waits, save sessions,
        say goodbye. ``False`` if Redis turned out to be unreachable (then
        nothing more is asked of it, so that closing stays short)."""
        if not self.flush(self.options.close_timeout):
            self.logger.error('closing with %d entries not written to '
                              'Redis', self._writer.depth)
            return False
        if self._recovery is not None:
            self._recovery.save_all()
        if self._heartbeat is not None:
            self._heartbeat.leave()
        return True

    def _stop_tasks(self, reachable: bool) -> None:
        self._stopping.set()
        self._writer.wake()
        for reader in self._readers:
            reader.interrupt(self._commands if reachable else None)
        if self._tasks is not None and not self._tasks.join(
                self.options.block_time + self.options.socket_timeout):
            self.logger.warning('background tasks did not stop in time')
        self._connector.close()

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
            return Manager.emit(self, event, data, namespace, room=room,
                                skip_sid=skip_sid, callback=callback)
        if callback is not None:
            if self.server is None:
                raise RuntimeError('Callbacks can only be issued from the '
                                   'context of a server.')
            if room is None:
                raise ValueError('Cannot use callback without a room set.')
        packet = _event_packet(event, arguments(data))
        opts = BroadcastOptions(_as_list(room), _as_list(skip_sid))
        # with recovery on, local clients get broadcasts from the stream too,
        # so that each carries its offset
        if self.server is not None and (callback or not self._recovery):
            Manager.emit(self, event, data, namespace, room=room,
                         skip_sid=skip_sid, callback=callback)
        if callback is None:
            self._submit(MessageType.BROADCAST, namespace,
                         {'packet': packet, 'opts': opts.to_wire()})
        elif not self._is_local_sid(room, namespace):
            request = AckRequest(callback, self.options.ack_timeout)
            opts.flags['timeout'] = _ms(self.options.ack_timeout)
            try:
                # a namespace heard for the first time gets a moment to be
                # subscribed, so that the answers are not missed
                self._publish_request(request, MessageType.BROADCAST,
                                      namespace, {'packet': packet,
                                                  'requestId': request.id,
                                                  'opts': opts.to_wire()},
                                      wait_subscribed=1.0)
            except (self._connector.error, OSError) as exc:
                self.logger.error('cannot send an emit with callback to '
                                  'other servers: %s', exc)

    def can_disconnect(self, sid: str, namespace: str) -> bool:
        if self._is_local(sid, namespace) and not self._recovery:
            return True
        self.disconnect_sockets(namespace, to=sid)
        return False

    def disconnect(self, sid: str, namespace: Optional[str] = None,
                   **kwargs: Any) -> None:
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            eio_sid = self.eio_sid_from_sid(sid, namespace)
            if eio_sid is not None:
                self._local.disconnected(eio_sid, namespace)
            if self._recovery is not None:
                self._recovery.forget(namespace, sid)
            return Manager.disconnect(self, sid, namespace)
        if self.server is not None and self._is_local(sid, namespace) \
                and not self._recovery:
            self.server.disconnect(sid, namespace=namespace,
                                   ignore_queue=True)
        else:
            self.disconnect_sockets(namespace, to=sid)

    def enter_room(self, sid: str, namespace: str, room: Room,
                   eio_sid: Optional[str] = None) -> None:
        if self._is_local(sid, namespace):
            return Manager.enter_room(self, sid, namespace, room,
                                      eio_sid=eio_sid)
        self.sockets_join(room, namespace, to=sid)

    def leave_room(self, sid: str, namespace: str, room: Room) -> None:
        if self._is_local(sid, namespace):
            return Manager.leave_room(self, sid, namespace, room)
        self.sockets_leave(room, namespace, to=sid)

    def close_room(self, room: Room, namespace: Optional[str] = None) -> None:
        self.sockets_leave(room, namespace or '/', to=room)

    # -- cluster-wide socket management ------------------------------------

    def fetch_sockets(self, namespace: str = '/', to: Rooms = None,
                      skip: Rooms = None,
                      timeout: Optional[float] = None) -> List[RemoteSocket]:
        """The sockets of the whole cluster in ``namespace`` that are in one
        of the rooms ``to`` (default: all) and in none of ``skip``.

        :raises ClusterTimeoutError: when a server did not answer within
                                     ``timeout`` (default
                                     ``request_timeout``); its
                                     ``responses`` hold the sockets found.
        """
        self._need_subscriber('fetch_sockets')
        opts = BroadcastOptions(_as_list(to), _as_list(skip))
        found = [RemoteSocket.from_wire(self, namespace, self.uid,
                                        self._local.describe(namespace, sid))
                 for sid in self._local.select(namespace, opts)]
        request = CollectRequest(
            self._timeout(timeout),
            lambda m: [RemoteSocket.from_wire(self, namespace, m.uid, s)
                       for s in m.data['sockets']])
        complete = self._ask(request, MessageType.FETCH_SOCKETS, namespace,
                             {'opts': opts.to_wire(),
                              'requestId': request.id}, timeout)
        found += request.responses
        if not complete:
            raise ClusterTimeoutError('fetch_sockets', found,
                                      request.expected, request.received)
        return found

    def sockets_join(self, rooms: Rooms, namespace: str = '/',
                     to: Rooms = None, skip: Rooms = None) -> None:
        """Add every matching socket of the cluster to ``rooms``."""
        self._sockets_rooms(MessageType.SOCKETS_JOIN, self._local.join,
                            rooms, namespace, to, skip)

    def sockets_leave(self, rooms: Rooms, namespace: str = '/',
                      to: Rooms = None, skip: Rooms = None) -> None:
        """Remove every matching socket of the cluster from ``rooms``."""
        self._sockets_rooms(MessageType.SOCKETS_LEAVE, self._local.leave,
                            rooms, namespace, to, skip)

    def disconnect_sockets(self, namespace: str = '/', to: Rooms = None,
                           skip: Rooms = None, close: bool = False) -> None:
        """Disconnect every matching socket of the cluster from
        ``namespace``; with ``close``, close their whole connections."""
        opts = BroadcastOptions(_as_list(to), _as_list(skip))
        # with recovery on, this server too disconnects them when it reads
        # the entry: after the broadcasts emitted before
        if self.server is not None and not self._recovery:
            self._local.disconnect(namespace, opts, close)
        self._submit(MessageType.DISCONNECT_SOCKETS, namespace,
                     {'opts': opts.to_wire(), 'close': close})

    def is_recovered(self, sid: str, namespace: str = '/') -> bool:
        """Whether this socket is a recovered session (connection state
        recovery), rather than a new one. True from the connect handler
        on."""
        return self._recovery is not None and \
            self._recovery.is_recovered(sid, namespace)

    def get_data(self, sid: str, namespace: str = '/') -> Any:
        """The ``data`` of a socket of this server that ``fetch_sockets``
        reports: its python-socketio session (``sio.get_session``)."""
        return self._local.get_data(sid, namespace)

    def set_data(self, sid: str, data: Any, namespace: str = '/') -> None:
        """Set the ``data`` of a socket of this server: it is its
        python-socketio session, so this is ``sio.save_session``."""
        self._local.set_data(sid, namespace, data)

    # -- server-side events ------------------------------------------------

    def on_server_event(self, event: str, handler: Optional[Callable] = None,
                        namespace: str = '/') -> Callable:
        """Register the handler of a server-side event, as a decorator or
        with ``handler``. It is called with the event's arguments; its
        return value is the answer to a ``server_side_call``. It runs in
        a background task of this server.
        """
        def register(function: Callable) -> Callable:
            self._server_handlers[(namespace, event)] = function
            return function

        return register(handler) if handler is not None else register

    def server_side_emit(self, event: str, *args: Any,
                         namespace: str = '/') -> None:
        """Send an event to the other servers of the cluster."""
        self.start()
        self._pubsub_publish(ClusterMessage(
            MessageType.SERVER_SIDE_EMIT, self.uid, namespace,
            {'packet': [event, *args]}))

    def server_side_call(self, event: str, *args: Any, namespace: str = '/',
                         timeout: Optional[float] = None) -> List[Any]:
        """Send an event to the other servers and return their answers.

        A server without a handler for the event does not answer (as in
        Node), so the call then times out.

        :raises ClusterTimeoutError: when some answers did not arrive within
                                     ``timeout``; it holds those that did.
        """
        self._need_subscriber('server_side_call')
        request = CollectRequest(self._timeout(timeout),
                                 lambda m: [m.data.get('packet')])
        complete = self._ask(request, MessageType.SERVER_SIDE_EMIT,
                             namespace, {'requestId': request.id,
                                         'packet': [event, *args]}, timeout)
        if not complete:
            raise ClusterTimeoutError('server_side_call', request.responses,
                                      request.expected, request.received)
        return request.responses

    def emit_with_ack(self, event: str, data: Any = None, to: Rooms = None,
                      namespace: str = '/', skip_sid: Rooms = None,
                      timeout: Optional[float] = None) -> List[Any]:
        """Emit to every matching client of the cluster and return each
        client's answer (one argument as is, several as a tuple, none as
        ``None``).

        :raises ClusterTimeoutError: when some clients did not answer within
                                     ``timeout``; it holds the answers that
                                     arrived.
        """
        self._need_subscriber('emit_with_ack')
        timeout = self._timeout(timeout)
        answers: List[Any] = []
        request = AckRequest(lambda *a: answers.append(_answer(a)), timeout)
        args = arguments(data)
        opts = BroadcastOptions(_as_list(to), _as_list(skip_sid),
                                {'timeout': _ms(timeout)})
        request.expect_local_clients(self._local.emit_with_ack(
            namespace, event, args, opts, request.local_ack))
        complete = self._ask(request, MessageType.BROADCAST, namespace,
                             {'packet': _event_packet(event, args),
                              'requestId': request.id,
                              'opts': opts.to_wire()}, timeout)
        if not complete:
            raise ClusterTimeoutError('emit_with_ack', list(answers),
                                      request.clients_expected, request.acks)
        return answers

    def server_count(self, namespace: str = '/') -> int:
        """How many servers serve ``namespace``, as Redis counts the
        subscribers of its public channel (the Node adapter's count)."""
        return self._pubsub_client().server_count(namespace)

    # -- observability -----------------------------------------------------

    def stats(self) -> Dict[str, int]:
        """Counters (see :data:`sio_redis_streams.stats.COUNTERS`) and the
        current ``outbox_depth`` and ``pending_requests``."""
        values = self._stats.snapshot()
        values['outbox_depth'] = self._writer.depth
        values['pending_requests'] = len(self._requests)
        return values

    def live_server_count(self, namespace: str = '/') -> int:
        """How many servers of ``namespace`` sent a heartbeat (or any PUB/SUB
        message) within ``heartbeat_timeout``, this one included. Node 0.3.x
        servers send no heartbeats: they count only while they send
        requests."""
        if self._heartbeat is None:
            return 1
        return self._heartbeat.live_count(namespace)

    # -- sending -----------------------------------------------------------

    def _submit(self, type_: MessageType, namespace: str,
                data: Dict[str, Any]) -> None:
        """Append a message to the stream of ``namespace`` (in order, via
        the outbox)."""
        if self._closed:
            self.logger.warning('manager closed: not sending a message of '
                                'type %s', type_.name)
            return
        self.start()
        fields = codec.encode_entry(
            ClusterMessage(type_, self.uid, namespace, data), self._json())
        self._writer.submit(self._stream_of(namespace), fields)

    def _sockets_rooms(self, type_: MessageType,
                       apply: Callable[[str, BroadcastOptions, List[Room]],
                                       None],
                       rooms: Rooms, namespace: str, to: Rooms,
                       skip: Rooms) -> None:
        rooms = _as_list(rooms)
        opts = BroadcastOptions(_as_list(to), _as_list(skip))
        if self.server is not None:
            apply(namespace, opts, rooms)
        self._submit(type_, namespace, {'opts': opts.to_wire(),
                                        'rooms': rooms})

    def _ask(self, request: Request, type_: MessageType, namespace: str,
             data: Dict[str, Any], timeout: Optional[float]) -> bool:
        """Publish a request and wait for its answers; ``False`` if they did
        not all arrive in time (or Redis could not be reached)."""
        timeout = self._timeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            self._publish_request(request, type_, namespace, data,
                                  wait_subscribed=timeout)
        except (self._connector.error, OSError) as exc:
            self.logger.warning('cannot send a request to the cluster: %s',
                                exc)
            return False
        try:
            return request.wait(max(0.0, deadline - time.monotonic()))
        finally:
            self._requests.discard(request)

    def _publish_request(self, request: Request, type_: MessageType,
                         namespace: str, data: Dict[str, Any],
                         wait_subscribed: float = 0.0) -> None:
        """Publish a request on PUB/SUB, after making sure the answers can
        be heard; tell the request how many servers got it."""
        self.start()
        self._watch(namespace)
        self._pubsub.wait_subscribed([namespace], wait_subscribed)
        self._requests.add(request)
        try:
            receivers = self._pubsub_publish(ClusterMessage(
                type_, self.uid, namespace, data))
        except Exception:
            self._requests.discard(request)
            raise
        # PUBLISH counted this server too, if its subscription is up
        others = receivers - self._pubsub.is_subscribed(namespace)
        if request.expect_servers(others):
            self._requests.discard(request)

    def _pubsub_publish(self, message: ClusterMessage) -> int:
        return self._pubsub_client().publish(message)

    def _respond(self, requester: str, type_: MessageType, namespace: str,
                 data: Dict[str, Any]) -> None:
        try:
            self._pubsub.publish_response(
                requester, ClusterMessage(type_, self.uid, namespace, data))
        except Exception as exc:  # Redis, or an answer msgpack cannot take
            self.logger.error('cannot answer server %s: %s', requester, exc)

    # -- receiving ---------------------------------------------------------

    def _on_stream_message(self, message: ClusterMessage,
                           entry_id: str) -> None:
        if message.type == MessageType.BROADCAST:
            self._on_broadcast(message, entry_id)
        elif message.uid != self.uid:
            self._handle(message)
        elif message.type == MessageType.DISCONNECT_SOCKETS:
            # own entries are only read with recovery on
            self._on_disconnect_sockets(message)

    def _on_pubsub_message(self, message: ClusterMessage) -> None:
        self._heartbeat.heard(message)
        if message.uid == self.uid:
            return
        self._stats.incr('messages_received')
        self._handle(message)

    def _handle(self, message: ClusterMessage) -> None:
        """Carry out a message of another server on this server."""
        handler = self._message_handlers.get(message.type)
        if handler is not None:
            handler(message)

    def _on_broadcast(self, message: ClusterMessage,
                      entry_id: Optional[str] = None) -> None:
        data, nsp = message.data, message.nsp
        event, *args = data['packet']['data']
        opts = codec.options_of(message)
        if 'requestId' not in data:
            offset = entry_id if self._recovery and \
                not opts.flags.get('volatile') else None
            self._local.emit(nsp, event, args, opts, offset)
            return
        if message.uid == self.uid:
            return
        count = self._local.emit_with_ack(
            nsp, event, args, opts, functools.partial(
                self._send_ack, message.uid, nsp, data['requestId']))
        self._respond(message.uid, MessageType.BROADCAST_CLIENT_COUNT, nsp,
                      {'requestId': data['requestId'], 'clientCount': count})

    def _send_ack(self, requester: str, namespace: str, request_id: str,
                  *args: Any) -> None:
        self._respond(requester, MessageType.BROADCAST_ACK, namespace,
                      ack_data(request_id, list(args)))

    def _on_sockets_join(self, message: ClusterMessage) -> None:
        self._local.join(message.nsp, codec.options_of(message),
                         message.data['rooms'])

    def _on_sockets_leave(self, message: ClusterMessage) -> None:
        self._local.leave(message.nsp, codec.options_of(message),
                          message.data['rooms'])

    def _on_disconnect_sockets(self, message: ClusterMessage) -> None:
        self._local.disconnect(message.nsp, codec.options_of(message),
                               message.data.get('close', False))

    def _on_fetch_sockets(self, message: ClusterMessage) -> None:
        nsp = message.nsp
        sockets = [self._local.describe(nsp, sid) for sid in
                   self._local.select(nsp, codec.options_of(message))]
        self._respond(message.uid, MessageType.FETCH_SOCKETS_RESPONSE, nsp,
                      {'requestId': message.data['requestId'],
                       'sockets': sockets})

    def _on_server_side_emit(self, message: ClusterMessage) -> None:
        event, *args = message.data['packet']
        handler = self._server_handlers.get((message.nsp, event))
        if handler is None:
            return  # like Node: no listener, no answer
        request_id = message.data.get('requestId')

        def run() -> None:
            try:
                answer = handler(*args)
            except Exception:
                self._stats.incr('handler_errors')
                self.logger.exception('server-side event handler %r failed',
                                      event)
                return
            if request_id is not None:
                self._respond(message.uid,
                              MessageType.SERVER_SIDE_EMIT_RESPONSE,
                              message.nsp,
                              {'requestId': request_id, 'packet': answer})

        self.server.start_background_task(run)

    def _on_response(self, message: ClusterMessage) -> None:
        self._requests.on_response(message)

    # -- helpers -----------------------------------------------------------

    def _start_cluster_tasks(self, server: Any) -> None:
        json_module = self._json()
        recovery = self.options.connection_state_recovery
        for stream in self._read_streams():
            self._readers.append(StreamReader(
                self._connector, stream, self.options, self.uid, json_module,
                self._on_stream_message, self._stats, self.logger,
                self._stopping, skip_own=not recovery))
        if recovery:
            self._recovery = Recovery(
                self, self._local,
                SessionStore(self._connector, self._commands, self.options,
                             json_module, self.logger),
                self._reader_of, self.logger)
        self._pubsub = self._pubsub_client()
        self._heartbeat = Heartbeat(
            self._pubsub, self.options, self.uid,
            lambda: list(self._namespaces), self._requests.expire,
            self.logger, self._stopping)
        for namespace in self._served_namespaces(server):
            self._watch(namespace)
        for reader in self._readers:
            reader.start_at_tail()
            self._tasks.start(f'reader {reader.stream}', reader.run)
        self._tasks.start('subscriber', self._pubsub.run)
        self._tasks.start('heartbeat', self._heartbeat.run)

    def _pubsub_client(self) -> PubSub:
        """The PUB/SUB layer (a write-only manager publishes through it,
        but runs no subscriber)."""
        if self._pubsub is None:
            self._pubsub = PubSub(self._connector, self._commands,
                                  self.options, self.uid,
                                  self._on_pubsub_message, self._stats,
                                  self.logger, self._stopping)
        return self._pubsub

    def _need_subscriber(self, what: str) -> None:
        if self.write_only or self.server is None:
            raise RuntimeError(f'{what} needs answers from the cluster: use '
                               f'it on a server, not a write-only manager')

    def _timeout(self, timeout: Optional[float]) -> float:
        return self.options.request_timeout if timeout is None else timeout

    def _read_streams(self) -> List[str]:
        count = self.options.stream_count
        if count == 1:
            return [self.options.stream_name]
        # a namespace whose hash is negative lands on "<name>--<i>" (the
        # sign of JavaScript's %), so those streams are read as well
        return [f'{self.options.stream_name}-{i}'
                for i in range(-(count - 1), count)]

    @staticmethod
    def _served_namespaces(server: Any) -> Set[str]:
        namespaces = {'/'}
        namespaces.update(server.handlers)
        namespaces.update(server.namespace_handlers)
        if isinstance(server.namespaces, (list, tuple, set)):
            namespaces.update(server.namespaces)
        namespaces.discard('*')
        return namespaces

    # -- connection state recovery -----------------------------------------

    def _before_connect(self, eio_sid: str, namespace: str,
                        auth: Any) -> None:
        self._local.connected(eio_sid, namespace, auth)
        if self._recovery is not None:
            self._recovery.before_connect(eio_sid, namespace, auth)

    def _after_connect(self, eio_sid: str, namespace: str) -> None:
        if self._recovery is not None:
            self._recovery.after_connect(eio_sid, namespace)
        if self.sid_from_eio_sid(eio_sid, namespace) is None:
            self._local.disconnected(eio_sid, namespace)  # refused

    def _send_packet(self, send: Callable[[], None], eio_sid: str,
                     pkt: Any) -> None:
        if self._recovery is None:
            return send()
        self._recovery.send_packet(send, eio_sid, pkt)

    def _connection_lost(self, eio_sid: str) -> None:
        if self._recovery is not None:
            self._recovery.connection_lost(eio_sid)

    def _admit(self, eio_sid: str, namespace: str,
               allocate: Callable[[str, str], Optional[str]]
               ) -> Optional[str]:
        """The sid of a connecting client (its old one when its session is
        recovered)."""
        if self._recovery is not None:
            sid = self._recovery.admit(eio_sid, namespace, allocate)
        else:
            sid = allocate(eio_sid, namespace)
        if sid is not None:
            self._watch(namespace)
        return sid

    def _reader_of(self, namespace: str) -> StreamReader:
        stream = self._stream_of(namespace)
        return next(r for r in self._readers if r.stream == stream)

    def _watch(self, namespace: str) -> None:
        if namespace in self._namespaces or self.write_only or \
                self._pubsub is None:
            return
        self._namespaces.add(namespace)
        self._pubsub.watch(namespace)

    def _stream_of(self, namespace: str) -> str:
        return codec.stream_for_namespace(
            namespace, self.options.stream_name, self.options.stream_count)

    def _json(self) -> Any:
        if self.options.json is not None:
            return self.options.json
        if self.server is not None:
            return getattr(self.server.packet_class, 'json', stdlib_json)
        return stdlib_json

    def _is_local_sid(self, room: Rooms, namespace: str) -> bool:
        return isinstance(room, str) and self._is_local(room, namespace)

    def _is_local(self, sid: str, namespace: str) -> bool:
        """Whether ``sid`` is connected to this server, or connecting: from
        python-socketio 5.18 on, a client is only "pre-connected" while its
        connect handler runs, and that handler often joins rooms."""
        return self.is_connected(sid, namespace) or bool(
            getattr(self, 'is_pre_connected', None) and
            self.is_pre_connected(sid, namespace))


def _event_packet(event: str, args: List[Any]) -> Dict[str, Any]:
    return {'type': 2, 'data': [event, *args]}


def _answer(args: tuple) -> Any:
    """A client's acknowledgement as ``sio.call()`` returns it."""
    if not args:
        return None
    return args[0] if len(args) == 1 else args


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return list(value)
    return [value]


def _close_at_exit(ref: 'weakref.ref[RedisStreamsManager]') -> None:
    manager = ref()
    if manager is not None:
        manager.close()
