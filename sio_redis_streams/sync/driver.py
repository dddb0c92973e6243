"""The sync I/O driver: the Redis connections and background tasks of one
manager under threading, gevent or eventlet, around the protocol core.

It sends what :class:`~sio_redis_streams.core.protocol.ClusterProtocol`
builds, feeds it what the readers and the subscriber receive, and carries
out the actions it returns on the local sockets. The subscriber only
decodes and hands over: everything that takes time (answering requests,
user callbacks, publishing) runs on a work queue of its own, so that a slow
callback can never make the subscription look dead.
"""
from __future__ import annotations

import atexit
import json as stdlib_json
import logging
import threading
import time
import weakref
from typing import Any, Dict, Optional, Set

from ..core import codec
from ..core.messages import Heartbeat, Message
from ..core.presence import Presence
from ..core.protocol import Action, AskClients, CallHandler, ChangeRooms, \
    ClusterProtocol, DescribeSockets, Deliver, Disconnect
from ..core.requests import Request
from ..core.stats import Stats
from ..options import Options
from .connection import RedisConnector
from .context import Context
from .heartbeat import HeartbeatTask
from .local import LocalSockets
from .reader import StreamReader
from .recovery import NoRecovery, Recovery
from .sessions import SessionStore
from .subscriber import PubSub
from .tasks import Tasks, WorkQueue
from .writer import StreamWriter

#: The most PUB/SUB messages waiting to be handled.
WORK_QUEUE_SIZE = 10_000


class ManagerClosed(RuntimeError):
    """An operation that needs Redis was asked of a closed manager."""


class SyncDriver:
    """Owns the Redis clients and the tasks of one manager. The JSON module
    of stream entries is ``options.json``, or else the server's, known at
    :meth:`attach`."""

    def __init__(self, options: Options, uid: str, stats: Stats,
                 logger: logging.Logger) -> None:
        connector = RedisConnector(options, f'sio-redis-streams:{uid}')
        self.context = Context(options, uid, stats, logger, connector,
                               threading.Event())
        self.protocol = ClusterProtocol(uid, options.stream_name,
                                        options.stream_count,
                                        options.connection_state_recovery)
        self.presence = Presence(uid, options.heartbeat_interval,
                                 options.heartbeat_timeout)
        self.commands = connector.client('commands', options.socket_timeout,
                                         shared=True)
        self.writer = StreamWriter(self.context, connector.direct(
            'writer', options.socket_timeout))
        self.pubsub = PubSub(self.context, self.commands,
                             self._on_pubsub_message, self._subscribed)
        self.recovery: NoRecovery = NoRecovery()
        self.local: Optional[LocalSockets] = None
        self.json: Any = options.json
        self._server: Any = None
        self._readers: Dict[str, StreamReader] = {}
        self._work = WorkQueue(WORK_QUEUE_SIZE, self._work_dropped, logger)
        self._heartbeat = HeartbeatTask(
            self.context, self.pubsub, self.presence,
            lambda: list(self._namespaces), self.protocol.requests.expire)
        self._store: Optional[SessionStore] = None
        self._namespaces: Set[str] = set()
        self._lifecycle = threading.Lock()
        self._started = self._closed = False
        self._tasks: Optional[Tasks] = None

    # -- set-up and lifecycle ----------------------------------------------

    def attach(self, manager: Any, server: Any) -> None:
        """Make the server side: readers, local sockets, recovery. Nothing
        connects yet."""
        options = self.context.options
        self._server = server
        if self.json is None:
            self.json = getattr(server.packet_class, 'json', None) or \
                stdlib_json
        self.local = LocalSockets(manager, self.context.logger)
        for stream in self.protocol.read_streams():
            self._readers[stream] = StreamReader(
                self.context, stream, self.json, self._on_entry,
                skip_own=not options.connection_state_recovery)
        if options.connection_state_recovery:
            self._store = SessionStore(self.context, self.commands,
                                       self.json)
            self.recovery = Recovery(manager, self.local, self._store,
                                     self.reader_of, self.context.logger)

    def start(self) -> None:
        """Start the tasks, once; never after :meth:`close`."""
        with self._lifecycle:
            if self._started or self._closed:
                return
            self._started = True
            self._tasks = Tasks(self._server, self.context.logger)
            self._tasks.start('writer', self.writer.run)
            if self._server is None:
                atexit.register(_close_at_exit, weakref.ref(self))
                return
            for namespace in _served_namespaces(self._server):
                self.watch(namespace)
            for reader in self._readers.values():
                reader.start_at_tail()
                self._tasks.start(f'reader {reader.stream}', reader.run)
            self._tasks.start('subscriber', self.pubsub.run)
            self._tasks.start('work queue',
                              lambda: self._work.run(self.context.stopping))
            self._tasks.start('heartbeat', self._heartbeat.run)
            if self._store is not None:
                self._tasks.start('session store', self._store.run)

    def check_open(self, what: str) -> None:
        """:raises ManagerClosed: after :meth:`close`."""
        if self._closed:
            raise ManagerClosed(f'{what}: the manager is closed')

    def close(self) -> None:
        """Write what waits, store the sessions, say goodbye, and stop
        everything: all within ``close_timeout`` while Redis answers, and
        within the time a blocked read takes to stop when it does not."""
        with self._lifecycle:
            if self._closed:
                return
            self._closed = True
            reachable = False
            deadline = time.monotonic() + self.context.options.close_timeout
            try:
                reachable = self._started and self._drain(deadline)
            finally:
                self._stop(reachable, deadline)

    def _drain(self, deadline: float) -> bool:
        if not self.writer.flush(deadline - time.monotonic()):
            self.context.logger.error('closing with %d entries not written '
                                      'to Redis', self.writer.depth)
            return False
        if self._server is not None:
            self.recovery.save_all(deadline)
            self._heartbeat.leave()
        return True

    def _stop(self, reachable: bool, deadline: float) -> None:
        context = self.context
        context.stopping.set()
        self.writer.wake()
        self._work.stop()
        if self._store is not None:
            self._store.wake()
        for reader in self._readers.values():
            reader.interrupt(self.commands if reachable else None)
        options = context.options
        # a reader that could not be woken returns after its block time
        grace = options.block_time + options.socket_timeout
        if self._tasks is not None and not self._tasks.join(
                max(deadline - time.monotonic(), 0.0) + grace):
            context.logger.warning('background tasks did not stop in time')
        context.connector.close()

    def tasks_stopped(self) -> bool:
        """Whether every task has returned (for tests and health checks)."""
        return self._tasks is None or self._tasks.join(0)

    # -- sending -----------------------------------------------------------

    def submit(self, message: Message) -> None:
        """Append ``message`` to the stream of its namespace, in order (via
        the outbox)."""
        if self._closed:
            self.context.logger.warning('manager closed: not sending a '
                                        'message of type %s',
                                        message.TYPE.name)
            return
        self.start()
        self.writer.submit(self.protocol.stream_of(message.nsp),
                           codec.encode_entry(message,
                                              self.json or stdlib_json))

    def publish(self, message: Message) -> int:
        """Send ``message`` to every server on PUB/SUB."""
        self.check_open('publishing')
        self.start()
        return self.pubsub.publish(message)

    def ask(self, request: Request, message: Message,
            timeout: Optional[float], wait: bool = True) -> bool:
        """Publish a request after making sure its answers can be heard, and
        wait for them (unless not ``wait``); ``False`` if they did not all
        arrive in time, or Redis could not be reached."""
        self.check_open(f'a request ({message.TYPE.name})')
        self.start()
        timeout = self.context.options.request_timeout if timeout is None \
            else timeout
        deadline = time.monotonic() + timeout
        self.watch(message.nsp)
        # a namespace heard for the first time gets a moment to be
        # subscribed, so that the answers are not missed
        self.pubsub.wait_subscribed([message.nsp],
                                    timeout if wait else min(timeout, 1.0))
        requests = self.protocol.requests
        requests.add(request)
        done = threading.Event()
        request.on_done(done.set)
        try:
            receivers = self.pubsub.publish_request(message)
        except (self.context.connector.error, OSError) as exc:
            requests.discard(request)
            self.context.logger.warning('cannot send a request to the '
                                        'cluster: %s', exc)
            return False
        if request.expect_servers(receivers):
            requests.discard(request)
            return True
        if not wait:
            return False  # the request lives until answered or expired
        try:
            return done.wait(max(0.0, deadline - time.monotonic()))
        finally:
            requests.discard(request)

    def respond(self, requester: str, message: Message) -> None:
        try:
            self.pubsub.publish_response(requester, message)
        except Exception as exc:  # Redis, or an answer msgpack cannot take
            self.context.logger.error('cannot answer server %s: %s',
                                      requester, exc)

    def watch(self, namespace: str) -> None:
        """Listen to the PUB/SUB channels of ``namespace``."""
        if self._server is None or namespace in self._namespaces:
            return
        self._namespaces.add(namespace)
        self.pubsub.watch(namespace)

    def reader_of(self, namespace: str) -> StreamReader:
        return self._readers[self.protocol.stream_of(namespace)]

    # -- receiving ---------------------------------------------------------

    def _on_entry(self, message: Message, entry_id: str) -> None:
        """From a reader's task, in stream order."""
        action = self.protocol.on_entry(message, entry_id)
        if action is not None:
            self.execute(action)

    def _on_pubsub_message(self, message: Message) -> None:
        """From the subscriber's task: note, hand over, return."""
        if self.presence.heard(message):  # a new server asks for a beat
            self._work.submit(lambda: self._heartbeat.send(Heartbeat,
                                                           message.nsp))
        self._work.submit(lambda: self._handle_pubsub(message))

    def _handle_pubsub(self, message: Message) -> None:
        if message.uid != self.context.uid:
            self.context.stats.incr('messages_received')
        action = self.protocol.on_pubsub(message)
        if action is not None:
            self.execute(action)

    def _subscribed(self, namespace: str) -> None:
        self._work.submit(lambda: self._heartbeat.announce(namespace))

    def _work_dropped(self) -> None:
        self.context.stats.incr('messages_dropped')

    def execute_own(self, message: Message) -> None:
        """Apply this server's own ``message`` to its sockets now."""
        action = self.protocol.local_action(message)
        if action is not None:
            self.execute(action)

    def execute(self, action: Action) -> None:
        """Carry out what the protocol asks of this server."""
        local, protocol = self.local, self.protocol
        if local is None:
            return  # a write-only manager has no sockets
        if isinstance(action, Deliver):
            message = action.message
            local.emit(message.nsp, message.event, list(message.args),
                       message.opts, action.offset)
        elif isinstance(action, ChangeRooms):
            message = action.message
            change = local.join if action.join else local.leave
            change(message.nsp, message.opts, list(message.rooms))
        elif isinstance(action, Disconnect):
            local.disconnect(action.message.nsp, action.message.opts,
                             action.message.close)
        elif isinstance(action, DescribeSockets):
            message = action.message
            sockets = [local.describe(message.nsp, sid)
                       for sid in local.select(message.nsp, message.opts)]
            self.respond(message.uid, protocol.fetch_response(message,
                                                              sockets))
        elif isinstance(action, AskClients):
            self._ask_clients(action)
        elif isinstance(action, CallHandler):
            self._server.start_background_task(self._call_handler, action)

    def _ask_clients(self, action: AskClients) -> None:
        message, local = action.message, self.local
        count = local.emit_with_ack(
            message.nsp, message.event, list(message.args), message.opts,
            lambda *args: self.respond(message.uid,
                                       self.protocol.ack(message, args)))
        self.respond(message.uid, self.protocol.client_count(message, count))

    def _call_handler(self, action: CallHandler) -> None:
        message = action.message
        try:
            answer = action.handler(*message.args)
        except Exception:
            self.context.stats.incr('handler_errors')
            self.context.logger.exception(
                'server-side event handler %r failed', message.event)
            return
        if message.request_id is not None:
            self.respond(message.uid,
                         self.protocol.handler_response(message, answer))

    def stats(self) -> Dict[str, int]:
        values = self.context.stats.snapshot()
        values['outbox_depth'] = self.writer.depth
        values['pending_requests'] = len(self.protocol.requests)
        values['tracked_servers'] = self.presence.servers_tracked
        values['untracked_heartbeats'] = self.presence.untracked
        return values


def _served_namespaces(server: Any) -> Set[str]:
    namespaces = {'/'}
    namespaces.update(server.handlers)
    namespaces.update(server.namespace_handlers)
    if isinstance(server.namespaces, (list, tuple, set)):
        namespaces.update(server.namespaces)
    namespaces.discard('*')
    return namespaces


def _close_at_exit(ref: 'weakref.ref[SyncDriver]') -> None:
    driver = ref()
    if driver is not None:
        driver.close()
