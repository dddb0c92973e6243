"""Connection state recovery with the official socket.io-client: a client
whose connection drops comes back, on the same server or another one, with
its sid, rooms, data and every broadcast it missed, in order."""
from __future__ import annotations

import re
import time

import pytest

from sio_redis_streams.core import codec
from tests.conftest import _attach_logs as attach_logs
from tests.support.js_client import JsClients
from tests.support.node_server import NodeServerProcess, require_node

pytestmark = [pytest.mark.interop, pytest.mark.cluster]

RECOVERY = {'connection_state_recovery': True,
            'max_disconnection_duration': 30}
NODE_RECOVERY = {'maxDisconnectionDuration': 30_000,
                 'skipMiddlewares': True}


@pytest.fixture
def js(tmp_path):
    require_node()
    clients = JsClients(tmp_path / 'js_client.log')
    yield clients
    clients.stop()


@pytest.fixture
def node_factory(redis_server, tmp_path, request):
    started = []

    def start(name: str, recovery=NODE_RECOVERY) -> NodeServerProcess:
        server = NodeServerProcess(redis_url=redis_server.url, name=name,
                                   recovery=recovery,
                                   workdir=tmp_path / f'node-{name}')
        started.append(server)
        attach_logs(request, server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def sessions(redis_server):
    return redis_server.client().keys('sio:session:*')


def after_last_disconnect(events):
    """The events received since the client came back."""
    last = max(i for i, e in enumerate(events) if e[0] == '$disconnect')
    return [e for e in events[last + 1:] if e[0] != '$connect']


def received_until(js, name, last_event):
    """The events received since the client came back, once
    ``last_event`` is among them."""
    return js.wait_for(lambda: (
        (events := after_last_disconnect(js.events(name)))
        and events[-1][0] == last_event and events))


def assert_offsets(events):
    """Every event carries a stream offset as last argument, increasing."""
    offsets = [e[-1] for e in events]
    assert all(codec.ENTRY_ID_RE.match(o) for o in offsets), offsets
    keys = [codec.entry_id_key(o) for o in offsets]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def primed(js, name, client):
    """Have the client receive one broadcast: a client that received none
    has no offset to recover from."""
    client.cmd('emit', event='before', args=[0])
    js.wait_for(lambda: any(e[0] == 'before' for e in js.events(name)))


def reconnected(js, name, times=2):
    return js.wait_for(lambda: (s := js.state(name))['connects'] >= times
                       and s['connected'] and s)


def away(proxy, redis_server, count=1):
    """Cut the client off (its server sees the transport close) and wait
    until its session is stored."""
    proxy.cut()
    deadline = time.monotonic() + 10
    while len(sessions(redis_server)) < count:
        assert time.monotonic() < deadline, 'no session was stored'
        time.sleep(0.05)


@pytest.mark.parametrize('back_to', ['same server', 'other server'])
def test_recovers_sid_rooms_data_and_missed_broadcasts(
        redis_server, server_factory, client_factory, tcp_proxy_factory, js,
        async_mode, back_to):
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode=async_mode, options=RECOVERY)
    proxy = tcp_proxy_factory(a.port)
    first = js.connect('alice', proxy.http_url, auth={'user': 'alice'})
    sid = first['sid']
    assert first['recovered'] is False
    carol = client_factory(a.url, ('/', '/chat'), name='carol')
    bob = client_factory(b.url, ('/', '/chat'), name='bob')
    carol.cmd('enter_room', sid=sid, room='r1')
    carol.cmd('set_data', sid=sid, data={'user': 'alice', 'level': 3})
    primed(js, 'alice', bob)

    away(proxy, redis_server)
    bob.cmd('emit', event='m1', args=['all'])
    bob.cmd('emit', event='m2', args=['r1', b'\x01\x02'], to='r1')
    bob.cmd('emit', event='m3', args=['r2'], to='r2')
    bob.cmd('emit', event='m4', args=['not r1'], skip_sid='r1')
    bob.cmd('emit', event='m5', args=['chat'], namespace='/chat')
    bob.cmd('emit', event='m6', args=['sid'], to=sid)
    carol.cmd('emit', event='m7', args=['from A'])
    # with recovery on, carol gets m7 from the stream: it is in it now
    carol.wait_for(1, event='m7')
    bob.cmd('emit', event='settled', args=[1])
    carol.wait_for(1, event='settled')
    if back_to == 'other server':
        proxy.retarget(b.port)
    proxy.restore()

    state = reconnected(js, 'alice')
    assert state['sid'] == sid
    assert state['recovered'] is True
    missed = received_until(js, 'alice', 'settled')
    names = [e[0] for e in missed]
    assert sorted(names[:4]) == ['m1', 'm2', 'm6', 'm7']
    assert names[4:] == ['settled']
    assert_offsets(missed)
    m2 = next(e for e in missed if e[0] == 'm2')
    assert m2[1:3] == ['r1', b'\x01\x02']
    [socket] = bob.cmd('fetch_sockets', to=sid)
    assert socket['rooms'] == sorted([sid, 'r1'])
    assert socket['data'] == {'user': 'alice', 'level': 3}
    server = b if back_to == 'other server' else a
    client = bob if back_to == 'other server' else carol
    assert client.cmd('connects')[-1] == {'sid': sid, 'namespace': '/',
                                          'recovered': True}
    # the session was taken: it cannot be recovered twice
    assert sessions(redis_server) == []
    # and new broadcasts reach it once, with their offsets
    bob.cmd('emit', event='after', args=[1])
    js.wait_for(lambda: any(e[0] == 'after'
                            for e in js.events('alice')))
    after = [e for e in js.events('alice') if e[0] == 'after']
    assert len(after) == 1 and codec.ENTRY_ID_RE.match(after[0][-1])
    assert server.is_running


@pytest.mark.parametrize('framework', ['flask'])
def test_recovery_with_flask_socketio(
        redis_server, server_factory, client_factory, tcp_proxy_factory, js,
        framework):
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode='gevent', framework=framework,
                          options=RECOVERY)
    proxy = tcp_proxy_factory(a.port)
    sid = js.connect('alice', proxy.http_url)['sid']
    bob = client_factory(b.url, name='bob')
    primed(js, 'alice', bob)
    away(proxy, redis_server)
    bob.cmd('emit', event='missed', args=[1])
    proxy.retarget(b.port)
    proxy.restore()
    state = reconnected(js, 'alice')
    assert (state['sid'], state['recovered']) == (sid, True)
    assert [e[:2] for e in received_until(js, 'alice', 'missed')] == \
        [['missed', 1]]


@pytest.mark.parametrize('stored_by', ['python', 'node'])
def test_sessions_move_between_python_and_node_servers(
        redis_server, server_factory, client_factory, node_factory,
        tcp_proxy_factory, js, stored_by):
    [python] = server_factory(1, redis_url=redis_server.url,
                              async_mode='gevent', options=RECOVERY,
                              names=['py'])
    node = node_factory('node')
    first, then = (python, node) if stored_by == 'python' else \
        (node, python)
    proxy = tcp_proxy_factory(first.port)
    sid = js.connect('alice', proxy.http_url)['sid']
    observer = client_factory(python.url, name='observer')
    observer.cmd('enter_room', sid=sid, room='r1')
    observer.cmd('fetched_socket', sid=sid, action='join', args=['r2'])
    if stored_by == 'python':
        observer.cmd('set_data', sid=sid, data={'from': 'python'})
    primed(js, 'alice', observer)
    away(proxy, redis_server)
    observer.cmd('emit', event='m1', args=['r2'], to='r2')
    observer.cmd('emit', event='m2', args=['r3'], to='r3')
    observer.cmd('emit', event='m3', args=['all'])
    proxy.retarget(then.port)
    proxy.restore()
    state = reconnected(js, 'alice')
    assert (state['sid'], state['recovered']) == (sid, True)
    missed = received_until(js, 'alice', 'm3')
    assert [e[:2] for e in missed] == [['m1', 'r2'], ['m3', 'all']]
    assert_offsets(missed)
    [socket] = observer.cmd('fetch_sockets', to=sid)
    assert socket['rooms'] == sorted([sid, 'r1', 'r2'])
    if stored_by == 'python':
        assert socket['data'] == {'from': 'python'}


def test_what_is_not_recovered_gets_a_new_session(
        redis_server, server_factory, client_factory, tcp_proxy_factory,
        js):
    [a] = server_factory(1, redis_url=redis_server.url,
                         async_mode='threading', options=RECOVERY)
    watcher = client_factory(a.url, name='watcher')
    # an unknown pid, and a malformed one
    for name, auth in (('unknown', {'pid': 'nope', 'offset': '1-0'}),
                       ('bad-pid', {'pid': '../x y', 'offset': '1-0'})):
        state = js.connect(name, a.url, auth=auth)
        assert state['recovered'] is False
    # a malformed offset: not recovered, and the session is left untouched
    proxy = tcp_proxy_factory(a.port)
    sid = js.connect('alice', proxy.http_url)['sid']
    primed(js, 'alice', watcher)
    away(proxy, redis_server)
    [key] = sessions(redis_server)
    pid = key.decode()[len('sio:session:'):]
    state = js.connect('thief', a.url, auth={'pid': pid, 'offset': 'x-1'})
    assert state['recovered'] is False and state['sid'] != sid
    assert sessions(redis_server) == [key]
    proxy.restore()
    assert reconnected(js, 'alice')['sid'] == sid
    assert all(not c['recovered'] or c['sid'] == sid
               for c in watcher.cmd('connects'))


@pytest.mark.parametrize('case', ['trimmed', 'expired', 'over the cap',
                                  'at the cap'])
def test_fresh_session_instead_of_a_partial_one(
        redis_factory, server_factory, client_factory, tcp_proxy_factory,
        js, case):
    redis_server = redis_factory(extra_args=['--stream-node-max-entries',
                                             '4'])
    options = dict(RECOVERY, maxlen=8, recovery_max_packets=5)
    if case == 'expired':
        options['max_disconnection_duration'] = 1
    [a] = server_factory(1, redis_url=redis_server.url,
                         async_mode='threading', options=options)
    bob = client_factory(a.url, name='bob')
    proxy = tcp_proxy_factory(a.port)
    sid = js.connect('alice', proxy.http_url)['sid']
    primed(js, 'alice', bob)
    away(proxy, redis_server)
    missed = {'trimmed': 30, 'expired': 1, 'over the cap': 6,
              'at the cap': 5}[case]
    for n in range(missed):
        bob.cmd('emit', event='m', args=[n])
    if case == 'expired':
        time.sleep(1.5)
    # bob alone gets this marker: it is not one of the packets alice missed
    bob.cmd('emit', event='settled', args=[1], to=bob.sid())
    bob.wait_for(1, event='settled')
    proxy.restore()
    state = reconnected(js, 'alice')
    recovered = case == 'at the cap'
    assert state['recovered'] is recovered
    assert (state['sid'] == sid) is recovered
    if recovered:
        js.wait_for(lambda: len([e for e in js.events('alice')
                                 if e[0] == 'm']) == 5)
    got = [e[1] for e in after_last_disconnect(js.events('alice'))
           if e[0] == 'm']
    assert got == (list(range(5)) if recovered else [])


def test_python_clients_see_the_offset_too(redis_server, server_factory,
                                           client_factory):
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode='threading', options=RECOVERY)
    alice = client_factory(a.url, name='alice')
    bob = client_factory(b.url, name='bob')
    alice.cmd('emit', event='news', args=[1])
    for client in (alice, bob):
        [(value, offset)] = client.wait_for(1, event='news')
        assert value == 1 and re.match(r'^\d+-\d+$', offset)
    # an emit with a callback is not stored, and carries no offset
    assert alice.cmd('call', event='ack_me', to=bob.sid(), args=[2]) == \
        ['ack', 'bob', 2]
