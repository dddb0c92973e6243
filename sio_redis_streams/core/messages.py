"""The cluster messages, one typed class per message type.

A message is decoded and validated once, at the edge (see
:mod:`~sio_redis_streams.core.codec`); everything behind the edge reads
attributes, never raw dicts. ``to_data()`` gives back the ``data`` map of
the wire, with its keys in the order the Node adapter writes them, so that
entries written here are byte for byte what a Node server writes.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Tuple, Type

from .addressing import EVERYONE, BroadcastOptions, Room, rooms_of
from .errors import MalformedMessage

#: Socket.IO packet types that carry an event (EVENT, BINARY_EVENT).
EVENT_PACKET_TYPES = (2, 5)


class MessageType(enum.IntEnum):
    """The ``type`` of a cluster message."""
    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


@dataclass(frozen=True)
class Message:
    """What every message has: the sender's ``uid`` and the namespace."""
    TYPE: ClassVar[MessageType]
    uid: str
    nsp: str

    @property
    def type(self) -> MessageType:
        return self.TYPE

    def to_data(self) -> Optional[Dict[str, Any]]:
        """The ``data`` map of the wire (``None``: the type has none)."""
        return None

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any) -> 'Message':
        return cls(uid, nsp)

    def to_wire(self) -> Dict[str, Any]:
        """The whole message as a PUB/SUB payload carries it."""
        wire: Dict[str, Any] = {'type': int(self.TYPE)}
        data = self.to_data()
        if data is not None:
            wire['data'] = data
        wire['uid'] = self.uid
        wire['nsp'] = self.nsp
        return wire


@dataclass(frozen=True)
class Request(Message):
    """A message that some servers answer, on the requester's private
    channel."""
    request_id: Optional[str] = None


class InitialHeartbeat(Message):
    TYPE = MessageType.INITIAL_HEARTBEAT


class Heartbeat(Message):
    TYPE = MessageType.HEARTBEAT


class AdapterClose(Message):
    TYPE = MessageType.ADAPTER_CLOSE


@dataclass(frozen=True)
class Broadcast(Request):
    """An event for the selected sockets; with ``request_id``, each client
    is asked for an acknowledgement (carried on PUB/SUB, not the stream)."""
    TYPE = MessageType.BROADCAST
    event: str = ''
    args: Tuple[Any, ...] = ()
    opts: BroadcastOptions = EVERYONE
    packet_type: int = 2

    def to_data(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {'packet': {'type': self.packet_type,
                                           'data': [self.event, *self.args]}}
        if self.request_id is not None:
            data['requestId'] = self.request_id
        data['opts'] = self.opts.to_wire()
        return data

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any) -> 'Broadcast':
        packet = data.get('packet')
        if not isinstance(packet, dict) or \
                packet.get('type') not in EVENT_PACKET_TYPES:
            raise MalformedMessage('packet is not an event packet')
        event, args = _event_of(packet.get('data'), 'packet data')
        return cls(uid, nsp, _request_id(data, required=False), event, args,
                   BroadcastOptions.from_wire(data.get('opts')),
                   packet['type'])


@dataclass(frozen=True)
class SocketsJoin(Message):
    TYPE = MessageType.SOCKETS_JOIN
    opts: BroadcastOptions = EVERYONE
    rooms: Tuple[Room, ...] = ()

    def to_data(self) -> Dict[str, Any]:
        return {'opts': self.opts.to_wire(), 'rooms': list(self.rooms)}

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any) -> 'SocketsJoin':
        return cls(uid, nsp, BroadcastOptions.from_wire(data.get('opts')),
                   rooms_of(data.get('rooms'), 'rooms'))


class SocketsLeave(SocketsJoin):
    TYPE = MessageType.SOCKETS_LEAVE


@dataclass(frozen=True)
class DisconnectSockets(Message):
    TYPE = MessageType.DISCONNECT_SOCKETS
    opts: BroadcastOptions = EVERYONE
    close: bool = False

    def to_data(self) -> Dict[str, Any]:
        return {'opts': self.opts.to_wire(), 'close': self.close}

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any
                  ) -> 'DisconnectSockets':
        close = data.get('close', False)
        if not isinstance(close, bool):
            raise MalformedMessage('close is not a boolean')
        return cls(uid, nsp, BroadcastOptions.from_wire(data.get('opts')),
                   close)


@dataclass(frozen=True)
class FetchSockets(Request):
    TYPE = MessageType.FETCH_SOCKETS
    opts: BroadcastOptions = EVERYONE

    def to_data(self) -> Dict[str, Any]:
        return {'opts': self.opts.to_wire(), 'requestId': self.request_id}

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any) -> 'FetchSockets':
        return cls(uid, nsp, _request_id(data),
                   BroadcastOptions.from_wire(data.get('opts')))


@dataclass(frozen=True)
class ServerSideEmit(Request):
    TYPE = MessageType.SERVER_SIDE_EMIT
    event: str = ''
    args: Tuple[Any, ...] = ()

    def to_data(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {}
        if self.request_id is not None:
            data['requestId'] = self.request_id
        data['packet'] = [self.event, *self.args]
        return data

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any) -> 'ServerSideEmit':
        event, args = _event_of(data.get('packet'), 'packet')
        return cls(uid, nsp, _request_id(data, required=False), event, args)


@dataclass(frozen=True)
class Response(Message):
    """An answer to request ``request_id``."""
    request_id: str = ''


@dataclass(frozen=True)
class FetchSocketsResponse(Response):
    TYPE = MessageType.FETCH_SOCKETS_RESPONSE
    sockets: Tuple[Dict[str, Any], ...] = ()

    def to_data(self) -> Dict[str, Any]:
        return {'requestId': self.request_id, 'sockets': list(self.sockets)}

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any
                  ) -> 'FetchSocketsResponse':
        sockets = data.get('sockets')
        if not isinstance(sockets, list) or not all(
                isinstance(s, dict) and isinstance(s.get('id'), str)
                for s in sockets):
            raise MalformedMessage('sockets is not a list of sockets')
        return cls(uid, nsp, _request_id(data), tuple(sockets))


@dataclass(frozen=True)
class ServerSideEmitResponse(Response):
    TYPE = MessageType.SERVER_SIDE_EMIT_RESPONSE
    answer: Any = None

    def to_data(self) -> Dict[str, Any]:
        return {'requestId': self.request_id, 'packet': self.answer}

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any
                  ) -> 'ServerSideEmitResponse':
        return cls(uid, nsp, _request_id(data), data.get('packet'))


@dataclass(frozen=True)
class BroadcastClientCount(Response):
    TYPE = MessageType.BROADCAST_CLIENT_COUNT
    client_count: int = 0

    def to_data(self) -> Dict[str, Any]:
        return {'requestId': self.request_id,
                'clientCount': self.client_count}

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any
                  ) -> 'BroadcastClientCount':
        count = data.get('clientCount')
        if not isinstance(count, int) or isinstance(count, bool) or \
                count < 0:
            raise MalformedMessage('clientCount is not a count')
        return cls(uid, nsp, _request_id(data), count)


@dataclass(frozen=True)
class BroadcastAck(Response):
    """A client's acknowledgement. The Node protocol carries one argument
    (``packet``); Python servers add ``args`` when a client answered with
    another number of arguments, so that a python-socketio callback gets
    exactly what the client sent."""
    TYPE = MessageType.BROADCAST_ACK
    args: Tuple[Any, ...] = (None,)

    def to_data(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            'requestId': self.request_id,
            'packet': self.args[0] if self.args else None}
        if len(self.args) != 1:
            data['args'] = list(self.args)
        return data

    @classmethod
    def from_data(cls, uid: str, nsp: str, data: Any) -> 'BroadcastAck':
        args = data.get('args')
        return cls(uid, nsp, _request_id(data),
                   tuple(args) if isinstance(args, list)
                   else (data.get('packet'),))


#: The class of each message type.
MESSAGE_CLASSES: Dict[MessageType, Type[Message]] = {
    cls.TYPE: cls for cls in (
        InitialHeartbeat, Heartbeat, Broadcast, SocketsJoin, SocketsLeave,
        DisconnectSockets, FetchSockets, FetchSocketsResponse,
        ServerSideEmit, ServerSideEmitResponse, BroadcastClientCount,
        BroadcastAck, AdapterClose)}
# the same by plain int, for the decoder (no enum lookup per message)
_CLASS_OF: Dict[int, Type[Message]] = {
    int(t): c for t, c in MESSAGE_CLASSES.items()}


def from_wire(type_: int, uid: str, nsp: str, data: Any) -> Message:
    """The typed message for a decoded ``(type, uid, nsp, data)``, validated.

    :raises MalformedMessage: anything that does not fit the protocol.
    """
    cls = _CLASS_OF.get(type_)
    if cls is None:
        raise MalformedMessage(f'unknown message type {type_}')
    if not nsp.startswith('/'):
        raise MalformedMessage(f'namespace {nsp[:50]!r} does not start with /')
    if cls.to_data is Message.to_data:
        return cls(uid, nsp)  # heartbeats carry nothing we read
    if not isinstance(data, dict):
        raise MalformedMessage(f'data of type {cls.TYPE.name} is not a map')
    return cls.from_data(uid, nsp, data)


def _event_of(value: Any, what: str) -> Tuple[str, Tuple[Any, ...]]:
    if not isinstance(value, list) or not value or \
            not isinstance(value[0], str):
        raise MalformedMessage(f'{what} is not [event, ...args]')
    return value[0], tuple(value[1:])


def _request_id(data: Dict[str, Any], required: bool = True
                ) -> Optional[str]:
    if 'requestId' not in data and not required:
        return None
    request_id = data.get('requestId')
    if not isinstance(request_id, str):
        raise MalformedMessage('requestId missing or not text')
    return request_id
