"""The cluster wire protocol of ``@socket.io/redis-streams-adapter`` 0.3.x.

Pure functions and value types only: no I/O happens here. Stream entries are
flat string maps (``uid``, ``nsp``, ``type`` and an optional ``data``), PUB/SUB
payloads are msgpack maps. Everything decoded from Redis is validated before
it is returned, and anything that does not fit raises :class:`MalformedMessage`
so that callers can log it and move on.
"""
from __future__ import annotations

import base64
import binascii
import enum
import json as stdlib_json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

import msgpack

Room = Union[str, int]

#: Stream entry ids, as accepted by XRANGE/XREAD (``<ms>-<seq>``).
ENTRY_ID_RE = re.compile(r'^[0-9]+-[0-9]+$')


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


# The Node adapter only looks for binary (and then switches the stream entry
# to base64 msgpack) in the message types that can carry user data.
_MAY_CARRY_BINARY = frozenset({
    MessageType.BROADCAST, MessageType.FETCH_SOCKETS_RESPONSE,
    MessageType.SERVER_SIDE_EMIT, MessageType.SERVER_SIDE_EMIT_RESPONSE,
    MessageType.BROADCAST_ACK})

#: Socket.IO packet types that carry an event.
EVENT_PACKET_TYPES = (2, 5)


class MalformedMessage(ValueError):
    """A stream entry or PUB/SUB payload that does not follow the protocol."""


@dataclass(frozen=True)
class BroadcastOptions:
    """Who a cluster operation addresses: ``rooms`` (empty: the whole
    namespace) minus any socket in one of the ``except_rooms``."""
    rooms: List[Room] = field(default_factory=list)
    except_rooms: List[Room] = field(default_factory=list)
    flags: Dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> Dict[str, Any]:
        return {'rooms': list(self.rooms), 'except': list(self.except_rooms),
                'flags': dict(self.flags)}

    @classmethod
    def from_wire(cls, value: Any) -> 'BroadcastOptions':
        if not isinstance(value, dict):
            raise MalformedMessage('opts is not a map')
        flags = value.get('flags') or {}
        if not isinstance(flags, dict):
            raise MalformedMessage('opts.flags is not a map')
        return cls(_rooms(value.get('rooms', []), 'opts.rooms'),
                   _rooms(value.get('except', []), 'opts.except'), flags)


@dataclass(frozen=True)
class ClusterMessage:
    """One message between servers. ``data`` is the type-specific payload,
    already validated for the types this package acts on."""
    type: int
    uid: str
    nsp: str
    data: Optional[Dict[str, Any]] = None

    def to_wire(self) -> Dict[str, Any]:
        wire: Dict[str, Any] = {'type': int(self.type)}
        if self.data is not None:
            wire['data'] = self.data
        wire['uid'] = self.uid
        wire['nsp'] = self.nsp
        return wire


def has_binary(value: Any) -> bool:
    """Tell whether bytes appear anywhere inside ``value``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    if isinstance(value, (list, tuple)):
        return any(has_binary(item) for item in value)
    if isinstance(value, dict):
        return any(has_binary(item) for item in value.values())
    return False


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode``: signed 32-bit, over UTF-16 code units."""
    units = text.encode('utf-16-le')
    h = 0
    for i in range(0, len(units), 2):
        h = (h * 31 + int.from_bytes(units[i:i + 2], 'little')) & 0xFFFFFFFF
    return h - 0x100000000 if h & 0x80000000 else h


def stream_for_namespace(namespace: str, stream_name: str,
                         stream_count: int) -> str:
    """The stream that carries the messages of ``namespace``."""
    if stream_count == 1:
        return stream_name
    h = java_string_hash(namespace)
    # JavaScript's % keeps the sign of the dividend
    index = abs(h) % stream_count * (-1 if h < 0 else 1)
    return f'{stream_name}-{index}'


def public_channel(prefix: str, namespace: str) -> str:
    """The PUB/SUB channel every server of ``namespace`` listens on."""
    return f'{prefix}#{namespace}#'


def private_channel(prefix: str, namespace: str, uid: str) -> str:
    """The PUB/SUB channel where server ``uid`` receives responses."""
    return f'{prefix}#{namespace}#{uid}#'


def next_entry_id(entry_id: str) -> str:
    """The smallest id after ``entry_id`` (an exclusive XRANGE start that
    also works on Redis older than 6.2)."""
    ms, seq = entry_id.split('-')
    return f'{ms}-{int(seq) + 1}'


def entry_id_key(entry_id: str) -> tuple:
    """A sort key for stream entry ids."""
    ms, _, seq = entry_id.partition('-')
    return int(ms), int(seq or 0)


def dumps_json(data: Any, json_module: Any = stdlib_json) -> str:
    """JSON text as ``JSON.stringify`` writes it, where the module allows."""
    try:
        return json_module.dumps(data, separators=(',', ':'),
                                 ensure_ascii=False)
    except TypeError:
        # alternative JSON modules may not take the stdlib keyword arguments
        return json_module.dumps(data)


def encode_entry(message: ClusterMessage,
                 json_module: Any = stdlib_json) -> Dict[str, str]:
    """The fields of the stream entry that carries ``message``."""
    fields = {'uid': message.uid, 'nsp': message.nsp,
              'type': str(int(message.type))}
    if message.data is not None:
        if message.type in _MAY_CARRY_BINARY and has_binary(message.data):
            packed = msgpack.packb(message.data, use_bin_type=True)
            fields['data'] = base64.b64encode(packed).decode('ascii')
        else:
            fields['data'] = dumps_json(message.data, json_module)
    return fields


def decode_entry(fields: Mapping[bytes, bytes],
                 json_module: Any = stdlib_json,
                 max_size: Optional[int] = None) -> ClusterMessage:
    """Decode and validate the fields of a stream entry."""
    if max_size is not None:
        size = sum(len(k) + len(v) for k, v in fields.items())
        if size > max_size:
            raise MalformedMessage(
                f'entry of {size} bytes is over the limit of {max_size}')
    uid = _text_field(fields, b'uid')
    nsp = _text_field(fields, b'nsp')
    type_text = _text_field(fields, b'type')
    if not type_text.isdigit():
        raise MalformedMessage(f'type {type_text[:20]!r} is not a number')
    data = None
    raw = fields.get(b'data')
    if raw:
        data = _decode_data(raw, json_module)
    return validate(int(type_text), uid, nsp, data)


def encode_pubsub(message: ClusterMessage) -> bytes:
    """The PUB/SUB payload that carries ``message``."""
    return msgpack.packb(message.to_wire(), use_bin_type=True)


def decode_pubsub(payload: bytes,
                  max_size: Optional[int] = None) -> ClusterMessage:
    """Decode and validate a PUB/SUB payload."""
    if not isinstance(payload, (bytes, bytearray)):
        raise MalformedMessage('payload is not bytes')
    if max_size is not None and len(payload) > max_size:
        raise MalformedMessage(
            f'payload of {len(payload)} bytes is over the limit of '
            f'{max_size}')
    value = _unpack(payload)
    if not isinstance(value, dict):
        raise MalformedMessage('payload is not a map')
    uid, nsp, type_ = value.get('uid'), value.get('nsp'), value.get('type')
    if not isinstance(uid, str) or not isinstance(nsp, str):
        raise MalformedMessage('uid or nsp missing or not text')
    if not isinstance(type_, int) or isinstance(type_, bool):
        raise MalformedMessage('type missing or not an integer')
    return validate(type_, uid, nsp, value.get('data'))


def validate(type_: int, uid: str, nsp: str, data: Any) -> ClusterMessage:
    """Check that ``data`` has the shape its message type requires."""
    try:
        type_ = MessageType(type_)
    except ValueError:
        raise MalformedMessage(f'unknown message type {type_}') from None
    if not nsp.startswith('/'):
        raise MalformedMessage(f'namespace {nsp[:50]!r} does not start with /')
    checker = _CHECKS.get(type_)
    if checker is None:
        data = None  # heartbeats carry nothing we read
    else:
        if not isinstance(data, dict):
            raise MalformedMessage(f'data of type {type_.name} is not a map')
        checker(data)
    return ClusterMessage(type_, uid, nsp, data)


def options_of(message: ClusterMessage) -> BroadcastOptions:
    """The validated broadcast options of a message that has ``opts``."""
    return BroadcastOptions.from_wire(message.data['opts'])


def _text_field(fields: Mapping[bytes, bytes], name: bytes) -> str:
    value = fields.get(name)
    if value is None:
        raise MalformedMessage(f'field {name.decode()} missing')
    try:
        return value.decode('utf-8')
    except UnicodeDecodeError:
        raise MalformedMessage(
            f'field {name.decode()} is not UTF-8') from None


def _decode_data(raw: bytes, json_module: Any) -> Any:
    if raw[:1] == b'{':
        try:
            return json_module.loads(raw.decode('utf-8'))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise MalformedMessage(f'data is not JSON: {exc}') from None
    try:
        packed = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage('data is neither JSON nor base64') from None
    return _unpack(packed)


def _unpack(packed: bytes) -> Any:
    try:
        return msgpack.unpackb(packed, raw=False)
    except Exception as exc:  # msgpack raises a zoo of exception types
        raise MalformedMessage(f'data is not msgpack: {exc}') from None


def _rooms(value: Any, what: str) -> List[Room]:
    if not isinstance(value, list) or not all(
            isinstance(r, (str, int)) and not isinstance(r, bool)
            for r in value):
        raise MalformedMessage(f'{what} is not a list of room names')
    return value


def _request_id(data: Dict[str, Any], required: bool = True) -> None:
    if 'requestId' not in data and not required:
        return
    if not isinstance(data.get('requestId'), str):
        raise MalformedMessage('requestId missing or not text')


def _check_broadcast(data: Dict[str, Any]) -> None:
    packet = data.get('packet')
    if not isinstance(packet, dict) or \
            packet.get('type') not in EVENT_PACKET_TYPES:
        raise MalformedMessage('packet is not an event packet')
    args = packet.get('data')
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        raise MalformedMessage('packet data is not [event, ...args]')
    BroadcastOptions.from_wire(data.get('opts'))
    _request_id(data, required=False)


def _check_sockets_rooms(data: Dict[str, Any]) -> None:
    BroadcastOptions.from_wire(data.get('opts'))
    _rooms(data.get('rooms'), 'rooms')


def _check_disconnect(data: Dict[str, Any]) -> None:
    BroadcastOptions.from_wire(data.get('opts'))
    if not isinstance(data.get('close', False), bool):
        raise MalformedMessage('close is not a boolean')


def _check_fetch(data: Dict[str, Any]) -> None:
    BroadcastOptions.from_wire(data.get('opts'))
    _request_id(data)


def _check_fetch_response(data: Dict[str, Any]) -> None:
    _request_id(data)
    sockets = data.get('sockets')
    if not isinstance(sockets, list) or not all(
            isinstance(s, dict) and isinstance(s.get('id'), str)
            for s in sockets):
        raise MalformedMessage('sockets is not a list of sockets')


def _check_server_side_emit(data: Dict[str, Any]) -> None:
    packet = data.get('packet')
    if not isinstance(packet, list) or not packet or \
            not isinstance(packet[0], str):
        raise MalformedMessage('packet is not [event, ...args]')
    _request_id(data, required=False)


def _check_response(data: Dict[str, Any]) -> None:
    _request_id(data)


def _check_client_count(data: Dict[str, Any]) -> None:
    _request_id(data)
    count = data.get('clientCount')
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise MalformedMessage('clientCount is not a count')


_CHECKS = {
    MessageType.BROADCAST: _check_broadcast,
    MessageType.SOCKETS_JOIN: _check_sockets_rooms,
    MessageType.SOCKETS_LEAVE: _check_sockets_rooms,
    MessageType.DISCONNECT_SOCKETS: _check_disconnect,
    MessageType.FETCH_SOCKETS: _check_fetch,
    MessageType.FETCH_SOCKETS_RESPONSE: _check_fetch_response,
    MessageType.SERVER_SIDE_EMIT: _check_server_side_emit,
    MessageType.SERVER_SIDE_EMIT_RESPONSE: _check_response,
    MessageType.BROADCAST_CLIENT_COUNT: _check_client_count,
    MessageType.BROADCAST_ACK: _check_response,
}
