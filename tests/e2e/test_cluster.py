"""Every cross-server operation of python-socketio, end to end: two server
processes on one Redis, real clients on each, in every async mode."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.clients import RecordingClient
from tests.support.processes import ServerProcess
from tests.support.waiting import eventually, settle

pytestmark = pytest.mark.cluster

NAMESPACES = ('/', '/chat', '/other')


@dataclass
class Cluster:
    """Servers A and B; alice and carol on A, bob on B."""
    a: ServerProcess
    b: ServerProcess
    alice: RecordingClient
    bob: RecordingClient
    carol: RecordingClient


@pytest.fixture
def cluster(redis_deployment, server_factory, client_factory, async_mode,
            framework):
    a, b = server_factory(2, redis_url=redis_deployment.url,
                          async_mode=async_mode, framework=framework)
    return Cluster(
        a, b,
        alice=client_factory(a.url, NAMESPACES, name='alice'),
        bob=client_factory(b.url, NAMESPACES, name='bob'),
        carol=client_factory(a.url, NAMESPACES, name='carol'))


@pytest.mark.parametrize('framework', ['socketio', 'flask'])
def test_emit_to_all(cluster):
    c = cluster
    assert c.alice.cmd('emit', event='news', args=['hello', 1]) == \
        {'ok': True}
    c.alice.cmd('emit', event='news', args=[{'deep': [1, 2, None]}])
    c.alice.cmd('emit', event='news', args=[])
    c.alice.cmd('emit', event='news', args=[None])
    settle(c.alice, c.bob, c.carol)
    expected = [('hello', 1), ({'deep': [1, 2, None]},), (), (None,)]
    for client in (c.alice, c.bob, c.carol):
        assert client.events('news') == expected


def test_emit_from_either_side_keeps_each_servers_order(cluster):
    c = cluster
    c.alice.cmd('emit_sequence', event='seq-a', count=200)
    c.bob.cmd('emit_sequence', event='seq-b', count=200)
    for client in (c.alice, c.bob, c.carol):
        for event in ('seq-a', 'seq-b'):
            client.wait_for(200, event=event, timeout=30)
    settle(c.alice, c.bob, c.carol)
    for client in (c.alice, c.bob, c.carol):
        for event in ('seq-a', 'seq-b'):
            numbers = [args[0]['n'] for args in client.events(event)]
            assert numbers == list(range(1, 201))


def test_emit_to_rooms_sid_and_skip_sid(cluster):
    c = cluster
    bob_sid, carol_sid = c.bob.sid(), c.carol.sid()
    c.bob.cmd('enter_room', sid=bob_sid, room='r1')
    c.alice.cmd('enter_room', sid=c.alice.sid(), room='r1')
    c.alice.cmd('enter_room', sid=carol_sid, room='r2')
    c.alice.cmd('emit', event='to', args=['r1'], to='r1')
    c.alice.cmd('emit', event='to', args=['r1+r2'], to=['r1', 'r2'])
    c.alice.cmd('emit', event='to', args=['bob'], to=bob_sid)
    c.bob.cmd('emit', event='to', args=['carol'], to=carol_sid)
    c.alice.cmd('emit', event='to', args=['all-but-bob'], skip_sid=bob_sid)
    c.alice.cmd('emit', event='to', args=['r1-but-bob'], to='r1',
                skip_sid=[bob_sid, 'nobody'])
    c.bob.cmd('emit', event='to', args=['all-but-two'],
              skip_sid=[bob_sid, carol_sid])
    settle(c.alice, c.bob, c.carol)
    # messages from two servers: no order between them, exactly once each
    assert sorted(c.alice.events('to')) == sorted([
        ('r1',), ('r1+r2',), ('all-but-bob',), ('r1-but-bob',),
        ('all-but-two',)])
    assert sorted(c.bob.events('to')) == [('bob',), ('r1',), ('r1+r2',)]
    assert sorted(c.carol.events('to')) == [('all-but-bob',), ('carol',),
                                            ('r1+r2',)]


def test_namespaces_are_kept_apart(cluster):
    c = cluster
    c.alice.cmd('emit', event='where', args=['chat'], namespace='/chat')
    c.bob.cmd('emit', event='where', args=['other'], namespace='/other')
    c.bob.cmd('enter_room', sid=c.bob.sid('/chat'), room='r',
              namespace='/chat')
    c.alice.cmd('emit', event='where', args=['chat room'], to='r',
                namespace='/chat')
    c.alice.cmd('emit', event='where', args=['root room'], to='r')
    for namespace in ('/chat', '/other', '/'):
        settle(c.alice, c.bob, namespace=namespace)
    assert c.bob.events('where', '/chat') == [('chat',), ('chat room',)]
    assert c.alice.events('where', '/chat') == [('chat',)]
    assert c.alice.events('where', '/other') == [('other',)]
    assert c.bob.events('where') == []


def test_binary_anywhere_in_the_arguments(cluster):
    c = cluster
    payload = {'name': 'blob', 'parts': [b'\x00\x01', {'raw': b'\xff' * 300}]}
    c.alice.cmd('emit', event='bin', args=[b'top', payload, 'text'])
    c.bob.cmd('emit', event='bin', args=[b''], namespace='/chat')
    settle(c.alice, c.bob)
    settle(c.alice, c.bob, namespace='/chat')
    assert c.bob.events('bin') == [(b'top', payload, 'text')]
    assert c.alice.events('bin', '/chat') == [(b'',)]


def test_enter_and_leave_room_of_a_sid_on_another_server(cluster):
    c = cluster
    bob_sid = c.bob.sid('/chat')
    c.alice.cmd('enter_room', sid=bob_sid, room='vip', namespace='/chat')
    eventually(lambda: 'vip' in c.bob.cmd('rooms', sid=bob_sid,
                                          namespace='/chat'))
    c.alice.cmd('emit', event='vip', args=[1], to='vip', namespace='/chat')
    c.alice.cmd('leave_room', sid=bob_sid, room='vip', namespace='/chat')
    c.alice.cmd('emit', event='vip', args=[2], to='vip', namespace='/chat')
    settle(c.alice, c.bob, namespace='/chat')
    assert c.bob.events('vip', '/chat') == [(1,)]
    assert sorted(c.bob.cmd('rooms', sid=bob_sid, namespace='/chat')) == \
        [bob_sid]


def test_close_room_empties_it_on_every_server(cluster):
    c = cluster
    c.bob.cmd('enter_room', sid=c.bob.sid(), room='doomed')
    c.alice.cmd('enter_room', sid=c.carol.sid(), room='doomed')
    c.alice.cmd('emit', event='d', args=['before'], to='doomed')
    c.alice.cmd('close_room', room='doomed')
    c.alice.cmd('emit', event='d', args=['after'], to='doomed')
    settle(c.alice, c.bob, c.carol)
    assert c.bob.events('d') == [('before',)]
    assert c.carol.events('d') == [('before',)]
    assert c.bob.cmd('rooms', sid=c.bob.sid()) == [c.bob.sid()]


def test_disconnect_a_sid_on_another_server(cluster):
    c = cluster
    c.alice.cmd('disconnect', sid=c.bob.sid('/chat'), namespace='/chat')
    c.bob.wait_for(1, event='disconnect', namespace='/chat')
    assert c.bob.connected  # the other namespaces stay connected
    assert c.bob.cmd('ping')['name'] == 'B'
    c.bob.cmd('disconnect', sid=c.alice.sid())
    c.alice.wait_for(1, event='disconnect')


@pytest.mark.parametrize('framework', ['socketio', 'flask'])
def test_emit_with_callback_to_a_client_of_another_server(cluster):
    c = cluster
    answer = c.alice.cmd('call', event='ack_me', to=c.bob.sid('/chat'),
                         args=['q', 7], namespace='/chat')
    assert answer == ['ack', 'bob', 'q', 7]
    # a client acks an event it has no handler for with no arguments: the
    # callback gets none, as it would on the client's own server
    assert c.bob.cmd('call', event='unhandled', to=c.carol.sid()) is None
    assert c.alice.cmd('call', event='unhandled', to=c.carol.sid()) is None
    # a local sid takes the local path
    assert c.alice.cmd('call', event='ack_me', to=c.carol.sid(),
                       args=[b'\x01']) == ['ack', 'carol', b'\x01']
    stats = c.alice.cmd('stats')
    assert stats['pending_requests'] == 0


def test_emit_from_a_write_only_emitter(cluster, redis_deployment):
    from sio_redis_streams import RedisStreamsManager

    c = cluster
    c.bob.cmd('enter_room', sid=c.bob.sid('/chat'), room='r',
              namespace='/chat')
    emitter = RedisStreamsManager(redis_deployment.url, write_only=True)
    try:
        emitter.emit('from-cron', {'job': 1}, to='r', namespace='/chat')
        emitter.emit('from-cron', ('a', b'b'), namespace='/chat')
    finally:
        emitter.close()
    assert emitter.stats()['entries_written'] == 2
    settle(c.alice, c.bob, namespace='/chat')
    assert c.bob.events('from-cron', '/chat') == [({'job': 1},),
                                                  ('a', b'b')]
    assert c.alice.events('from-cron', '/chat') == [('a', b'b')]


def test_stats_and_live_servers(cluster):
    c = cluster
    c.alice.cmd('emit', event='x', args=[1])
    settle(c.alice, c.bob)
    a, b = c.alice.cmd('stats'), c.bob.cmd('stats')
    assert a['entries_written'] >= 2 and b['entries_read'] >= 2
    assert a['outbox_depth'] == 0
    assert a['bad_entries'] == b['bad_entries'] == 0
    eventually(lambda: c.alice.cmd('live_servers') == 2, timeout=15)


@pytest.mark.parametrize('framework', ['socketio', 'flask'])
def test_rooms_joined_in_the_connect_handler(cluster, client_factory):
    c = cluster
    dave = client_factory(c.b.url, name='dave', auth={'join': 'vip'})
    c.alice.cmd('emit', event='vip', args=['welcome'], to='vip')
    assert dave.wait_for(1, event='vip') == [('welcome',)]
    assert 'vip' in c.bob.cmd('rooms', sid=dave.sid())
