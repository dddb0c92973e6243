"""The cluster API of the Node adapter, for the sync manager: socket
management across servers, server-side events, broadcasts with
acknowledgements, and what an operator reads."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from .core.arguments import answer_of, arguments
from .core.addressing import BroadcastOptions, as_tuple
from .core.requests import AckRequest, CollectRequest
from .exceptions import ClusterTimeoutError
from .remote import RemoteSocket
from .sync.driver import SyncDriver

Rooms = Any  # a room, a list of rooms, or None


class ClusterAPI:
    """Mixed into :class:`~sio_redis_streams.RedisStreamsManager`."""
    uid: str
    _driver: SyncDriver

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
        local = self._need_server('fetch_sockets')
        opts = BroadcastOptions.of(to, skip)
        found = [RemoteSocket.from_wire(self, namespace, self.uid,
                                        local.describe(namespace, sid))
                 for sid in local.select(namespace, opts)]
        request = CollectRequest(
            self._timeout(timeout),
            lambda m: [RemoteSocket.from_wire(self, namespace, m.uid, s)
                       for s in m.sockets], self.uid)
        complete = self._driver.ask(request, self._protocol.fetch_sockets(
            namespace, opts, request.id), timeout)
        found += request.responses
        if not complete:
            raise ClusterTimeoutError('fetch_sockets', found,
                                      request.expected, request.received)
        return found

    def sockets_join(self, rooms: Rooms, namespace: str = '/',
                     to: Rooms = None, skip: Rooms = None) -> None:
        """Add every matching socket of the cluster to ``rooms``."""
        self._sockets_rooms(rooms, namespace, to, skip, join=True)

    def sockets_leave(self, rooms: Rooms, namespace: str = '/',
                      to: Rooms = None, skip: Rooms = None) -> None:
        """Remove every matching socket of the cluster from ``rooms``."""
        self._sockets_rooms(rooms, namespace, to, skip, join=False)

    def disconnect_sockets(self, namespace: str = '/', to: Rooms = None,
                           skip: Rooms = None, close: bool = False) -> None:
        """Disconnect every matching socket of the cluster from
        ``namespace``; with ``close``, close their whole connections."""
        message = self._protocol.disconnect_sockets(
            namespace, BroadcastOptions.of(to, skip), close)
        # with recovery on, this server too disconnects them when it reads
        # the entry: after the broadcasts emitted before
        if not self._protocol.applies_own_entries(message):
            self._driver.execute_own(message)
        self._driver.submit(message)

    def is_recovered(self, sid: str, namespace: str = '/') -> bool:
        """Whether this socket is a recovered session (connection state
        recovery), rather than a new one. True from the connect handler
        on."""
        return self._driver.recovery.is_recovered(sid, namespace)

    def get_data(self, sid: str, namespace: str = '/') -> Any:
        """The ``data`` of a socket of this server that ``fetch_sockets``
        reports: its python-socketio session (``sio.get_session``)."""
        return self._need_server('get_data').get_data(sid, namespace)

    def set_data(self, sid: str, data: Any, namespace: str = '/') -> None:
        """Set the ``data`` of a socket of this server: it is its
        python-socketio session, so this is ``sio.save_session``."""
        self._need_server('set_data').set_data(sid, namespace, data)

    def on_server_event(self, event: str, handler: Optional[Callable] = None,
                        namespace: str = '/') -> Callable:
        """Register the handler of a server-side event, as a decorator or
        with ``handler``. It is called with the event's arguments; its
        return value is the answer to a ``server_side_call``. It runs in
        a background task of this server.
        """
        def register(function: Callable) -> Callable:
            self._protocol.on_server_event(namespace, event, function)
            return function

        return register(handler) if handler is not None else register

    def server_side_emit(self, event: str, *args: Any,
                         namespace: str = '/') -> None:
        """Send an event to the other servers of the cluster."""
        self._driver.publish(self._protocol.server_side_emit(
            namespace, event, list(args)))

    def server_side_call(self, event: str, *args: Any, namespace: str = '/',
                         timeout: Optional[float] = None) -> List[Any]:
        """Send an event to the other servers and return their answers.

        A server without a handler for the event does not answer (as in
        Node), so the call then times out.

        :raises ClusterTimeoutError: when some answers did not arrive within
                                     ``timeout``; it holds those that did.
        """
        self._need_server('server_side_call')
        request = CollectRequest(self._timeout(timeout),
                                 lambda m: [m.answer], self.uid)
        complete = self._driver.ask(request, self._protocol.server_side_emit(
            namespace, event, list(args), request.id), timeout)
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
        local = self._need_server('emit_with_ack')
        timeout = self._timeout(timeout)
        answers: List[Any] = []
        request = AckRequest(lambda *a: answers.append(answer_of(a)),
                             timeout, self.uid)
        args = arguments(data)
        opts = BroadcastOptions.of(to, skip_sid, {'timeout': _ms(timeout)})
        request.expect_local_clients(local.emit_with_ack(
            namespace, event, args, opts, request.local_ack))
        complete = self._driver.ask(request, self._protocol.broadcast(
            namespace, event, args, opts, request.id), timeout)
        if not complete:
            raise ClusterTimeoutError('emit_with_ack', list(answers),
                                      request.clients_expected, request.acks)
        return answers

    def server_count(self, namespace: str = '/') -> int:
        """How many servers serve ``namespace``, as Redis counts the
        subscribers of its public channel (the Node adapter's count)."""
        self._driver.check_open('server_count')
        return self._driver.pubsub.server_count(namespace)

    def live_server_count(self, namespace: str = '/') -> int:
        """How many servers of ``namespace`` sent a heartbeat (or any PUB/SUB
        message) within ``heartbeat_timeout``, this one included. Node 0.3.x
        servers send no heartbeats: they count only while they send
        requests."""
        return self._driver.presence.live_count(namespace)

    def stats(self) -> Dict[str, int]:
        """Counters (see :data:`sio_redis_streams.COUNTERS`) and the current
        ``outbox_depth``, ``pending_requests``, ``tracked_servers`` (the
        (namespace, server) pairs of the table of live servers) and
        ``untracked_heartbeats`` (messages of servers not tracked because
        that table was full)."""
        return self._driver.stats()

    # -- shared by the methods above ---------------------------------------

    @property
    def _protocol(self) -> Any:
        return self._driver.protocol

    def _sockets_rooms(self, rooms: Rooms, namespace: str, to: Rooms,
                       skip: Rooms, join: bool) -> None:
        message = self._protocol.sockets_rooms(
            namespace, BroadcastOptions.of(to, skip), as_tuple(rooms), join)
        self._driver.execute_own(message)
        self._driver.submit(message)

    def _need_server(self, what: str) -> Any:
        """This server's sockets; a clear error on a write-only manager."""
        self._driver.check_open(what)
        if self._driver.local is None:
            raise RuntimeError(f'{what} needs a server: use it on a server, '
                               f'not a write-only manager')
        return self._driver.local

    def _timeout(self, timeout: Optional[float]) -> float:
        return self._driver.context.options.request_timeout \
            if timeout is None else timeout


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
