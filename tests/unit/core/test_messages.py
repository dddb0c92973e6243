"""Typed cluster messages: the round trip of every type through
``from_wire`` and ``to_data`` (keys in the Node adapter's order),
validation, and acknowledgements."""
import pytest

from sio_redis_streams.core.messages import MESSAGE_CLASSES, AdapterClose, \
    Broadcast, BroadcastAck, BroadcastClientCount, BroadcastOptions, \
    DisconnectSockets, FetchSockets, FetchSocketsResponse, Heartbeat, \
    InitialHeartbeat, MalformedMessage, MessageType, ServerSideEmit, \
    ServerSideEmitResponse, SocketsJoin, SocketsLeave, from_wire

OPTS = {'rooms': ['r1', 7], 'except': ['x'], 'flags': {'volatile': True}}
NO_OPTS = {'rooms': [], 'except': [], 'flags': {}}

# (type, data as the Node adapter writes it, the class it decodes to)
WIRE = [
    (1, None, InitialHeartbeat),
    (2, None, Heartbeat),
    (13, None, AdapterClose),
    (3, {'packet': {'type': 2, 'data': ['ev', 1, {'a': [2]}]},
         'opts': OPTS}, Broadcast),
    (3, {'packet': {'type': 5, 'data': ['bin', b'\x00']},
         'requestId': 'r1', 'opts': NO_OPTS}, Broadcast),
    (4, {'opts': OPTS, 'rooms': ['a', 'b']}, SocketsJoin),
    (5, {'opts': NO_OPTS, 'rooms': [3]}, SocketsLeave),
    (6, {'opts': OPTS, 'close': True}, DisconnectSockets),
    (7, {'opts': OPTS, 'requestId': 'r2'}, FetchSockets),
    (8, {'requestId': 'r2', 'sockets': [
        {'id': 's1', 'handshake': {}, 'rooms': ['s1'], 'data': None}]},
     FetchSocketsResponse),
    (9, {'packet': ['hello', 'world']}, ServerSideEmit),
    (9, {'requestId': 'r3', 'packet': ['ping']}, ServerSideEmit),
    (10, {'requestId': 'r3', 'packet': ['pong', 1]},
     ServerSideEmitResponse),
    (11, {'requestId': 'r4', 'clientCount': 3}, BroadcastClientCount),
    (12, {'requestId': 'r4', 'packet': 'yes'}, BroadcastAck),
    (12, {'requestId': 'r4', 'packet': None, 'args': []}, BroadcastAck),
    (12, {'requestId': 'r4', 'packet': 1, 'args': [1, 2]}, BroadcastAck),
]


@pytest.mark.parametrize('type_,data,cls', WIRE)
def test_round_trip_keeps_data_and_key_order(type_, data, cls):
    message = from_wire(type_, 'uid1', '/chat', data)
    assert type(message) is cls
    assert message.type == MessageType(type_)
    assert (message.uid, message.nsp) == ('uid1', '/chat')
    assert message.to_data() == data
    if data is not None:
        assert list(message.to_data()) == list(data)
        assert list(message.to_data().get('opts', NO_OPTS)) == \
            ['rooms', 'except', 'flags']


def test_every_type_has_a_class():
    assert set(MESSAGE_CLASSES) == set(MessageType)
    assert {t for t, _, _ in WIRE} == {int(t) for t in MessageType}


def test_to_wire_order_and_omitted_data():
    message = from_wire(7, 'u', '/', {'opts': NO_OPTS, 'requestId': 'r'})
    assert list(message.to_wire()) == ['type', 'data', 'uid', 'nsp']
    assert message.to_wire() == {'type': 7, 'uid': 'u', 'nsp': '/', 'data': {
        'opts': NO_OPTS, 'requestId': 'r'}}
    assert Heartbeat('u', '/').to_wire() == {'type': 2, 'uid': 'u',
                                             'nsp': '/'}


def test_built_messages_write_node_order():
    broadcast = Broadcast('u', '/', 'req', 'ev', (1,))
    assert list(broadcast.to_data()) == ['packet', 'requestId', 'opts']
    assert list(Broadcast('u', '/', None, 'ev').to_data()) == \
        ['packet', 'opts']
    assert list(FetchSockets('u', '/', 'req').to_data()) == \
        ['opts', 'requestId']
    assert list(SocketsJoin('u', '/', rooms=('a',)).to_data()) == \
        ['opts', 'rooms']
    assert list(DisconnectSockets('u', '/').to_data()) == ['opts', 'close']
    assert list(ServerSideEmit('u', '/', 'r', 'e').to_data()) == \
        ['requestId', 'packet']
    assert list(FetchSocketsResponse('u', '/', 'r').to_data()) == \
        ['requestId', 'sockets']
    assert list(BroadcastClientCount('u', '/', 'r', 2).to_data()) == \
        ['requestId', 'clientCount']


def opts_data(**opts):
    return {'packet': {'type': 2, 'data': ['e']}, 'opts': opts}


@pytest.mark.parametrize('type_,nsp,data,reason', [
    (99, '/', {}, 'unknown message type 99'),
    (0, '/', {}, 'unknown message type'),
    (3, 'chat', opts_data(), 'does not start with /'),
    (3, '/', None, 'data of type BROADCAST is not a map'),
    (3, '/', ['x'], 'is not a map'),
    (3, '/', {'opts': {}}, 'not an event packet'),
    (3, '/', {'packet': [], 'opts': {}}, 'not an event packet'),
    (3, '/', {'packet': {'type': 3, 'data': ['e']}, 'opts': {}},
     'not an event packet'),
    (3, '/', {'packet': {'type': 2, 'data': []}, 'opts': {}},
     'event, ...args'),
    (3, '/', {'packet': {'type': 2, 'data': [5]}, 'opts': {}},
     'event, ...args'),
    (3, '/', {'packet': {'type': 2, 'data': 'e'}, 'opts': {}},
     'event, ...args'),
    (3, '/', {'packet': {'type': 2, 'data': ['e']}}, 'opts is not a map'),
    (3, '/', opts_data(rooms='r'), 'opts.rooms'),
    (3, '/', opts_data(rooms=[True]), 'opts.rooms'),
    (3, '/', opts_data(rooms=[1.5]), 'opts.rooms'),
    (3, '/', opts_data(**{'except': [None]}), 'opts.except'),
    (3, '/', opts_data(flags=[1]), 'opts.flags'),
    (3, '/', {**opts_data(), 'requestId': 5}, 'requestId'),
    (4, '/', {'opts': {}}, 'rooms is not a list'),
    (5, '/', {'opts': {}, 'rooms': [['a']]}, 'rooms is not a list'),
    (4, '/', {'rooms': []}, 'opts is not a map'),
    (6, '/', {'opts': {}, 'close': 1}, 'close is not a boolean'),
    (7, '/', {'opts': {}}, 'requestId missing'),
    (7, '/', {'opts': {}, 'requestId': None}, 'requestId missing'),
    (8, '/', {'requestId': 'r'}, 'sockets'),
    (8, '/', {'requestId': 'r', 'sockets': [{'id': 1}]}, 'sockets'),
    (8, '/', {'requestId': 'r', 'sockets': ['s']}, 'sockets'),
    (8, '/', {'sockets': []}, 'requestId'),
    (9, '/', {'packet': []}, 'packet is not'),
    (9, '/', {'packet': ['e'], 'requestId': 1}, 'requestId'),
    (10, '/', {'packet': 1}, 'requestId'),
    (11, '/', {'requestId': 'r'}, 'clientCount'),
    (11, '/', {'requestId': 'r', 'clientCount': -1}, 'clientCount'),
    (11, '/', {'requestId': 'r', 'clientCount': True}, 'clientCount'),
    (11, '/', {'requestId': 'r', 'clientCount': 1.0}, 'clientCount'),
    (12, '/', {'packet': 1}, 'requestId'),
])
def test_malformed_messages(type_, nsp, data, reason):
    with pytest.raises(MalformedMessage, match=reason.replace('[', r'\[')
                       .replace('.', r'\.')):
        from_wire(type_, 'u', nsp, data)


def test_heartbeats_ignore_their_data():
    assert from_wire(2, 'u', '/', 'anything') == Heartbeat('u', '/')
    assert from_wire(1, 'u', '/', None).to_data() is None


def test_optional_fields_have_defaults():
    message = from_wire(6, 'u', '/', {'opts': {}})
    assert message.close is False
    assert message.opts == BroadcastOptions()
    assert from_wire(3, 'u', '/', opts_data()).request_id is None
    assert from_wire(10, 'u', '/', {'requestId': 'r'}).answer is None


@pytest.mark.parametrize('args,data', [
    ((), {'requestId': 'r', 'packet': None, 'args': []}),
    (('a',), {'requestId': 'r', 'packet': 'a'}),
    ((None,), {'requestId': 'r', 'packet': None}),
    (('a', 2), {'requestId': 'r', 'packet': 'a', 'args': ['a', 2]}),
])
def test_broadcast_ack_arguments(args, data):
    ack = BroadcastAck('u', '/', 'r', args)
    assert ack.to_data() == data
    assert from_wire(12, 'u', '/', data) == ack


def test_broadcast_ack_from_node_has_one_argument():
    ack = from_wire(12, 'u', '/', {'requestId': 'r', 'packet': [1, 2]})
    assert ack.args == ([1, 2],)
    ack = from_wire(12, 'u', '/', {'requestId': 'r', 'packet': 1,
                                   'args': 'junk'})
    assert ack.args == (1,)


def test_messages_are_frozen_and_compare_by_value():
    message = Broadcast('u', '/', None, 'e', (1,), BroadcastOptions.of('r'))
    with pytest.raises(AttributeError):
        message.event = 'other'
    assert message == Broadcast('u', '/', None, 'e', (1,),
                                BroadcastOptions.of(['r']))
    assert SocketsJoin('u', '/') != SocketsLeave('u', '/')
