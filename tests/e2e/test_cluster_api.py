"""Cluster-wide socket management, server-side events and broadcasts with
acknowledgements, between Python servers, in every async mode."""
from __future__ import annotations

import signal

import pytest

from tests.support.waiting import eventually, settle
from tests.e2e.test_cluster import Cluster

pytestmark = pytest.mark.cluster

NAMESPACES = ('/', '/chat')


@pytest.fixture
def cluster(redis_deployment, server_factory, client_factory, async_mode):
    a, b = server_factory(2, redis_url=redis_deployment.url,
                          async_mode=async_mode,
                          options={'request_timeout': 3})
    cluster = Cluster(
        a, b,
        alice=client_factory(a.url, NAMESPACES, name='alice',
                             auth={'token': 'a-1'}),
        bob=client_factory(b.url, NAMESPACES, name='bob',
                           auth={'token': 'b-2'}),
        carol=client_factory(a.url, NAMESPACES, name='carol'))
    # a server's tasks start with its first client: wait until both
    # subscribed (on a Redis Cluster, that takes a few round trips more),
    # or a request could count one server too few
    for client in (cluster.alice, cluster.bob):
        eventually(lambda: client.cmd('server_count') == 2,
                   what='both servers subscribed')
    return cluster


def ids(sockets):
    return sorted(s['id'] for s in sockets)


def test_fetch_sockets_sees_the_whole_cluster(cluster):
    c = cluster
    c.bob.cmd('set_data', sid=c.bob.sid(), data={'user': 'bob'})
    c.bob.cmd('enter_room', sid=c.bob.sid(), room='r1')
    c.alice.cmd('enter_room', sid=c.carol.sid(), room='r1')
    everyone = c.alice.cmd('fetch_sockets')
    assert ids(everyone) == sorted([c.alice.sid(), c.bob.sid(),
                                    c.carol.sid()])
    bob = next(s for s in everyone if s['id'] == c.bob.sid())
    assert bob['rooms'] == sorted([c.bob.sid(), 'r1'])
    assert bob['data'] == {'user': 'bob'}
    assert bob['handshake']['auth'] == {'token': 'b-2'}
    assert bob['handshake']['address'] == '127.0.0.1'
    assert bob['handshake']['query']['transport'] == 'websocket'
    assert bob['handshake']['url'].startswith('/socket.io/?')
    alice = next(s for s in everyone if s['id'] == c.alice.sid())
    assert alice['server'] != bob['server']
    assert ids(c.bob.cmd('fetch_sockets', to='r1')) == sorted(
        [c.bob.sid(), c.carol.sid()])
    assert ids(c.bob.cmd('fetch_sockets', to='r1', skip=c.bob.sid())) == \
        [c.carol.sid()]
    assert ids(c.alice.cmd('fetch_sockets', namespace='/chat',
                           to=[c.bob.sid('/chat'), 'nobody'])) == \
        [c.bob.sid('/chat')]
    assert c.alice.cmd('stats')['pending_requests'] == 0


def test_fetched_sockets_can_be_acted_on(cluster):
    c = cluster
    bob_sid = c.bob.sid('/chat')
    c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                action='join', args=['vip'])
    eventually(lambda: 'vip' in c.bob.cmd('rooms', sid=bob_sid,
                                          namespace='/chat'))
    c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                action='emit', args=['hello', 1, b'\x02'])
    assert c.bob.wait_for(1, event='hello', namespace='/chat') == \
        [(1, b'\x02')]
    answer = c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                         action='call', args=['ack_me', 'x', b'\x03'])
    assert answer['result'] == ['ack', 'bob', 'x', b'\x03']
    c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                action='leave', args=['vip'])
    eventually(lambda: 'vip' not in c.bob.cmd('rooms', sid=bob_sid,
                                              namespace='/chat'))
    c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                action='disconnect')
    c.bob.wait_for(1, event='disconnect', namespace='/chat')


def test_sockets_join_leave_and_disconnect_sockets(cluster):
    c = cluster
    c.alice.cmd('sockets_join', rooms=['news', 'sport'], skip=c.carol.sid())
    eventually(lambda: {'news', 'sport'} <= set(
        c.bob.cmd('rooms', sid=c.bob.sid())))
    assert set(c.alice.cmd('rooms', sid=c.alice.sid())) >= {'news', 'sport'}
    assert 'news' not in c.alice.cmd('rooms', sid=c.carol.sid())
    c.bob.cmd('sockets_leave', rooms='sport', to='news')
    eventually(lambda: 'sport' not in c.alice.cmd('rooms',
                                                  sid=c.alice.sid()))
    c.bob.cmd('disconnect_sockets', to='news', namespace='/')
    for client in (c.alice, c.bob):
        client.wait_for(1, event='disconnect')
    assert c.carol.events('disconnect') == []
    assert c.carol.cmd('ping')['name'] == 'A'
    # close=True closes the whole connection (every namespace)
    c.carol.cmd('disconnect_sockets', namespace='/chat',
                to=c.bob.sid('/chat'), close=True)
    c.bob.wait_for(1, event='disconnect', namespace='/chat')


def test_server_side_emit_and_call(cluster):
    c = cluster
    c.alice.cmd('server_side_emit', event='announce', args=['hi', {'n': 1}])
    eventually(lambda: c.bob.cmd('server_events') == [
        {'event': 'announce', 'args': ['hi', {'n': 1}]}])
    assert c.alice.cmd('server_events') == []  # not to itself
    assert c.alice.cmd('server_side_call', event='ping-servers',
                       args=[b'\x01']) == {'responses': ['pong-from-B']}
    assert c.bob.cmd('server_side_call', event='ping-servers',
                     namespace='/chat') == {'responses': ['pong-from-A']}
    # no server handles this event: the call times out, and says so
    answer = c.bob.cmd('server_side_call', event='nobody-listens',
                       timeout=1)
    assert answer['responses'] == [] and answer['expected'] == 1
    assert 'timed out' in answer['error']
    assert c.bob.cmd('stats')['pending_requests'] == 0


def test_emit_with_ack_collects_every_clients_answer(cluster):
    c = cluster
    assert sorted(c.alice.cmd('emit_with_ack', event='whoami')[
        'responses']) == ['alice', 'bob', 'carol']
    c.bob.cmd('enter_room', sid=c.bob.sid('/chat'), room='r',
              namespace='/chat')
    assert c.alice.cmd('emit_with_ack', event='whoami', to='r',
                       namespace='/chat') == {'responses': ['bob']}
    assert sorted(c.bob.cmd('emit_with_ack', event='whoami',
                            skip_sid=c.bob.sid())['responses']) == \
        ['alice', 'carol']
    # several answer arguments come back together
    assert c.bob.cmd('emit_with_ack', event='ack_me', args=[7],
                     to=c.alice.sid()) == {'responses': [['ack', 'alice',
                                                          7]]}
    assert c.alice.cmd('emit_with_ack', event='whoami', to='empty-room') \
        == {'responses': []}


def test_emit_with_ack_times_out_with_the_answers_that_arrived(cluster):
    c = cluster
    c.b.send_signal(signal.SIGSTOP)
    try:
        answer = c.alice.cmd('emit_with_ack', event='whoami', timeout=1)
    finally:
        c.b.send_signal(signal.SIGCONT)
    assert sorted(answer['responses']) == ['alice', 'carol']
    assert 'timed out' in answer['error']
    assert c.alice.cmd('stats')['pending_requests'] == 0


def test_server_count(cluster):
    c = cluster
    assert c.alice.cmd('server_count') == 2
    assert c.alice.cmd('server_count', namespace='/chat') == 2
    c.b.stop()
    eventually(lambda: c.alice.cmd('server_count') == 1)
    assert ids(c.alice.cmd('fetch_sockets')) == sorted(
        [c.alice.sid(), c.carol.sid()])


@pytest.mark.parametrize('redis_deployment', ['redis'], indirect=True)
def test_requests_are_answered_again_soon_after_a_redis_restart(
        cluster, redis_server):
    c = cluster
    redis_server.kill()
    redis_server.restart()

    def answered():
        try:
            sockets = c.alice.cmd('fetch_sockets', timeout=1, wait=5)
        except Exception:
            return False
        return isinstance(sockets, list) and len(sockets) == 3

    eventually(answered, timeout=15)
    assert c.bob.cmd('server_side_call', event='ping-servers') == {
        'responses': ['pong-from-A']}
    c.alice.cmd('emit', event='after', args=[1])
    settle(c.alice, c.bob)
    assert c.bob.events('after') == [(1,)]
