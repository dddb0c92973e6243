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
import datetime
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

#: How msgpack starts a timestamp (extension -1) of 4, 8 or 12 bytes.
_TIMESTAMP = re.compile(rb'\xd6\xff|\xd7\xff|\xc7\x0c\xff')

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


#: ``JSON.stringify``'s output, made once (the stdlib's dumps() builds an
#: encoder at every call when given arguments).
_STDLIB_ENCODER = stdlib_json.JSONEncoder(separators=(',', ':'),
                                          ensure_ascii=False)


def dumps_json(data: Any, json_module: Any = stdlib_json) -> str:
    """JSON text as ``JSON.stringify`` writes it, where the module allows."""
    if _stdlib_dumps(json_module):
        return _STDLIB_ENCODER.encode(data)
    try:
        return json_module.dumps(data, separators=(',', ':'),
                                 ensure_ascii=False)
    except TypeError:
        # alternative JSON modules may not take the stdlib keyword arguments
        return json_module.dumps(data)


def encode_entry(message: Message,
                 json_module: Any = stdlib_json) -> Dict[str, str]:
    """The fields of the stream entry that carries ``message``: its data as
    JSON, or as base64 msgpack when it holds binary (as the Node adapter,
    only for the types that carry user data)."""
    fields = {'uid': message.uid, 'nsp': message.nsp,
              'type': str(int(message.TYPE))}
    data = message.to_data()
    if data is None:
        return fields
    if message.TYPE not in _MAY_CARRY_BINARY:
        fields['data'] = dumps_json(data, json_module)
    elif not _stdlib_dumps(json_module):
        # another module might write bytes as text: look for them first
        fields['data'] = _binary_data(data) if has_binary(data) \
            else dumps_json(data, json_module)
    else:
        try:  # binary is rare: the stdlib's encoder refuses it in passing
            fields['data'] = _STDLIB_ENCODER.encode(data)
        except TypeError:
            if not has_binary(data):
                raise
            fields['data'] = _binary_data(data)
    return fields


def _stdlib_dumps(json_module: Any) -> bool:
    """Whether the module writes JSON with the stdlib's ``dumps`` (as
    python-socketio's, ``engineio.json``, does)."""
    return getattr(json_module, 'dumps', None) is stdlib_json.dumps


def _binary_data(data: Any) -> str:
    return base64.b64encode(msgpack.packb(data, use_bin_type=True)).decode(
        'ascii')


def decode_entry(fields: Mapping[bytes, bytes],
                 json_module: Any = stdlib_json,
                 max_size: Optional[int] = None) -> Message:
    """Decode and validate the fields of a stream entry.

    :raises MalformedMessage: for anything at all that does not fit.
    """
    if max_size is not None:
        size = sum(map(len, fields)) + sum(map(len, fields.values()))
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
    value = unpack(payload)
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


#: The longest integer ``engineio.json`` (python-socketio's JSON module)
#: reads: longer ones are refused, as its own ``loads`` does.
MAX_INTEGER_DIGITS = 100


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_INTEGER_DIGITS:
        raise ValueError('integer is too long')
    return int(digits)


#: ``engineio.json.loads``, made once: that function builds a decoder at
#: every call, which costs more than decoding a small message.
_BOUNDED_DECODER = stdlib_json.JSONDecoder(parse_int=_bounded_int)


def _json_loads(json_module: Any) -> Any:
    """The ``loads`` of ``json_module``, or the same made faster."""
    if getattr(json_module, '__name__', None) == 'engineio.json':
        return _BOUNDED_DECODER.decode
    return json_module.loads


def _decode_data(raw: bytes, json_module: Any) -> Any:
    if raw[:1] == b'{':
        try:
            return _json_loads(json_module)(raw.decode('utf-8'))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise MalformedMessage(f'data is not JSON: {exc}') from None
    try:
        packed = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage('data is neither JSON nor base64') from None
    return unpack(packed)


def unpack(packed: bytes) -> Any:
    """msgpack, as a peer may write it: a timestamp (what the Node adapter
    writes for a ``Date``) becomes the ISO 8601 text ``JSON.stringify``
    would give; any other extension type is malformed.

    :raises MalformedMessage: for anything msgpack or this cannot take.
    """
    try:
        value = msgpack.unpackb(packed, raw=False, ext_hook=_no_extension,
                                timestamp=3)
    except MalformedMessage:
        raise
    except Exception as exc:  # msgpack raises a zoo of exception types
        raise MalformedMessage(f'data is not msgpack: {exc}') from None
    if _TIMESTAMP.search(packed):  # rare: only then look for them
        value = _dates_as_text(value)
    return value


def _no_extension(code: int, data: bytes) -> Any:
    raise MalformedMessage(f'msgpack extension type {code}')


def _dates_as_text(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec='milliseconds').replace('+00:00',
                                                                'Z')
    if isinstance(value, list):
        return [_dates_as_text(item) for item in value]
    if isinstance(value, dict):
        return {key: _dates_as_text(item) for key, item in value.items()}
    return value
