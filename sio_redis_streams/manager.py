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
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Union

import socketio
from socketio.manager import Manager

from . import codec
from .codec import BroadcastOptions, ClusterMessage, MessageType
from .concurrency import Tasks, check_monkey_patched
from .connection import RedisConnector
from .heartbeat import Heartbeat
from .options import Options
from .pubsub import PubSub
from .requests import AckRequest, PendingRequests, ack_data
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
                 close_timeout: float = 5.0) -> None:
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
            close_timeout=close_timeout)
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
            self._connector, self._commands, self.options, self.uid,
            self._stats, self.logger, self._stopping)
        self._readers: List[StreamReader] = []
        self._pubsub: Optional[PubSub] = None
        self._heartbeat: Optional[Heartbeat] = None

    # -- lifecycle ---------------------------------------------------------

    def set_server(self, server: Any) -> None:
        """Attach to a python-socketio server (called by the server)."""
        check_monkey_patched(server.eio.async_mode)
        super().set_server(server)
        stop_server = server.shutdown

        @functools.wraps(stop_server)
        def shutdown(*args: Any, **kwargs: Any) -> Any:
            try:
                return stop_server(*args, **kwargs)
            finally:
                self.close()

        server.shutdown = shutdown

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
        if started:
            if not self.flush(self.options.close_timeout):
                self.logger.error('closing with %d entries not written to '
                                  'Redis', self._writer.depth)
            if self._heartbeat is not None:
                self._heartbeat.leave()
        self._stopping.set()
        self._writer.wake()
        for reader in self._readers:
            reader.interrupt(self._commands)
        if self._tasks is not None and not self._tasks.join(
                self.options.block_time + self.options.socket_timeout):
            self.logger.warning('background tasks did not stop in time')
        self._connector.close()

    # -- python-socketio manager interface ---------------------------------

    def connect(self, eio_sid: str, namespace: str) -> Optional[str]:
        sid = super().connect(eio_sid, namespace)
        if sid is not None:
            self._watch(namespace)
        return sid

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
        packet = {'type': 2, 'data': [event, *_arguments(data)]}
        opts = BroadcastOptions(_as_list(room), _as_list(skip_sid))
        if self.server is not None:
            Manager.emit(self, event, data, namespace, room=room,
                         skip_sid=skip_sid, callback=callback)
        if callback is None:
            self._submit(MessageType.BROADCAST, namespace,
                         {'packet': packet, 'opts': opts.to_wire()})
        elif not self._is_local_sid(room, namespace):
            self._emit_with_callback(packet, opts, namespace, callback)

    def can_disconnect(self, sid: str, namespace: str) -> bool:
        if self.is_connected(sid, namespace):
            return True
        self._submit_disconnect(sid, namespace)
        return False

    def disconnect(self, sid: str, namespace: Optional[str] = None,
                   **kwargs: Any) -> None:
        namespace = namespace or '/'
        if kwargs.get('ignore_queue'):
            return Manager.disconnect(self, sid, namespace)
        if self.server is not None and self.is_connected(sid, namespace):
            self.server.disconnect(sid, namespace=namespace,
                                   ignore_queue=True)
        else:
            self._submit_disconnect(sid, namespace)

    def enter_room(self, sid: str, namespace: str, room: Room,
                   eio_sid: Optional[str] = None) -> None:
        if self.is_connected(sid, namespace):
            return Manager.enter_room(self, sid, namespace, room,
                                      eio_sid=eio_sid)
        self._submit(MessageType.SOCKETS_JOIN, namespace,
                     {'opts': BroadcastOptions([sid]).to_wire(),
                      'rooms': [room]})

    def leave_room(self, sid: str, namespace: str, room: Room) -> None:
        if self.is_connected(sid, namespace):
            return Manager.leave_room(self, sid, namespace, room)
        self._submit(MessageType.SOCKETS_LEAVE, namespace,
                     {'opts': BroadcastOptions([sid]).to_wire(),
                      'rooms': [room]})

    def close_room(self, room: Room, namespace: Optional[str] = None) -> None:
        namespace = namespace or '/'
        Manager.close_room(self, room, namespace)
        self._submit(MessageType.SOCKETS_LEAVE, namespace,
                     {'opts': BroadcastOptions([room]).to_wire(),
                      'rooms': [room]})

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

    def _submit_disconnect(self, sid: str, namespace: str) -> None:
        self._submit(MessageType.DISCONNECT_SOCKETS, namespace,
                     {'opts': BroadcastOptions([sid]).to_wire(),
                      'close': False})

    def _emit_with_callback(self, packet: Dict[str, Any],
                            opts: BroadcastOptions, namespace: str,
                            callback: Callable[..., Any]) -> None:
        self.start()
        self._watch(namespace)
        request = AckRequest(callback, self.options.ack_timeout)
        opts.flags['timeout'] = int(self.options.ack_timeout * 1000)
        self._requests.add(request)
        try:
            receivers = self._pubsub.publish(ClusterMessage(
                MessageType.BROADCAST, self.uid, namespace,
                {'packet': packet, 'requestId': request.id,
                 'opts': opts.to_wire()}))
        except self._connector.error as exc:
            self._requests.discard(request)
            self.logger.error('cannot send an emit with callback to other '
                              'servers: %s', exc)
            return
        # PUBLISH counted this server too, if its subscription is up
        if request.expect_servers(receivers - self._pubsub.connected):
            self._requests.discard(request)

    def _respond(self, requester: str, type_: MessageType, namespace: str,
                 data: Dict[str, Any]) -> None:
        try:
            self._pubsub.publish_response(
                requester, ClusterMessage(type_, self.uid, namespace, data))
        except self._connector.error as exc:
            self.logger.error('cannot answer server %s: %s', requester, exc)

    # -- receiving ---------------------------------------------------------

    def _on_stream_message(self, message: ClusterMessage,
                           entry_id: str) -> None:
        self._handle(message)

    def _on_pubsub_message(self, message: ClusterMessage) -> None:
        self._heartbeat.heard(message)
        if message.uid == self.uid:
            return
        self._stats.incr('messages_received')
        self._handle(message)

    def _handle(self, message: ClusterMessage) -> None:
        """Carry out a message of another server on this server's
        clients."""
        type_, nsp, data = message.type, message.nsp, message.data
        if type_ == MessageType.BROADCAST:
            if 'requestId' in data:
                self._broadcast_with_ack(message)
            else:
                self._broadcast(nsp, data)
        elif type_ == MessageType.SOCKETS_JOIN:
            for sid in self._local_sids(nsp, codec.options_of(message)):
                for room in data['rooms']:
                    Manager.enter_room(self, sid, nsp, room)
        elif type_ == MessageType.SOCKETS_LEAVE:
            for sid in self._local_sids(nsp, codec.options_of(message)):
                for room in data['rooms']:
                    Manager.leave_room(self, sid, nsp, room)
        elif type_ == MessageType.DISCONNECT_SOCKETS:
            self._disconnect_local(nsp, codec.options_of(message),
                                   data.get('close', False))
        elif type_ in (MessageType.BROADCAST_CLIENT_COUNT,
                       MessageType.BROADCAST_ACK,
                       MessageType.FETCH_SOCKETS_RESPONSE,
                       MessageType.SERVER_SIDE_EMIT_RESPONSE):
            self._requests.on_response(message)

    def _broadcast(self, namespace: str, data: Dict[str, Any]) -> None:
        event, *args = data['packet']['data']
        opts = BroadcastOptions.from_wire(data['opts'])
        Manager.emit(self, event, _emit_data(args), namespace,
                     room=opts.rooms or None,
                     skip_sid=self._sids_in(namespace, opts.except_rooms))

    def _broadcast_with_ack(self, message: ClusterMessage) -> None:
        data, nsp = message.data, message.nsp
        event, *args = data['packet']['data']
        sids = self._local_sids(nsp, codec.options_of(message))
        for sid in sids:
            Manager.emit(self, event, _emit_data(args), nsp, room=sid,
                         callback=functools.partial(
                             self._send_ack, message.uid, nsp,
                             data['requestId']))
        self._respond(message.uid, MessageType.BROADCAST_CLIENT_COUNT, nsp,
                      {'requestId': data['requestId'],
                       'clientCount': len(sids)})

    def _send_ack(self, requester: str, namespace: str, request_id: str,
                  *args: Any) -> None:
        self._respond(requester, MessageType.BROADCAST_ACK, namespace,
                      ack_data(request_id, list(args)))

    def _disconnect_local(self, namespace: str, opts: BroadcastOptions,
                          close: bool) -> None:
        for sid in self._local_sids(namespace, opts):
            eio_sid = self.eio_sid_from_sid(sid, namespace)
            self.server.disconnect(sid, namespace=namespace,
                                   ignore_queue=True)
            if close and eio_sid is not None:
                self.server.eio.disconnect(eio_sid)

    # -- helpers -----------------------------------------------------------

    def _start_cluster_tasks(self, server: Any) -> None:
        json_module = self._json()
        for stream in self._read_streams():
            self._readers.append(StreamReader(
                self._connector, stream, self.options, self.uid, json_module,
                self._on_stream_message, self._stats, self.logger,
                self._stopping))
        self._pubsub = PubSub(self._connector, self._commands, self.options,
                              self.uid, self._on_pubsub_message, self._stats,
                              self.logger, self._stopping)
        self._heartbeat = Heartbeat(
            self._connector, self._pubsub, self.options, self.uid,
            lambda: list(self._namespaces), self._requests.expire,
            self.logger, self._stopping)
        for namespace in self._served_namespaces(server):
            self._watch(namespace)
        for reader in self._readers:
            reader.start_at_tail()
            self._tasks.start(f'reader {reader.stream}', reader.run)
        self._tasks.start('subscriber', self._pubsub.run)
        self._tasks.start('heartbeat', self._heartbeat.run)

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

    def _watch(self, namespace: str) -> None:
        if namespace in self._namespaces or self._pubsub is None:
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
        return isinstance(room, str) and self.is_connected(room, namespace)

    def _sids_in(self, namespace: str, rooms: Iterable[Room]) -> List[str]:
        sids: Set[str] = set()
        for room in rooms:
            sids.update(sid for sid, _ in self.get_participants(namespace,
                                                                room))
        return list(sids)

    def _local_sids(self, namespace: str,
                    opts: BroadcastOptions) -> List[str]:
        """The local sockets that ``opts`` addresses."""
        sids = set(self._sids_in(namespace, opts.rooms or [None]))
        sids.difference_update(self._sids_in(namespace, opts.except_rooms))
        return list(sids)


def _arguments(data: Any) -> List[Any]:
    """The event arguments of python-socketio's ``data``: a tuple is several
    arguments, ``None`` none, anything else one."""
    if isinstance(data, tuple):
        return list(data)
    if data is None:
        return []
    return [data]


def _emit_data(args: List[Any]) -> Any:
    """The inverse of :func:`_arguments` (a lone ``None`` stays one
    argument)."""
    if len(args) == 1 and args[0] is not None:
        return args[0]
    return tuple(args)


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
