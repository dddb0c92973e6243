"""Connection state recovery, protocol half: stored sessions in the Node
adapter's format, the ``(pid, offset)`` a client brings, and the selection,
page by page, of the broadcasts a returning client missed."""
import base64
import json

import msgpack
import pytest

from sio_redis_streams.core.addressing import BroadcastOptions
from sio_redis_streams.core.codec import encode_entry
from sio_redis_streams.core.messages import Broadcast, DisconnectSockets, \
    MalformedMessage, SocketsJoin
from sio_redis_streams.core.replay import PID_RE, Replay, Session, \
    receives, restore_request


def test_session_round_trip():
    session = Session('sid1', 'pid-1', ['sid1', 'room', 3],
                      {'user': 'bob', 'blob': b'\x00\x01'})
    wire = session.to_wire()
    assert isinstance(wire, str)
    assert Session.from_wire(wire.encode()) == session
    assert Session.from_wire(wire) == session


def test_session_in_node_format():
    wire = Session('s', 'p', ['r'], None).to_wire()
    value = msgpack.unpackb(base64.b64decode(wire))
    assert list(value) == ['sid', 'pid', 'rooms', 'data']
    assert value == {'sid': 's', 'pid': 'p', 'rooms': ['r'], 'data': None}
    node = base64.b64encode(msgpack.packb({'sid': 's', 'pid': 'p',
                                           'rooms': []}))
    assert Session.from_wire(node) == Session('s', 'p', [], None)


def packed(value):
    return base64.b64encode(msgpack.packb(value))


@pytest.mark.parametrize('raw,reason', [
    (b'!!!', 'not base64 msgpack'),
    (b'abc', 'not base64 msgpack'),
    (base64.b64encode(b'\xc1'), 'not base64 msgpack'),
    (base64.b64encode(msgpack.packb({'sid': 's'}) + b'\x00'),
     'not base64 msgpack'),
    (packed(['s', 'p', []]), 'lacks sid or pid'),
    (packed({'pid': 'p', 'rooms': []}), 'lacks sid'),
    (packed({'sid': 1, 'pid': 'p', 'rooms': []}), 'lacks sid'),
    (packed({'sid': 's', 'rooms': []}), 'lacks sid'),
    (packed({'sid': 's', 'pid': 'p', 'rooms': 'r'}), 'session rooms'),
    (packed({'sid': 's', 'pid': 'p'}), 'session rooms'),
])
def test_malformed_sessions(raw, reason):
    with pytest.raises(MalformedMessage, match=reason):
        Session.from_wire(raw)


@pytest.mark.parametrize('rooms', [[['a']], [{'b': 1}]])
def test_session_rooms_must_be_room_names(rooms):
    with pytest.raises(MalformedMessage):
        Session.from_wire(packed({'sid': 's', 'pid': 'p', 'rooms': rooms}))


@pytest.mark.parametrize('auth,expected', [
    ({'pid': 'Ab_9-z', 'offset': '1700000000000-12'},
     ('Ab_9-z', '1700000000000-12')),
    ({'pid': 'p' * 64, 'offset': '0-0'}, ('p' * 64, '0-0')),
    ({'pid': 'p', 'offset': '1-0', 'token': 'x'}, ('p', '1-0')),
    (None, None),
    ('pid', None),
    (['p', '1-0'], None),
    ({}, None),
    ({'pid': 'p'}, None),
    ({'offset': '1-0'}, None),
    ({'pid': '', 'offset': '1-0'}, None),
    ({'pid': 'p' * 65, 'offset': '1-0'}, None),
    ({'pid': 'a b', 'offset': '1-0'}, None),
    ({'pid': 'a/b', 'offset': '1-0'}, None),
    ({'pid': 'é', 'offset': '1-0'}, None),
    ({'pid': 'a*', 'offset': '1-0'}, None),
    ({'pid': 5, 'offset': '1-0'}, None),
    ({'pid': 'p', 'offset': 1}, None),
    ({'pid': 'p', 'offset': '1'}, None),
    ({'pid': 'p', 'offset': '1-'}, None),
    ({'pid': 'p', 'offset': '-1'}, None),
    ({'pid': 'p', 'offset': '1-0-0'}, None),
    ({'pid': 'p', 'offset': '1-x'}, None),
    ({'pid': 'p', 'offset': '+'}, None),
    ({'pid': 'p', 'offset': ' 1-0'}, None),
])
def test_restore_request(auth, expected):
    assert restore_request(auth) == expected


@pytest.mark.parametrize('auth', [
    {'pid': 'p\n', 'offset': '1-0'}, {'pid': 'p', 'offset': '1-0\n'},
])
def test_restore_request_rejects_trailing_newline(auth):
    assert restore_request(auth) is None


def test_pid_pattern():
    assert PID_RE.match('a-Z_0')
    assert not PID_RE.match('a.b')


@pytest.mark.parametrize('rooms,opts,expected', [
    (['s1'], BroadcastOptions.of(), True),
    ([], BroadcastOptions.of(), True),
    (['s1', 'r'], BroadcastOptions.of('r'), True),
    (['s1', 'r'], BroadcastOptions.of(['x', 'r']), True),
    (['s1', 'r'], BroadcastOptions.of('x'), False),
    (['s1', 'r'], BroadcastOptions.of(None, 's1'), False),
    (['s1', 'r'], BroadcastOptions.of('r', ['x', 'r']), False),
    (['s1', 3], BroadcastOptions.of(3), True),
    (['s1', 3], BroadcastOptions.of('3'), False),
])
def test_receives(rooms, opts, expected):
    assert receives(rooms, opts) is expected


def entry(entry_id, message):
    fields = encode_entry(message)
    return (entry_id.encode(),
            {k.encode(): v.encode() for k, v in fields.items()})


def broadcast(event, *args, nsp='/chat', rooms=None, except_rooms=None,
              flags=None, request_id=None, uid='other'):
    return Broadcast(uid, nsp, request_id, event, args,
                     BroadcastOptions.of(rooms, except_rooms, flags))


def replay(offset='100-0', end='200-0', max_packets=100, rooms=('s1', 'r1'),
           max_message_size=None):
    return Replay('/chat', rooms, offset, end, json, max_packets,
                  max_message_size)


def test_replay_selects_what_the_session_missed():
    page = [
        entry('100-1', broadcast('all', 1, {'a': None})),
        entry('100-2', broadcast('other-nsp', nsp='/')),
        entry('100-3', broadcast('to-r1', rooms='r1')),
        entry('100-4', broadcast('to-r2', rooms='r2')),
        entry('100-5', broadcast('except-s1', except_rooms='s1')),
        entry('100-6', broadcast('volatile', flags={'volatile': True})),
        entry('100-7', broadcast('with-ack', request_id='req')),
        entry('100-8', SocketsJoin('other', '/chat', BroadcastOptions(),
                                   ('r2',))),
        entry('100-9', DisconnectSockets('other', '/chat')),
        (b'101-0', {b'uid': b'u', b'nsp': b'/chat', b'type': b'3',
                    b'data': b'{"packet":'}),
        (b'101-1', {b'nsp': b'/chat', b'type': b'3'}),
        entry('101-2', broadcast('binary', b'\x00\xff', uid='me')),
        entry('101-3', broadcast('timeout', flags={'timeout': 5})),
    ]
    session = replay()
    assert session.next_start == '100-1'
    assert session.feed(page) is False
    assert session.packets == [
        ['all', 1, {'a': None}, '100-1'],
        ['to-r1', '100-3'],
        ['binary', b'\x00\xff', '101-2'],
        ['timeout', '101-3'],
    ]
    assert session.next_start is None and not session.too_long


def test_replay_skips_entries_over_the_size_limit():
    big = entry('100-1', broadcast('big', 'x' * 500))
    session = replay(max_message_size=200)
    session.feed([big, entry('100-2', broadcast('small'))])
    assert session.packets == [['small', '100-2']]


def test_replay_pages():
    session = replay()
    first = [entry(f'150-{i}', broadcast('e', i)) for i in range(3)]
    assert session.feed(first, page_size=3) is True
    assert session.next_start == '150-3'
    second = [entry('160-0', broadcast('e', 3, rooms='r2')),
              entry('170-9', broadcast('e', 4)),
              entry('180-0', broadcast('e', 5))]
    assert session.feed(second, page_size=3) is True
    assert session.next_start == '180-1'
    assert session.feed([], page_size=3) is False
    assert session.next_start is None
    assert [p[1] for p in session.packets] == [0, 1, 2, 4, 5]
    assert session.packets[-1] == ['e', 5, '180-0']


def test_replay_last_short_page():
    session = replay()
    assert session.feed([entry('150-0', broadcast('e'))], page_size=2) is \
        False
    assert session.next_start is None
    assert session.packets == [['e', '150-0']]


@pytest.mark.parametrize('missed,too_long', [(2, False), (3, True)])
def test_replay_too_long(missed, too_long):
    session = replay(max_packets=2)
    page = [entry(f'150-{i}', broadcast('e')) for i in range(missed)]
    page.append(entry('150-9', broadcast('e', rooms='nobody')))
    more = session.feed(page, page_size=len(page))
    assert session.too_long is too_long
    assert more is not too_long
    if too_long:
        assert session.next_start is None


def test_replay_too_long_over_pages():
    session = replay(max_packets=3)
    assert session.feed([entry('150-0', broadcast('e')),
                         entry('150-1', broadcast('e'))], page_size=2)
    assert not session.feed([entry('150-2', broadcast('e')),
                             entry('150-3', broadcast('e'))], page_size=2)
    assert session.too_long and session.next_start is None


@pytest.mark.parametrize('offset,end,start', [
    ('200-0', '200-0', None),
    ('300-0', '200-0', None),
    ('199-99', '200-0', '199-100'),
    ('100-0', '1000-0', '100-1'),
])
def test_replay_range(offset, end, start):
    session = replay(offset=offset, end=end)
    assert session.next_start == start
    assert session.packets == [] and not session.too_long
