"""Whatever Redis hands over, the decoders return a typed message or raise
MalformedMessage: no other exception can reach a reader or the subscriber.
Hypothesis builds the inputs: any bytes in any field, valid entries with one
field changed, every message type with data of any shape, msgpack with
extension types and timestamps, deep and huge JSON."""
import base64
import datetime
import json

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sio_redis_streams.core import codec
from sio_redis_streams.core.messages import MalformedMessage, Message, \
    MessageType

FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) |
    st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) |
    st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30)
msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) |
    st.floats() | st.text(max_size=20) | st.binary(max_size=20) |
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)) |
    st.datetimes(timezones=st.just(datetime.timezone.utc)),
    lambda inner: st.lists(inner, max_size=5) |
    st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30)
type_numbers = st.sampled_from([int(t) for t in MessageType]) | \
    st.integers(-5, 300)


def packed(value):
    return msgpack.packb(value, use_bin_type=True, datetime=True)


def decodes_or_is_malformed(decode, *args):
    try:
        message = decode(*args)
    except MalformedMessage:
        return None
    assert isinstance(message, Message)
    # what was decoded can be written again
    codec.encode_entry(message)
    codec.encode_pubsub(message)
    return message


@FUZZ
@given(st.dictionaries(st.binary(max_size=8), st.binary(max_size=64),
                       max_size=6))
def test_any_fields(fields):
    decodes_or_is_malformed(codec.decode_entry, fields)


@FUZZ
@given(st.sampled_from([b'uid', b'nsp', b'type', b'data']),
       st.binary(max_size=64) | st.text(max_size=40).map(str.encode) |
       st.integers().map(lambda n: str(n).encode()) |
       st.sampled_from([b'\xc2\xb2', b'9' * 5000, b'-1', b' 3', b'3\n',
                        b'\xef\xbc\x93', b'+3', b'0x3']))
def test_one_field_changed(name, value):
    fields = {b'uid': b'u' * 16, b'nsp': b'/', b'type': b'3',
              b'data': b'{"packet":{"type":2,"data":["e",1]},'
                       b'"opts":{"rooms":[],"except":[],"flags":{}}}'}
    fields[name] = value
    decodes_or_is_malformed(codec.decode_entry, fields)


@FUZZ
@given(type_numbers, st.text(max_size=10), json_values | msgpack_values,
       st.booleans())
def test_every_type_with_any_data(type_number, nsp, data, as_msgpack):
    if as_msgpack:
        raw = base64.b64encode(packed(data))
    else:
        try:
            raw = json.dumps(data).encode()
        except (TypeError, ValueError):
            raw = base64.b64encode(packed(data))
    fields = {b'uid': b'u', b'nsp': nsp.encode(),
              b'type': str(type_number).encode(), b'data': raw}
    decodes_or_is_malformed(codec.decode_entry, fields)
    decodes_or_is_malformed(codec.decode_pubsub, packed(
        {'type': type_number, 'uid': 'u', 'nsp': nsp, 'data': data}))


@FUZZ
@given(msgpack_values)
def test_broadcast_arguments_of_any_msgpack(args):
    data = {'packet': {'type': 2, 'data': ['e', args]},
            'opts': {'rooms': [], 'except': [], 'flags': {}}}
    message = decodes_or_is_malformed(
        codec.decode_pubsub, packed({'type': 3, 'uid': 'u', 'nsp': '/',
                                     'data': data}))
    if message is not None:  # what reaches a client is JSON or bytes
        json.dumps(message.args, default=lambda b: b.hex())


@FUZZ
@given(st.binary(max_size=200))
def test_any_pubsub_payload(payload):
    decodes_or_is_malformed(codec.decode_pubsub, payload)


def test_a_node_date_becomes_its_iso_text():
    when = datetime.datetime(2026, 11, 28, 9, 30, 1, 250000,
                             tzinfo=datetime.timezone.utc)
    data = {'packet': {'type': 2, 'data': ['e', {'at': when}, b'\x01']},
            'opts': {'rooms': [], 'except': [], 'flags': {}}}
    message = codec.decode_pubsub(packed({'type': 3, 'uid': 'u', 'nsp': '/',
                                          'data': data}))
    assert message.args == ({'at': '2026-11-28T09:30:01.250Z'}, b'\x01')


def test_deep_and_huge_json_is_malformed_not_a_crash():
    for data in (b'{"a":' * 100_000, b'[' * 100_000,
                 b'{"packet":{"type":2,"data":["e",' + b'9' * 5000 + b']}}'):
        fields = {b'uid': b'u', b'nsp': b'/', b'type': b'3', b'data': data}
        assert decodes_or_is_malformed(codec.decode_entry, fields) is None
