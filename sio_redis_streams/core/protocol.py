"""The cluster protocol of one server: what an outgoing operation becomes on
the wire, and what an incoming message means for this server.

This is the layer the Node adapter calls ``ClusterAdapter``, without the
transport: it builds typed messages, consumes answers and echoes itself
(request bookkeeping), and turns every other incoming message into one
:class:`Action` that a driver carries out on the local sockets. It does no
I/O and never waits, so that a threaded driver and an asyncio driver share
it whole.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from . import codec
from .messages import Broadcast, BroadcastAck, BroadcastClientCount, \
    BroadcastOptions, DisconnectSockets, FetchSockets, \
    FetchSocketsResponse, Message, Request, Response, ServerSideEmit, \
    ServerSideEmitResponse, SocketsJoin, SocketsLeave
from .requests import PendingRequests


@dataclass(frozen=True)
class Deliver:
    """Emit ``message`` to the local sockets it addresses; with ``offset``
    (connection state recovery), the entry id goes last in the packet."""
    message: Broadcast
    offset: Optional[str] = None


@dataclass(frozen=True)
class AskClients:
    """Emit ``message`` to each addressed local socket with an
    acknowledgement; answer with :meth:`ClusterProtocol.client_count` and
    send each client's answer with :meth:`ClusterProtocol.ack`."""
    message: Broadcast


@dataclass(frozen=True)
class ChangeRooms:
    """Add (``join``) or remove the addressed local sockets to/from
    ``message.rooms``."""
    message: SocketsJoin
    join: bool


@dataclass(frozen=True)
class Disconnect:
    """Disconnect the addressed local sockets (``message.close``: their
    whole connection)."""
    message: DisconnectSockets


@dataclass(frozen=True)
class DescribeSockets:
    """Answer with :meth:`ClusterProtocol.fetch_response` and the addressed
    local sockets."""
    message: FetchSockets


@dataclass(frozen=True)
class CallHandler:
    """Run ``handler(*message.args)`` off the receiving task; if the message
    asks for it, answer with :meth:`ClusterProtocol.handler_response`."""
    message: ServerSideEmit
    handler: Callable[..., Any]


Action = Union[Deliver, AskClients, ChangeRooms, Disconnect,
               DescribeSockets, CallHandler]


class ClusterProtocol:
    """One server's side of the cluster protocol.

    :param uid: this server's id.
    :param stream_name: the stream (prefix, when ``stream_count`` > 1).
    :param stream_count: how many streams the namespaces spread over.
    :param recovery: connection state recovery is on: broadcasts carry
                     their offset, and this server applies its own
                     broadcasts and disconnections when it reads them back
                     from the stream (so that they are in order with the
                     other broadcasts).
    """

    def __init__(self, uid: str, stream_name: str, stream_count: int,
                 recovery: bool) -> None:
        self.uid = uid
        self.stream_name = stream_name
        self.stream_count = stream_count
        self.recovery = recovery
        self.requests = PendingRequests()
        self._handlers: Dict[Tuple[str, str], Callable[..., Any]] = {}

    # -- streams -----------------------------------------------------------

    def stream_of(self, namespace: str) -> str:
        """The stream that carries the messages of ``namespace``."""
        return codec.stream_for_namespace(namespace, self.stream_name,
                                          self.stream_count)

    def read_streams(self) -> List[str]:
        """Every stream a server reads."""
        count = self.stream_count
        if count == 1:
            return [self.stream_name]
        # a namespace whose hash is negative lands on "<name>--<i>" (the
        # sign of JavaScript's %), so those streams are read as well
        return [f'{self.stream_name}-{i}' for i in range(-(count - 1), count)]

    # -- outgoing ----------------------------------------------------------

    def broadcast(self, namespace: str, event: str, args: List[Any],
                  opts: BroadcastOptions,
                  request_id: Optional[str] = None) -> Broadcast:
        return Broadcast(self.uid, namespace, request_id, event, tuple(args),
                         opts)

    def sockets_rooms(self, namespace: str, opts: BroadcastOptions,
                      rooms: Tuple[Any, ...], join: bool) -> SocketsJoin:
        cls = SocketsJoin if join else SocketsLeave
        return cls(self.uid, namespace, opts, rooms)

    def disconnect_sockets(self, namespace: str, opts: BroadcastOptions,
                           close: bool) -> DisconnectSockets:
        return DisconnectSockets(self.uid, namespace, opts, close)

    def fetch_sockets(self, namespace: str, opts: BroadcastOptions,
                      request_id: str) -> FetchSockets:
        return FetchSockets(self.uid, namespace, request_id, opts)

    def server_side_emit(self, namespace: str, event: str, args: List[Any],
                         request_id: Optional[str] = None) -> ServerSideEmit:
        return ServerSideEmit(self.uid, namespace, request_id, event,
                              tuple(args))

    def applies_own_entries(self, message: Message) -> bool:
        """Whether this server applies its own stream entry ``message`` when
        it reads it back (rather than when it writes it)."""
        return self.recovery and isinstance(message, (Broadcast,
                                                      DisconnectSockets))

    # -- answers -----------------------------------------------------------

    def fetch_response(self, request: FetchSockets,
                       sockets: List[Dict[str, Any]]) -> FetchSocketsResponse:
        return FetchSocketsResponse(self.uid, request.nsp,
                                    request.request_id or '', tuple(sockets))

    def client_count(self, request: Broadcast,
                     count: int) -> BroadcastClientCount:
        return BroadcastClientCount(self.uid, request.nsp,
                                    request.request_id or '', count)

    def ack(self, request: Broadcast, args: Tuple[Any, ...]) -> BroadcastAck:
        return BroadcastAck(self.uid, request.nsp, request.request_id or '',
                            tuple(args))

    def handler_response(self, request: ServerSideEmit,
                         answer: Any) -> ServerSideEmitResponse:
        return ServerSideEmitResponse(self.uid, request.nsp,
                                      request.request_id or '', answer)

    # -- server-side event handlers ----------------------------------------

    def on_server_event(self, namespace: str, event: str,
                        handler: Callable[..., Any]) -> None:
        self._handlers[(namespace, event)] = handler

    # -- incoming ----------------------------------------------------------

    def on_entry(self, message: Message,
                 entry_id: str) -> Optional[Action]:
        """A stream entry, in stream order: what to do with it."""
        if message.uid == self.uid and \
                not self.applies_own_entries(message):
            return None
        if isinstance(message, Broadcast) and message.request_id is None:
            offset = entry_id if self.recovery and \
                not message.opts.volatile else None
            return Deliver(message, offset)
        return self._command(message)

    def local_action(self, message: Message) -> Optional[Action]:
        """What this server does itself for its own outgoing ``message``
        (which the others do when they receive it)."""
        return self._command(message)

    def on_pubsub(self, message: Message) -> Optional[Action]:
        """A PUB/SUB message (heartbeats are :mod:`presence`'s): answers
        and this server's own echoes go to their requests here; the rest
        is an action, or nothing."""
        if message.uid == self.uid:
            if isinstance(message, Request) and message.request_id:
                self.requests.on_echo(message, message.request_id)
            return None
        if isinstance(message, Response):
            self.requests.on_response(message)
            return None
        return self._command(message)

    def _command(self, message: Message) -> Optional[Action]:
        if isinstance(message, Broadcast):
            return AskClients(message) if message.request_id else \
                Deliver(message)
        if isinstance(message, SocketsJoin):
            return ChangeRooms(message, join=not isinstance(message,
                                                            SocketsLeave))
        if isinstance(message, DisconnectSockets):
            return Disconnect(message)
        if isinstance(message, FetchSockets):
            return DescribeSockets(message)
        if isinstance(message, ServerSideEmit):
            handler = self._handlers.get((message.nsp, message.event))
            # like Node: no listener, no answer
            return None if handler is None else CallHandler(message, handler)
        return None
