"""The wire protocol, against the captures of ../shared/PROTOCOL.md."""
import base64
import json

import msgpack
import pytest

from sio_redis_streams.core import codec
from sio_redis_streams.core.messages import MalformedMessage, MessageType, \
    from_wire


def ClusterMessage(type_, uid, nsp, data=None):
    """The typed message of ``(type, uid, nsp, data)``, as decoding makes
    it."""
    return from_wire(type_, uid, nsp, data)


NODE_UID = '4dd60d9ce76adba6'

# (fields of a stream entry written by a Node 0.3.1 server, decoded data)
CAPTURED_ENTRIES = [
    ({b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'3',
      b'data': b'{"packet":{"type":2,"data":["hello",1,"two",{"three":3}]},'
               b'"opts":{"rooms":[],"except":[],"flags":{}}}'},
     {'packet': {'type': 2, 'data': ['hello', 1, 'two', {'three': 3}]},
      'opts': {'rooms': [], 'except': [], 'flags': {}}}),
    ({b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'3',
      b'data': b'gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkaVy'
               b'b29tMaZleGNlcHSRoXilZmxhZ3OA'},
     {'packet': {'type': 2, 'data': ['bin', b'\x01\x02\x03']},
      'opts': {'rooms': ['room1'], 'except': ['x'], 'flags': {}}}),
    ({b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'4',
      b'data': b'{"opts":{"rooms":[],"except":[],"flags":{}},'
               b'"rooms":["room2"]}'},
     {'opts': {'rooms': [], 'except': [], 'flags': {}}, 'rooms': ['room2']}),
    ({b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'6',
      b'data': b'{"opts":{"rooms":[],"except":[],"flags":{}},"close":false}'},
     {'opts': {'rooms': [], 'except': [], 'flags': {}}, 'close': False}),
]

# (channel, decoded PUB/SUB payload) as captured between two Node servers
CAPTURED_PUBSUB = [
    ('socket.io#/#', {'type': 7, 'data': {
        'opts': {'rooms': [], 'except': [], 'flags': {}},
        'requestId': '09bfee0b6e67b667'},
        'uid': 'aefd723061e80a3c', 'nsp': '/'}),
    ('socket.io#/#aefd723061e80a3c#', {'type': 8, 'data': {
        'requestId': '09bfee0b6e67b667',
        'sockets': [{'id': 'K68PEjNpWwtwN_udAAAA', 'handshake': {},
                     'rooms': ['K68PEjNpWwtwN_udAAAA', 'r1'],
                     'data': {'user': 'bob'}}]},
        'uid': 'd57d4ff4b7ccac40', 'nsp': '/'}),
    ('socket.io#/#', {'type': 3, 'data': {
        'packet': {'type': 2, 'data': ['ask', 7]},
        'requestId': '78f6c0f167bd7d26',
        'opts': {'rooms': [], 'except': [], 'flags': {'timeout': 1000}}},
        'uid': 'aefd723061e80a3c', 'nsp': '/'}),
    ('socket.io#/#aefd723061e80a3c#', {'type': 11, 'data': {
        'requestId': '78f6c0f167bd7d26', 'clientCount': 1},
        'uid': 'd57d4ff4b7ccac40', 'nsp': '/'}),
    ('socket.io#/#aefd723061e80a3c#', {'type': 12, 'data': {
        'requestId': '78f6c0f167bd7d26', 'packet': 'answer-7'},
        'uid': 'd57d4ff4b7ccac40', 'nsp': '/'}),
    ('socket.io#/#', {'type': 9, 'data': {
        'requestId': 'fe4f30b6d3f170ff', 'packet': ['hello', 'world']},
        'uid': 'aefd723061e80a3c', 'nsp': '/'}),
    ('socket.io#/#aefd723061e80a3c#', {'type': 10, 'data': {
        'requestId': 'fe4f30b6d3f170ff', 'packet': 'pong-from-b'},
        'uid': 'd57d4ff4b7ccac40', 'nsp': '/'}),
]


@pytest.mark.parametrize('fields,data', CAPTURED_ENTRIES)
def test_decodes_captured_node_entries(fields, data):
    message = codec.decode_entry(fields)
    assert message == ClusterMessage(int(fields[b'type']), NODE_UID, '/',
                                     data)


@pytest.mark.parametrize('fields,data', CAPTURED_ENTRIES)
def test_encodes_entries_exactly_as_node(fields, data):
    message = ClusterMessage(int(fields[b'type']), NODE_UID, '/', data)
    encoded = codec.encode_entry(message)
    assert list(encoded) == ['uid', 'nsp', 'type', 'data']
    assert {k.encode(): v.encode() for k, v in encoded.items()} == fields


@pytest.mark.parametrize('channel,payload', CAPTURED_PUBSUB)
def test_pubsub_round_trip(channel, payload):
    message = codec.decode_pubsub(msgpack.packb(payload, use_bin_type=True))
    assert message.to_wire() == payload
    assert msgpack.unpackb(codec.encode_pubsub(message)) == payload
    assert channel.startswith(codec.public_channel('socket.io', '/'))


def test_entry_without_data():
    message = ClusterMessage(MessageType.HEARTBEAT, 'u', '/')
    assert codec.encode_entry(message) == {'uid': 'u', 'nsp': '/',
                                           'type': '2'}
    assert codec.decode_entry({b'uid': b'u', b'nsp': b'/',
                               b'type': b'2'}) == message


def test_binary_only_switches_types_that_carry_user_data():
    join = ClusterMessage(MessageType.SOCKETS_JOIN, 'u', '/', {
        'opts': {'rooms': [], 'except': [], 'flags': {}}, 'rooms': ['a']})
    assert codec.encode_entry(join)['data'].startswith('{')
    broadcast = ClusterMessage(MessageType.BROADCAST, 'u', '/chat', {
        'packet': {'type': 2, 'data': ['e', {'deep': [b'\x00']}]},
        'opts': {'rooms': [], 'except': [], 'flags': {}}})
    data = codec.encode_entry(broadcast)['data']
    assert not data.startswith('{')
    assert msgpack.unpackb(base64.b64decode(data)) == broadcast.to_data()


def test_json_is_compact_and_keeps_unicode():
    message = ClusterMessage(MessageType.BROADCAST, 'u', '/', {
        'packet': {'type': 2, 'data': ['é', '😀']},
        'opts': {'rooms': [], 'except': [], 'flags': {}}})
    data = codec.encode_entry(message)['data']
    assert '"data":["é","😀"]' in data
    assert codec.decode_entry({k.encode(): v.encode()
                               for k, v in codec.encode_entry(
                                   message).items()}) == message


def test_custom_json_module_without_keywords():
    class MinimalJson:
        @staticmethod
        def dumps(value):
            return json.dumps(value)

        loads = staticmethod(json.loads)

    message = ClusterMessage(MessageType.SOCKETS_LEAVE, 'u', '/', {
        'opts': {'rooms': ['r'], 'except': [], 'flags': {}}, 'rooms': ['r']})
    fields = codec.encode_entry(message, MinimalJson)
    assert json.loads(fields['data']) == message.to_data()


# Java's String.hashCode and the stream of each namespace, as computed by
# Node.js with the adapter's hashCode (UTF-16 code units, signed, JS %).
NODE_HASHES = [
    ('/', 47, '2', '3'),
    ('/chat', 46457863, '1', '3'),
    ('/admin', 1438238848, '1', '0'),
    ('/other', 1451639873, '2', '1'),
    ('/é', 1690, '1', '2'),
    ('/😀', 1818066, '0', '2'),
    ('/abcdefghijkl', -598950283, '-1', '-3'),
    ('/négatif-namespace-with-a-long-name', -928111301, '-2', '-1'),
]


@pytest.mark.parametrize('namespace,h,of3,of4', NODE_HASHES)
def test_stream_names_match_node(namespace, h, of3, of4):
    assert codec.java_string_hash(namespace) == h
    assert codec.stream_for_namespace(namespace, 'socket.io', 3) == \
        f'socket.io-{of3}'
    assert codec.stream_for_namespace(namespace, 'socket.io', 4) == \
        f'socket.io-{of4}'
    assert codec.stream_for_namespace(namespace, 'socket.io', 1) == \
        'socket.io'


def test_channels():
    assert codec.public_channel('socket.io', '/chat') == 'socket.io#/chat#'
    assert codec.private_channel('socket.io', '/', 'ab') == 'socket.io#/#ab#'


def test_entry_ids():
    assert codec.next_entry_id('1795652467299-9') == '1795652467299-10'
    assert codec.entry_id_key('10-2') > codec.entry_id_key('9-20')
    assert codec.ENTRY_ID_RE.match('1-0')
    assert not codec.ENTRY_ID_RE.match('1-0x')


def good_fields(**changes):
    fields = dict(CAPTURED_ENTRIES[0][0])
    fields.update({k.encode(): v for k, v in changes.items()})
    return {k: v for k, v in fields.items() if v is not None}


@pytest.mark.parametrize('fields,reason', [
    (good_fields(uid=None), 'uid missing'),
    (good_fields(nsp=None), 'nsp missing'),
    (good_fields(type=None), 'type missing'),
    (good_fields(uid=b'\xff\xfe'), 'not UTF-8'),
    (good_fields(type=b'three'), 'not a number'),
    (good_fields(type=b'99'), 'unknown message type'),
    (good_fields(nsp=b'chat'), 'does not start with /'),
    (good_fields(data=b'{"packet":'), 'not JSON'),
    (good_fields(data=b'!!!not base64'), 'neither JSON nor base64'),
    (good_fields(data=base64.b64encode(b'\xc1')), 'not msgpack'),
    (good_fields(data=b'{"packet":{"type":2,"data":[]},"opts":{}}'),
     '[event, ...args]'),
    (good_fields(data=b'{"packet":{"type":3,"data":["x"]},"opts":{}}'),
     'not an event packet'),
    (good_fields(data=b'{"packet":{"type":2,"data":[1]},"opts":{}}'),
     '[event, ...args]'),
    (good_fields(data=b'{"packet":{"type":2,"data":["e"]},"opts":[]}'),
     'opts is not a map'),
    (good_fields(data=b'{"packet":{"type":2,"data":["e"]},'
                      b'"opts":{"rooms":"r"}}'), 'opts.rooms'),
    (good_fields(data=b'{"packet":{"type":2,"data":["e"]},'
                      b'"opts":{"except":[null]}}'), 'opts.except'),
    (good_fields(data=b'{"packet":{"type":2,"data":["e"]},'
                      b'"opts":{"flags":1}}'), 'flags'),
    (good_fields(data=b'{"packet":{"type":2,"data":["e"]},"opts":{},'
                      b'"requestId":5}'), 'requestId'),
    (good_fields(type=b'4', data=b'{"opts":{},"rooms":"x"}'), 'rooms'),
    (good_fields(type=b'6', data=b'{"opts":{},"close":"yes"}'), 'close'),
    (good_fields(data=base64.b64encode(msgpack.packb([1, 2]))),
     'not a map'),
    (good_fields(data=b'{' + b'[' * 100000 + b'}'), 'not JSON'),
])
def test_malformed_entries_are_rejected(fields, reason):
    with pytest.raises(MalformedMessage, match=reason.replace('[', r'\[')
                       .replace('.', r'\.')):
        codec.decode_entry(fields)


def test_huge_entries_are_rejected():
    fields = good_fields(data=b'{"x":"' + b'a' * 2000 + b'"}')
    with pytest.raises(MalformedMessage, match='over the limit'):
        codec.decode_entry(fields, max_size=1000)


@pytest.mark.parametrize('payload,reason', [
    (b'\xc1', 'not msgpack'),
    (msgpack.packb('text'), 'not a map'),
    (msgpack.packb({'type': 3, 'uid': 'u'}), 'uid or nsp'),
    (msgpack.packb({'type': '3', 'uid': 'u', 'nsp': '/'}), 'type'),
    (msgpack.packb({'type': 8, 'uid': 'u', 'nsp': '/',
                    'data': {'requestId': 'r', 'sockets': [{}]}}),
     'sockets'),
    (msgpack.packb({'type': 11, 'uid': 'u', 'nsp': '/',
                    'data': {'requestId': 'r', 'clientCount': -1}}),
     'clientCount'),
    (msgpack.packb({'type': 9, 'uid': 'u', 'nsp': '/',
                    'data': {'packet': []}}), 'packet'),
    (msgpack.packb({'type': 10, 'uid': 'u', 'nsp': '/', 'data': {}}),
     'requestId'),
])
def test_malformed_pubsub_payloads_are_rejected(payload, reason):
    with pytest.raises(MalformedMessage, match=reason):
        codec.decode_pubsub(payload)


def test_heartbeats_need_no_data():
    message = codec.decode_pubsub(msgpack.packb(
        {'type': 13, 'uid': 'u', 'nsp': '/'}))
    assert message == ClusterMessage(MessageType.ADAPTER_CLOSE, 'u', '/')


def test_python_socketio_json_is_read_with_its_integer_bound():
    """``engineio.json`` is read with one decoder made once, which refuses
    what its ``loads`` refuses: integers of over 100 digits."""
    import engineio.json

    entry = {b'uid': b'a' * 16, b'nsp': b'/', b'type': b'3',
             b'data': b'{"packet":{"type":2,"data":["e",' + b'9' * 100 +
             b']},"opts":{"rooms":[],"except":[],"flags":{}}}'}
    message = codec.decode_entry(entry, engineio.json)
    assert message.args == (int('9' * 100),)
    entry[b'data'] = entry[b'data'].replace(b'9' * 100, b'9' * 101)
    with pytest.raises(MalformedMessage, match='not JSON'):
        codec.decode_entry(entry, engineio.json)
