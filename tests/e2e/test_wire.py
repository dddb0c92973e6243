"""The stream and PUB/SUB traffic of real servers, byte for byte: what our
servers write is what a Node 0.3.x server writes, entries written the Node
way are acted on, and malformed ones are skipped without harm."""
from __future__ import annotations

import base64
import json

import msgpack
import pytest

from tests.support.waiting import eventually, settle
from tests.e2e.test_cluster import NAMESPACES
from tests.unit.core.test_codec import CAPTURED_ENTRIES

pytestmark = pytest.mark.cluster

NODE_UID = 'aefd723061e80a3c'


@pytest.fixture
def two_servers(redis_server, server_factory, client_factory, async_mode):
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode=async_mode,
                          options={'max_message_size': 64 * 1024})
    alice = client_factory(a.url, NAMESPACES, name='alice')
    bob = client_factory(b.url, NAMESPACES, name='bob')
    return a, b, alice, bob


def own_entries(raw, count):
    entries = raw.xrevrange('socket.io', '+', '-', count=count)
    return [{k.decode(): v.decode() for k, v in fields.items()}
            for _, fields in reversed(entries)]


def test_entries_are_written_exactly_as_node_writes_them(
        two_servers, redis_server):
    _, _, alice, bob = two_servers
    bob_sid = bob.sid('/chat')
    alice.cmd('emit', event='hello', args=[1, 'two', {'three': 3}])
    alice.cmd('emit', event='bin', args=[b'\x01\x02\x03'], to='room1',
              skip_sid='x')
    alice.cmd('enter_room', sid=bob_sid, room='room2', namespace='/chat')
    alice.cmd('disconnect', sid=bob_sid, namespace='/chat')
    bob.wait_for(1, event='disconnect', namespace='/chat')
    raw = redis_server.client()
    hello, binary, join, disconnect = own_entries(raw, 4)
    uid = hello['uid']
    assert len(uid) == 16 and int(uid, 16) >= 0
    assert hello == {'uid': uid, 'nsp': '/', 'type': '3', 'data': (
        '{"packet":{"type":2,"data":["hello",1,"two",{"three":3}]},'
        '"opts":{"rooms":[],"except":[],"flags":{}}}')}
    # byte for byte the base64 msgpack of the capture in PROTOCOL.md
    assert binary == {'uid': uid, 'nsp': '/', 'type': '3',
                      'data': CAPTURED_ENTRIES[1][0][b'data'].decode()}
    assert join == {'uid': uid, 'nsp': '/chat', 'type': '4', 'data': (
        '{"opts":{"rooms":["%s"],"except":[],"flags":{}},'
        '"rooms":["room2"]}' % bob_sid)}
    assert disconnect == {'uid': uid, 'nsp': '/chat', 'type': '6', 'data': (
        '{"opts":{"rooms":["%s"],"except":[],"flags":{}},'
        '"close":false}' % bob_sid)}


def test_entries_written_the_node_way_are_acted_on(two_servers,
                                                   redis_server):
    _, _, alice, bob = two_servers
    raw = redis_server.client()
    hello, binary, join, disconnect = [dict(fields, uid=NODE_UID.encode())
                                       for fields, _ in CAPTURED_ENTRIES]
    raw.xadd('socket.io', hello)
    # the binary capture goes to room1 except room x
    bob.cmd('enter_room', sid=bob.sid(), room='room1')
    raw.xadd('socket.io', binary)
    raw.xadd('socket.io', join)
    settle(alice, bob)
    for client in (alice, bob):
        assert client.events('hello') == [(1, 'two', {'three': 3})]
        assert 'room2' in client.cmd('rooms', sid=client.sid())
    assert bob.events('bin') == [(b'\x01\x02\x03',)]
    assert alice.events('bin') == []
    raw.xadd('socket.io', disconnect)
    for client in (alice, bob):
        client.wait_for(1, event='disconnect')


BAD_ENTRIES = [
    {b'uid': NODE_UID.encode(), b'type': b'3', b'data': b'{}'},  # no nsp
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'3',
     b'data': b'{"packet":'},
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'3',
     b'data': b'%%% not base64'},
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'3',
     b'data': base64.b64encode(b'\xc1\xc1')},
    {b'uid': b'\xff\xfe\xfd', b'nsp': b'/', b'type': b'3', b'data': b'{}'},
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'77',
     b'data': b'{}'},
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'x', b'data': b'{}'},
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'3',
     b'data': b'{"packet":{"type":2,"data":"notalist"},"opts":{}}'},
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'4',
     b'data': b'{"opts":{"rooms":[{}]},"rooms":["r"]}'},
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'3',
     b'data': json.dumps({'packet': {'type': 2, 'data': ['big', 'x' * 70000]},
                          'opts': {}}).encode()},
    {b'uid': NODE_UID.encode(), b'nsp': b'/', b'type': b'3',
     b'data': b'{' + b'[' * 50000 + b'}'},
    {b'something': b'else entirely'},
]

BAD_PAYLOADS = [
    b'\xc1',
    b'not msgpack at all',
    msgpack.packb([1, 2, 3]),
    msgpack.packb({'type': 3, 'uid': NODE_UID, 'nsp': '/', 'data': 5}),
    msgpack.packb({'type': 'x', 'uid': NODE_UID, 'nsp': '/'}),
    msgpack.packb({'type': 99, 'uid': NODE_UID, 'nsp': '/'}),
    msgpack.packb({'type': 12, 'uid': NODE_UID, 'nsp': '/',
                   'data': {'requestId': 'unknown-request', 'packet': 1}}),
]


def test_malformed_input_is_skipped_and_the_loop_goes_on(two_servers,
                                                         redis_server):
    a, b, alice, bob = two_servers
    raw = redis_server.client()
    alice.cmd('emit', event='before', args=[1])
    settle(alice, bob)
    for fields in BAD_ENTRIES:
        raw.xadd('socket.io', fields)
    for payload in BAD_PAYLOADS:
        raw.publish('socket.io#/#', payload)
    alice.cmd('emit', event='after', args=[2])
    bob.cmd('emit', event='after', args=[3])
    settle(alice, bob)
    for client in (alice, bob):
        assert client.events('before') == [(1,)]
        assert sorted(client.events('after')) == [(2,), (3,)]
        assert client.events('big') == []
    # the last payload is a valid answer to a request that does not exist
    for client in (alice, bob):
        eventually(lambda: client.cmd('stats')['bad_messages'] ==
                   len(BAD_PAYLOADS) - 1)
        stats = client.cmd('stats')
        assert stats['bad_entries'] == len(BAD_ENTRIES)
        assert stats['handler_errors'] == 0
    assert 'skipping malformed entry' in b.logs()
    assert 'over the limit of 65536' in b.logs()
