"""The cluster wire protocol of ``@socket.io/redis-streams-adapter`` 0.3.x.

Framing only, and pure functions: no I/O happens here. Stream entries are
flat string maps (``uid``, ``nsp``, ``type`` and an optional ``data``), PUB/SUB
payloads are msgpack maps; both become the typed messages of
:mod:`~sio_redis_streams.core.messages`, which validate their ``data``.
Anything that does not fit raises :class:`MalformedMessage` so that callers
can log it and move on.
"""
from __future__ import annotations

import base64
import binascii
import json as stdlib_json
import re
from typing import Any, Dict, Mapping, Optional

import msgpack

from .messages import MalformedMessage, Message, MessageType, from_wire

#: Stream entry ids, as accepted by XRANGE/XREAD (``<ms>-<seq>``).
ENTRY_ID_RE = re.compile(r'\A[0-9]+-[0-9]+\Z')


# The Node adapter only looks for binary (and then switches the stream entry
# to base64 msgpack) in the message types that can carry user data.
_MAY_CARRY_BINARY = frozenset({
    MessageType.BROADCAST, MessageType.FETCH_SOCKETS_RESPONSE,
    MessageType.SERVER_SIDE_EMIT, MessageType.SERVER_SIDE_EMIT_RESPONSE,
    MessageType.BROADCAST_ACK})

#: A message type as a stream entry writes it: a few ASCII digits (``int()``
#: alone would take ``'²'`` or a number of thousands of digits).
_TYPE_RE = re.compile(r'\A[0-9]{1,3}\Z')


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


def encode_entry(message: Message,
                 json_module: Any = stdlib_json) -> Dict[str, str]:
    """The fields of the stream entry that carries ``message``."""
    fields = {'uid': message.uid, 'nsp': message.nsp,
              'type': str(int(message.TYPE))}
    data = message.to_data()
    if data is not None:
        if message.TYPE in _MAY_CARRY_BINARY and has_binary(data):
            packed = msgpack.packb(data, use_bin_type=True)
            fields['data'] = base64.b64encode(packed).decode('ascii')
        else:
            fields['data'] = dumps_json(data, json_module)
    return fields


def decode_entry(fields: Mapping[bytes, bytes],
                 json_module: Any = stdlib_json,
                 max_size: Optional[int] = None) -> Message:
    """Decode and validate the fields of a stream entry.

    :raises MalformedMessage: for anything at all that does not fit.
    """
    if max_size is not None:
        size = sum(len(k) + len(v) for k, v in fields.items())
        if size > max_size:
            raise MalformedMessage(
                f'entry of {size} bytes is over the limit of {max_size}')
    uid = _text_field(fields, b'uid')
    nsp = _text_field(fields, b'nsp')
    type_field = _text_field(fields, b'type')
    if not _TYPE_RE.match(type_field):
        raise MalformedMessage(f'type {type_field[:20]!r} is not a number')
    raw = fields.get(b'data')
    data = _decode_data(raw, json_module) if raw else None
    return _typed(int(type_field), uid, nsp, data)


def encode_pubsub(message: Message) -> bytes:
    """The PUB/SUB payload that carries ``message``."""
    return msgpack.packb(message.to_wire(), use_bin_type=True)


def decode_pubsub(payload: bytes,
                  max_size: Optional[int] = None) -> Message:
    """Decode and validate a PUB/SUB payload.

    :raises MalformedMessage: for anything at all that does not fit.
    """
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
    return _typed(type_, uid, nsp, value.get('data'))


def _typed(type_: int, uid: str, nsp: str, data: Any) -> Message:
    try:
        return from_wire(type_, uid, nsp, data)
    except MalformedMessage:
        raise
    except Exception as exc:  # a shape no check foresaw: still malformed
        raise MalformedMessage(f'cannot read a message of type {type_}: '
                               f'{type(exc).__name__}') from None


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
