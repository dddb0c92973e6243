"""Python and Node.js servers in one cluster: a Python server running
RedisStreamsManager and a Node server running the official
``@socket.io/redis-streams-adapter`` 0.3.1 share one Redis, with
python-socketio clients on each, and every cluster operation is checked in
both directions (started on the Python server and carried out on the Node
side, and the reverse), in every async mode of the Python server.

Conventions of the Node side (tests/node/node_server.mjs) that the
expected values follow:

* a broadcast acknowledgement crosses servers as a single argument
  (BROADCAST_ACK has one ``packet``), and Node's ``call``/``emit_with_ack``
  keep only the first argument of each answer even for local clients;
  Python's return the whole answer (one argument as is, several as a list);
* Node's ``server_side_call`` waits a fixed 5 s for missing answers (the
  adapter has no timeout option), so its ``timeout`` only bounds the command;
* a Node socket connected with an ``auth`` payload has it in
  ``socket.data.auth``.
"""
from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import pytest

from tests.conftest import _attach_logs
from tests.support.clients import RecordingClient
from tests.support.node_server import NodeServerProcess, require_node
from tests.support.processes import ServerProcess
from tests.support.redis_server import RedisServer
from tests.support.waiting import eventually, settle

pytestmark = [pytest.mark.interop, pytest.mark.cluster]

NAMESPACES = ('/', '/chat')
PY = 'py'  # name of the Python server (its pong is 'pong-from-py')
NODE = 'node'  # name of the Node server
# Counters of the Python server that say a message of the cluster could
# not be understood or acted on, or was lost.
PYTHON_ERROR_COUNTERS = ('bad_entries', 'bad_messages', 'handler_errors',
                         'outbox_dropped', 'write_errors', 'gaps')
# Lines of the Python server's log (level WARNING) that tell of a failure.
PYTHON_ERROR_MARKERS = ('Traceback', ' ERROR ', ' CRITICAL ')
# Lines node_server.mjs writes to stderr when something went wrong.
NODE_ERROR_MARKERS = ('unhandled rejection', ' failed:', 'redis client error')


# -- Node servers -------------------------------------------------------------

NodeFactory = Callable[..., NodeServerProcess]


def _node_errors(server: NodeServerProcess) -> list[str]:
    """The error lines a Node server wrote to its stderr so far."""
    if not server.stderr_path.exists():
        return []
    return [line for line in
            server.stderr_path.read_text(errors='replace').splitlines()
            if any(marker in line for marker in NODE_ERROR_MARKERS)]


@pytest.fixture
def node_factory(request: pytest.FixtureRequest,
                 tmp_path: Path) -> Iterator[NodeFactory]:
    """Launch Node servers (the caller waits for them: ``wait_ready``).

    Their logs are added to the report of a failed test, like those of the
    Python servers. At teardown every one must still be running, must not
    have logged errors, and must stop cleanly on SIGTERM (status 0);
    otherwise the test fails there, so that a Node-side failure cannot go
    unnoticed.
    """
    started: list[NodeServerProcess] = []

    def launch(*, redis_url: str, name: str = NODE,
               options: dict[str, Any] | None = None,
               recovery: dict[str, Any] | None = None) -> NodeServerProcess:
        server = NodeServerProcess(redis_url=redis_url, name=name,
                                   options=options, recovery=recovery,
                                   workdir=tmp_path / 'node')
        started.append(server)
        _attach_logs(request, server)
        server.launch()
        return server

    yield launch
    problems = []
    for server in started:
        running = server.is_running
        errors = _node_errors(server)
        status = server.stop()
        if not running:
            problems.append(f'Node server {server.name} died during the test '
                            f'(exit status {status})')
        elif status != 0:
            problems.append(f'Node server {server.name} did not stop '
                            f'cleanly (exit status {status})')
        if errors:
            problems.append(f'Node server {server.name} logged errors:\n  '
                            + '\n  '.join(errors[:20]))
    if problems:
        pytest.fail('\n'.join(problems) + '\n(logs in the report sections)',
                    pytrace=False)


# -- the mixed cluster --------------------------------------------------------

class Redis(Protocol):
    """Where the servers meet: a RedisServer, or a Redis Cluster."""

    @property
    def url(self) -> str: ...

    def client(self) -> Any: ...


@dataclass
class Mixed:
    """Python server ``py`` (alice, carol) and Node server ``node`` (bob,
    dave) on one Redis (or one Redis Cluster: ``mixed_redis``); every client
    is on ``/`` and ``/chat``; alice and bob connected with an ``auth``
    payload."""
    redis: Redis
    py: ServerProcess
    node: NodeServerProcess
    alice: RecordingClient
    carol: RecordingClient
    bob: RecordingClient
    dave: RecordingClient
    connect: Callable[..., RecordingClient]

    @property
    def clients(self) -> tuple[RecordingClient, ...]:
        return (self.alice, self.carol, self.bob, self.dave)

    def on_py(self, name: str) -> RecordingClient:
        """A new client of the Python server (on ``/`` and ``/chat``)."""
        return self.connect(self.py.url, NAMESPACES, name=name)

    def on_node(self, name: str) -> RecordingClient:
        """A new client of the Node server (on ``/`` and ``/chat``)."""
        return self.connect(self.node.url, NAMESPACES, name=name)

    def wait_until_joined(self, via_py: RecordingClient,
                          via_node: RecordingClient, count: int = 2) -> None:
        """Wait until both servers count ``count`` servers in every
        namespace (the Python server subscribes in the background once its
        first client connects)."""
        def joined() -> bool:
            return all(client.cmd('server_count', namespace=namespace)
                       == count
                       for client in (via_py, via_node)
                       for namespace in NAMESPACES)
        eventually(joined, timeout=15)

    def check_python_side(self) -> None:
        """The Python server understood and carried out every message of
        the Node server: no malformed entry or payload, no failed handler,
        nothing lost, no request left waiting, no error logged."""
        probe = self.alice

        def settled() -> dict[str, int]:
            stats = probe.cmd('stats')
            return stats if stats['pending_requests'] == 0 else {}

        try:
            eventually(settled, timeout=10)
        except AssertionError:
            pytest.fail(f'requests still pending on {PY}: '
                        f'{probe.cmd("stats")}')
        stats = probe.cmd('stats')
        assert {name: stats[name] for name in PYTHON_ERROR_COUNTERS} == \
            dict.fromkeys(PYTHON_ERROR_COUNTERS, 0), stats
        stderr = self.py.stderr_path.read_text(errors='replace')
        errors = [line for line in stderr.splitlines()
                  if any(marker in line for marker in PYTHON_ERROR_MARKERS)]
        assert errors == [], f'{PY} logged errors (logs below)'


MixedFactory = Callable[..., Mixed]


@pytest.fixture
def mixed_redis(redis_server: RedisServer) -> Redis:
    """The Redis of the mixed cluster (test_cluster_interop.py overrides it
    with a Redis Cluster)."""
    return redis_server


@pytest.fixture
def mixed(mixed_redis, server_factory, node_factory, client_factory,
          async_mode) -> Iterator[MixedFactory]:
    """Start the mixed cluster: ``mixed(py_options=..., node_options=...)``
    (the manager's and the adapter's options). Lazy, so that a test calls
    ``require_node()`` before any Node server starts."""
    clients: list[RecordingClient] = []

    def connect(*args: Any, **kwargs: Any) -> RecordingClient:
        client = client_factory(*args, **kwargs)
        clients.append(client)
        return client

    def start(py_options: dict[str, Any] | None = None,
              node_options: dict[str, Any] | None = None) -> Mixed:
        # both servers boot in parallel
        node = node_factory(redis_url=mixed_redis.url, options=node_options)
        [py] = server_factory(redis_url=mixed_redis.url,
                              async_mode=async_mode, names=[PY],
                              options=py_options)
        node.wait_ready()
        c = Mixed(
            mixed_redis, py, node,
            alice=connect(py.url, NAMESPACES, name='alice',
                          auth={'token': 'alice-token'}),
            carol=connect(py.url, NAMESPACES, name='carol'),
            bob=connect(node.url, NAMESPACES, name='bob',
                        auth={'token': 'bob-token'}),
            dave=connect(node.url, NAMESPACES, name='dave'),
            connect=connect)
        c.wait_until_joined(c.alice, c.bob)
        return c

    yield start
    # Closing a client of a threading-mode server takes a few seconds (the
    # WebSocket close handshake times out): close them all at once rather
    # than one after the other in client_factory's teardown.
    closers = [threading.Thread(target=client.close) for client in clients]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join()


def rooms_of(client: RecordingClient, namespace: str = '/') -> list[str]:
    """The rooms of ``client``'s socket, as its own server reports them."""
    return sorted(client.cmd('rooms', sid=client.sid(namespace),
                             namespace=namespace))


def ids(sockets: list[dict[str, Any]]) -> list[str]:
    return [s['id'] for s in sockets]


def by_origin(events: list[tuple], origin: str) -> list[tuple]:
    return [args for args in events if args[0] == origin]


# -- broadcasts ---------------------------------------------------------------

def test_broadcast_to_all_rooms_sids_and_except_both_ways(mixed):
    require_node()
    c = mixed()
    alice, carol, bob, dave = c.clients
    alice.cmd('enter_room', sid=alice.sid(), room='r1')
    carol.cmd('enter_room', sid=carol.sid(), room='r2')
    bob.cmd('enter_room', sid=bob.sid(), room='r1')
    dave.cmd('enter_room', sid=dave.sid(), room='r2')

    # the same broadcasts from the Python server, then from the Node server
    for origin, sender in ((PY, alice), (NODE, bob)):
        sender.cmd('emit', event='to', args=[origin, 'all'])
        sender.cmd('emit', event='to', args=[origin, 'r1'], to='r1')
        sender.cmd('emit', event='to', args=[origin, 'r1+r2-bob'],
                   to=['r1', 'r2'], skip_sid=bob.sid())
        sender.cmd('emit', event='to', args=[origin, 'all-carol-dave'],
                   skip_sid=[carol.sid(), dave.sid()])
        sender.cmd('emit', event='to', args=[origin, 'dave'], to=dave.sid())
        sender.cmd('emit', event='to', args=[origin, 'carol'],
                   to=carol.sid())
        sender.cmd('emit', event='to', args=[origin, 'nobody'],
                   to='empty-room')
    # Node can also except a whole room; Python servers must honour it
    bob.cmd('emit', event='to', args=[NODE, 'all-r2'], skip_sid='r2')
    settle(*c.clients)

    expected = {
        alice: ['all', 'r1', 'r1+r2-bob', 'all-carol-dave'],
        bob: ['all', 'r1', 'all-carol-dave'],
        carol: ['all', 'r1+r2-bob', 'carol'],
        dave: ['all', 'r1+r2-bob', 'dave'],
    }
    for client, targets in expected.items():
        received = client.events('to')
        # each broadcast reaches exactly the sockets it addresses, once (the
        # python-socketio client handles each message in its own thread, so
        # the order of arrival is not compared)
        assert sorted(by_origin(received, PY)) == \
            sorted((PY, t) for t in targets), client.name
        node_targets = targets + (['all-r2'] if client in (alice, bob)
                                  else [])
        assert sorted(by_origin(received, NODE)) == \
            sorted((NODE, t) for t in node_targets), client.name
        assert len(received) == len(targets) + len(node_targets)
    c.check_python_side()


def test_bursts_from_both_servers_arrive_complete_and_in_order(mixed):
    """Both servers emit a burst at once: their entries interleave in the
    stream, each server's in its own order, and every client gets every
    message exactly once (over several XREAD batches of each reader)."""
    require_node()
    c = mixed()
    count = 300
    c.alice.cmd('emit_sequence', event='seq', count=count,
                fields={'from': PY})
    c.bob.cmd('emit_sequence', event='seq', count=count,
              fields={'from': NODE})
    for client in c.clients:
        client.wait_for(2 * count, event='seq', timeout=30)
    settle(*c.clients)
    for client in c.clients:
        # (the python-socketio client handles each message in its own
        # thread: the order of arrival is not that of the stream)
        received = [args[0] for args in client.events('seq')]
        for origin in (PY, NODE):
            assert sorted(m['n'] for m in received if m['from'] == origin) \
                == list(range(1, count + 1)), (client.name, origin)
        assert len(received) == 2 * count, client.name

    raw = c.redis.client()
    try:
        entries = raw.xrange('socket.io')
    finally:
        raw.close()
    sequences: dict[str, list[int]] = {PY: [], NODE: []}
    writers: dict[str, set[bytes]] = {PY: set(), NODE: set()}
    for _, fields in entries:
        if fields[b'type'] != b'3' or not fields[b'data'].startswith(b'{'):
            continue  # only text broadcasts are of interest here
        packet = json.loads(fields[b'data'])['packet']['data']
        if packet[0] == 'seq':
            sequences[packet[1]['from']].append(packet[1]['n'])
            writers[packet[1]['from']].add(fields[b'uid'])
    for origin in (PY, NODE):
        assert sequences[origin] == list(range(1, count + 1)), origin
    assert len(writers[PY]) == len(writers[NODE]) == 1
    assert writers[PY] != writers[NODE]
    c.check_python_side()


def test_binary_and_namespaces_both_ways(mixed):
    require_node()
    c = mixed()
    alice, carol, bob, dave = c.clients
    payload = {'name': 'blob', 'parts': [b'\x00\x01', {'raw': b'\xff' * 300}]}
    big = bytes(range(256)) * 1024  # 256 KiB
    for origin, sender in ((PY, alice), (NODE, bob)):
        sender.cmd('emit', event='bin', args=[origin, b'\x00top', payload])
        sender.cmd('emit', event='big', args=[origin, big])
    alice.cmd('emit', event='bin', args=[b''], to=dave.sid('/chat'),
              namespace='/chat')
    bob.cmd('emit', event='bin', args=[b'\x80'], to=carol.sid('/chat'),
            namespace='/chat')

    # namespaces: the same room name in '/chat' only
    alice.cmd('enter_room', sid=alice.sid('/chat'), room='r',
              namespace='/chat')
    bob.cmd('enter_room', sid=bob.sid('/chat'), room='r', namespace='/chat')
    for origin, sender in ((PY, alice), (NODE, bob)):
        sender.cmd('emit', event='where', args=[origin, 'chat'],
                   namespace='/chat')
        sender.cmd('emit', event='where', args=[origin, 'chat room'],
                   to='r', namespace='/chat')
        sender.cmd('emit', event='where', args=[origin, 'root room'],
                   to='r')
    for namespace in NAMESPACES:
        settle(*c.clients, namespace=namespace)

    for client in c.clients:
        for origin in (PY, NODE):
            assert by_origin(client.events('bin'), origin) == [
                (origin, b'\x00top', payload)], client.name
            assert by_origin(client.events('big'), origin) == [
                (origin, big)], client.name
        assert client.events('where') == [], client.name
    assert dave.events('bin', '/chat') == [(b'',)]
    assert carol.events('bin', '/chat') == [(b'\x80',)]
    assert alice.events('bin', '/chat') == bob.events('bin', '/chat') == []
    for client in c.clients:
        in_room = client in (alice, bob)
        for origin in (PY, NODE):
            assert by_origin(client.events('where', '/chat'), origin) == \
                [(origin, 'chat')] + ([(origin, 'chat room')]
                                      if in_room else []), client.name
    c.check_python_side()


def test_argument_shapes_and_text_both_ways(mixed):
    """No argument, null, nested structures, numbers and non-ASCII text
    (in event names, arguments and room names) cross unchanged."""
    require_node()
    c = mixed()
    alice, carol, bob, dave = c.clients
    room = 'salle-\u00e9t\u00e9-\U0001f600'
    carol.cmd('enter_room', sid=carol.sid(), room=room)
    dave.cmd('enter_room', sid=dave.sid(), room=room)
    shapes = [
        [],
        [None],
        [0, -1, 2.5, 2 ** 40, True, False],
        [{'deep': [1, None, {'k': 'v'}], 'empty': {}, 'list': []}],
        ['h\u00e9llo \u2713 \U0001f600 \u4e2d\u6587 "quoted" \\ \n'],
    ]
    for origin, sender in ((PY, alice), (NODE, bob)):
        for args in shapes:
            sender.cmd('emit', event=f'shape-{origin}', args=args)
        sender.cmd('emit', event=f'\u00e9v\u00e9nement-{origin}',
                   args=[origin], to=room)
    settle(*c.clients)
    for client in c.clients:
        for origin in (PY, NODE):
            assert client.events(f'shape-{origin}') == \
                [tuple(args) for args in shapes], (client.name, origin)
            assert client.events(f'\u00e9v\u00e9nement-{origin}') == (
                [(origin,)] if client in (carol, dave) else []), client.name
    c.check_python_side()


# -- cluster-wide socket management -------------------------------------------

def test_sockets_join_and_leave_both_ways(mixed):
    require_node()
    c = mixed()
    alice, carol, bob, dave = c.clients

    # Python -> Node: everyone but carol joins
    alice.cmd('sockets_join', rooms=['news', 'sport'], skip=carol.sid())
    # Node -> Python: to a sid
    bob.cmd('sockets_join', rooms=['chess'], to=carol.sid())
    settle(*c.clients)
    # Node -> Python: to a room, with an exception
    bob.cmd('sockets_leave', rooms='sport', to='news', skip=dave.sid())
    # Python -> Node: to a sid
    alice.cmd('sockets_leave', rooms=['news'], to=[dave.sid()])
    # the other namespace keeps its own rooms
    bob.cmd('sockets_join', rooms='lobby', namespace='/chat',
            skip=dave.sid('/chat'))
    for namespace in NAMESPACES:
        settle(*c.clients, namespace=namespace)
    assert rooms_of(alice) == sorted([alice.sid(), 'news'])
    assert rooms_of(carol) == sorted([carol.sid(), 'chess'])
    assert rooms_of(bob) == sorted([bob.sid(), 'news'])
    assert rooms_of(dave) == sorted([dave.sid(), 'sport'])
    for client in (alice, carol, bob):
        assert rooms_of(client, '/chat') == \
            sorted([client.sid('/chat'), 'lobby']), client.name
    assert rooms_of(dave, '/chat') == [dave.sid('/chat')]

    # one sid of the other server: enter_room / leave_room / close_room
    alice.cmd('enter_room', sid=bob.sid(), room='vip')
    bob.cmd('enter_room', sid=carol.sid(), room='vip')
    alice.cmd('enter_room', sid=alice.sid(), room='vip')
    settle(*c.clients)
    alice.cmd('emit', event='vip', args=['py-vip'], to='vip')
    bob.cmd('emit', event='vip', args=['node-vip'], to='vip')
    bob.cmd('leave_room', sid=alice.sid(), room='vip')
    settle(*c.clients)
    assert rooms_of(alice) == sorted([alice.sid(), 'news'])
    assert 'vip' in rooms_of(bob) and 'vip' in rooms_of(carol)
    bob.cmd('close_room', room='vip')  # Node -> Python (carol)
    settle(*c.clients)
    assert rooms_of(carol) == sorted([carol.sid(), 'chess'])
    alice.cmd('enter_room', sid=dave.sid(), room='vip2')
    settle(*c.clients)
    assert 'vip2' in rooms_of(dave)
    alice.cmd('close_room', room='vip2')  # Python -> Node (dave)
    settle(*c.clients)
    assert rooms_of(dave) == sorted([dave.sid(), 'sport'])
    assert rooms_of(bob) == sorted([bob.sid(), 'news'])

    for client in (alice, carol, bob):
        assert sorted(client.events('vip')) == \
            [('node-vip',), ('py-vip',)], client.name
    assert dave.events('vip') == []
    c.check_python_side()


def test_fetched_node_socket_can_be_acted_on_from_python(mixed):
    require_node()
    c = mixed()
    bob_sid = c.bob.sid('/chat')
    reply = c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                        action='join', args=['vip'])
    assert reply['ok'] is True
    eventually(lambda: 'vip' in rooms_of(c.bob, '/chat'))
    c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                action='emit', args=['hello', 1, b'\x02'])
    assert c.bob.wait_for(1, event='hello', namespace='/chat') == \
        [(1, b'\x02')]
    c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                action='leave', args=['vip'])
    eventually(lambda: rooms_of(c.bob, '/chat') == [bob_sid])
    c.alice.cmd('fetched_socket', sid=bob_sid, namespace='/chat',
                action='disconnect')
    c.bob.wait_for(1, event='disconnect', namespace='/chat')
    assert c.bob.events('disconnect') == []
    c.check_python_side()


def test_disconnect_sockets_both_ways(mixed):
    require_node()
    c = mixed()
    alice, carol, bob, dave = c.clients

    # Python -> Node, by room, one namespace
    dave.cmd('enter_room', sid=dave.sid('/chat'), room='kick',
             namespace='/chat')
    alice.cmd('disconnect_sockets', namespace='/chat', to='kick')
    dave.wait_for(1, event='disconnect', namespace='/chat')
    # Node -> Python, with exceptions
    bob.cmd('disconnect_sockets', namespace='/chat',
            skip=[bob.sid('/chat'), alice.sid('/chat')])
    carol.wait_for(1, event='disconnect', namespace='/chat')
    # one sid of the other server (python-socketio's disconnect(sid), and
    # Node's disconnectSockets() of that sid)
    alice.cmd('disconnect', sid=bob.sid('/chat'), namespace='/chat')
    bob.wait_for(1, event='disconnect', namespace='/chat')
    bob.cmd('disconnect', sid=alice.sid('/chat'), namespace='/chat')
    alice.wait_for(1, event='disconnect', namespace='/chat')
    settle(*c.clients)  # everyone is still on '/'

    # close=True ends the whole connection, both ways
    erin, frank = c.on_py('erin'), c.on_node('frank')
    alice.cmd('disconnect_sockets', namespace='/chat', to=frank.sid('/chat'),
              close=True)
    bob.cmd('disconnect_sockets', namespace='/chat', to=erin.sid('/chat'),
            close=True)
    for client in (erin, frank):
        for namespace in NAMESPACES:
            client.wait_for(1, event='disconnect', namespace=namespace)

    settle(*c.clients)
    for client in c.clients:
        assert len(client.events('disconnect', '/chat')) == 1, client.name
        assert client.events('disconnect') == [], client.name
    c.check_python_side()


def test_fetch_sockets_both_ways(mixed):
    require_node()
    c = mixed()
    alice, carol, bob, dave = c.clients
    alice.cmd('set_data', sid=alice.sid(),
              data={'user': 'alice', 'blob': b'\x01\x02', 'n': [1, 2.5]})
    bob.cmd('set_data', sid=bob.sid(), data={'user': 'bob', 'blob': b'\x03'})
    alice.cmd('enter_room', sid=alice.sid(), room='r1')
    carol.cmd('enter_room', sid=carol.sid(), room='r2')
    bob.cmd('enter_room', sid=bob.sid(), room='r1')
    dave.cmd('enter_room', sid=dave.sid(), room='r2')

    def expected(*clients: RecordingClient, namespace: str = '/'):
        rooms = {alice: 'r1', carol: 'r2', bob: 'r1', dave: 'r2'}
        data = {
            alice: {'user': 'alice', 'blob': b'\x01\x02', 'n': [1, 2.5]},
            carol: {},
            bob: {'auth': {'token': 'bob-token'}, 'user': 'bob',
                  'blob': b'\x03'},
            dave: {},
        }
        sockets = []
        for client in clients:
            sid = client.sid(namespace)
            if namespace == '/':
                sockets.append({'id': sid,
                                'rooms': sorted([sid, rooms[client]]),
                                'data': data[client]})
            else:
                sockets.append({
                    'id': sid, 'rooms': [sid],
                    'data': ({'auth': {'token': 'bob-token'}}
                             if client is bob else {})})
        return sorted(sockets, key=lambda s: s['id'])

    def fetched(client: RecordingClient, **options: Any):
        return [{k: s[k] for k in ('id', 'rooms', 'data')}
                for s in client.cmd('fetch_sockets', **options)]

    for origin in (alice, bob):  # from Python, then from Node
        assert fetched(origin) == expected(*c.clients), origin.name
        assert fetched(origin, to='r1') == expected(alice, bob), origin.name
        assert fetched(origin, to=['r1', 'r2'], skip=[bob.sid(), 'r2']) == \
            expected(alice), origin.name
        assert fetched(origin, to='r2', skip=carol.sid()) == \
            expected(dave), origin.name
        assert fetched(origin, namespace='/chat') == \
            expected(*c.clients, namespace='/chat'), origin.name
        assert fetched(origin, to='empty-room') == [], origin.name

    # the handshake of a socket of the other server
    [remote_bob] = [s for s in alice.cmd('fetch_sockets', to=bob.sid())]
    assert remote_bob['handshake']['auth'] == {'token': 'bob-token'}
    assert remote_bob['handshake']['address'] == '127.0.0.1'
    assert remote_bob['handshake']['query']['transport'] == 'websocket'
    assert remote_bob['handshake']['url'].startswith('/socket.io/?')
    [remote_alice] = [s for s in bob.cmd('fetch_sockets', to=alice.sid())]
    assert remote_alice['handshake']['auth'] == {'token': 'alice-token'}
    assert remote_alice['handshake']['address'] == '127.0.0.1'
    assert remote_alice['handshake']['query']['transport'] == 'websocket'
    assert remote_alice['handshake']['url'].startswith('/socket.io/?')
    c.check_python_side()


# -- server-side events -------------------------------------------------------

def test_server_side_emit_with_and_without_acks_both_ways(mixed):
    require_node()
    c = mixed()
    alice, bob = c.alice, c.bob

    alice.cmd('server_side_emit', event='announce',
              args=['from-py', b'\x01', {'n': 1}])
    alice.cmd('server_side_emit', event='announce', args=['py-chat'],
              namespace='/chat')
    bob.cmd('server_side_emit', event='announce',
            args=['from-node', b'\x02', {'n': 2}])
    bob.cmd('server_side_emit', event='announce', args=['node-chat'],
            namespace='/chat')
    eventually(lambda: bob.cmd('server_events') == [
        {'event': 'announce', 'args': ['from-py', b'\x01', {'n': 1}]}])
    eventually(lambda: alice.cmd('server_events') == [
        {'event': 'announce', 'args': ['from-node', b'\x02', {'n': 2}]}])
    eventually(lambda: bob.cmd('server_events', namespace='/chat') == [
        {'event': 'announce', 'args': ['py-chat']}])
    eventually(lambda: alice.cmd('server_events', namespace='/chat') == [
        {'event': 'announce', 'args': ['node-chat']}])

    # with acknowledgements
    assert alice.cmd('server_side_call', event='ping-servers',
                     args=[7, b'\x03']) == {'responses': [f'pong-from-{NODE}']}
    assert bob.cmd('server_side_call', event='ping-servers',
                   args=[8, b'\x04']) == {'responses': [f'pong-from-{PY}']}
    assert alice.cmd('server_side_call', event='ping-servers',
                     namespace='/chat') == {'responses': [f'pong-from-{NODE}']}
    assert bob.cmd('server_side_call', event='ping-servers',
                   namespace='/chat') == {'responses': [f'pong-from-{PY}']}
    assert bob.cmd('server_events')[1:] == [
        {'event': 'ping-servers', 'args': [7, b'\x03']}]
    assert alice.cmd('server_events')[1:] == [
        {'event': 'ping-servers', 'args': [8, b'\x04']}]
    assert bob.cmd('server_events', namespace='/chat')[1:] == \
        alice.cmd('server_events', namespace='/chat')[1:] == [
            {'event': 'ping-servers', 'args': []}]

    # an event no server listens to is not answered, either way
    answer = alice.cmd('server_side_call', event='nobody-listens', timeout=1)
    assert answer['responses'] == [] and answer['expected'] == 1, answer
    assert 'timed out' in answer['error']
    assert bob.cmd('server_side_call', event='nobody-listens',
                   timeout=1) == {'error': 'no complete answer within 1s'}
    c.check_python_side()


# -- broadcasts with acknowledgements -----------------------------------------

def test_broadcast_with_acks_both_ways(mixed):
    require_node()
    c = mixed()
    alice, carol, bob, dave = c.clients
    alice.cmd('enter_room', sid=alice.sid(), room='r')
    dave.cmd('enter_room', sid=dave.sid(), room='r')
    dave.cmd('enter_room', sid=dave.sid('/chat'), room='r',
             namespace='/chat')
    everyone = ['alice', 'bob', 'carol', 'dave']

    for origin in (alice, bob):  # from Python, then from Node
        def names(**options: Any) -> list[str]:
            answer = origin.cmd('emit_with_ack', event='whoami', **options)
            assert set(answer) == {'responses'}, answer
            return sorted(answer['responses'])

        assert names() == everyone, origin.name
        assert names(to='r') == ['alice', 'dave'], origin.name
        assert names(skip_sid=[bob.sid(), carol.sid()]) == \
            ['alice', 'dave'], origin.name
        assert names(to=[alice.sid(), bob.sid()]) == ['alice', 'bob'], \
            origin.name
        assert names(namespace='/chat') == everyone, origin.name
        assert names(to='r', namespace='/chat') == ['dave'], origin.name
        assert names(to='empty-room') == [], origin.name

    # binary arguments reach the clients of the other server
    answer = alice.cmd('emit_with_ack', event='whoami', args=[b'\x01'],
                       to=[bob.sid(), carol.sid()])
    assert sorted(answer['responses']) == ['bob', 'carol'], answer
    assert bob.events('whoami')[-1] == carol.events('whoami')[-1] == \
        (b'\x01',)
    answer = bob.cmd('emit_with_ack', event='whoami', args=[b'\x02'],
                     to=[alice.sid(), dave.sid()])
    assert sorted(answer['responses']) == ['alice', 'dave'], answer
    assert alice.events('whoami')[-1] == dave.events('whoami')[-1] == \
        (b'\x02',)
    # several answer arguments: only the first crosses from a Node server
    # (BROADCAST_ACK has one `packet`), a local client answers in full
    answer = alice.cmd('emit_with_ack', event='ack_me', args=[7],
                       to=[bob.sid(), carol.sid()])
    assert sorted(answer['responses'], key=repr) == \
        sorted(['ack', ['ack', 'carol', 7]], key=repr), answer
    assert bob.events('ack_me') == carol.events('ack_me') == [(7,)]
    # Node keeps only the first argument of every answer
    answer = bob.cmd('emit_with_ack', event='ack_me', args=[8],
                     to=[alice.sid(), dave.sid()])
    assert answer == {'responses': ['ack', 'ack']}, answer
    assert alice.events('ack_me') == dave.events('ack_me') == [(8,)]

    # a client acknowledges an event it has no handler for with no
    # arguments: the answer is None (null), either way
    for origin in (alice, bob):
        for target in (alice, bob):
            assert origin.cmd('emit_with_ack', event='unhandled',
                              to=target.sid()) == {'responses': [None]}, \
                (origin.name, target.name)
    assert alice.cmd('call', event='unhandled', to=dave.sid()) is None
    assert bob.cmd('call', event='unhandled', to=carol.sid()) is None

    # emit with a callback to one sid of the other server
    assert alice.cmd('call', event='whoami', to=bob.sid()) == 'bob'
    assert bob.cmd('call', event='whoami', to=alice.sid()) == 'alice'
    assert alice.cmd('call', event='ack_me', to=dave.sid('/chat'),
                     args=['q', 7], namespace='/chat') == 'ack'
    assert bob.cmd('call', event='ack_me', to=carol.sid('/chat'),
                   args=['q', 8], namespace='/chat') == 'ack'
    assert dave.events('ack_me', '/chat') == [('q', 7)]
    assert carol.events('ack_me', '/chat') == [('q', 8)]
    c.check_python_side()


def test_broadcast_with_acks_times_out_with_the_answers_that_arrived(mixed):
    """While the other server is frozen, a broadcast with acks returns, at
    its timeout, the answers of the requester's own clients; the late
    answers of the thawed server are then dropped quietly."""
    require_node()
    c = mixed()
    alice, bob = c.alice, c.bob

    os.killpg(c.node.pid, signal.SIGSTOP)
    try:
        answer = alice.cmd('emit_with_ack', event='whoami', timeout=1)
    finally:
        os.killpg(c.node.pid, signal.SIGCONT)
    assert sorted(answer['responses']) == ['alice', 'carol'], answer
    assert 'timed out' in answer['error'], answer

    c.py.send_signal(signal.SIGSTOP)
    try:
        answer = bob.cmd('emit_with_ack', event='whoami', timeout=1)
    finally:
        c.py.send_signal(signal.SIGCONT)
    assert sorted(answer['responses']) == ['bob', 'dave'], answer
    assert answer['error'] == 'operation has timed out', answer

    # both are whole again
    for origin in (alice, bob):
        assert sorted(origin.cmd('emit_with_ack', event='whoami')[
            'responses']) == ['alice', 'bob', 'carol', 'dave']
    c.check_python_side()


# -- server count -------------------------------------------------------------

def test_server_count_both_ways(mixed):
    require_node()
    c = mixed()
    alice, bob = c.alice, c.bob
    for client in (alice, bob):
        for namespace in NAMESPACES:
            assert client.cmd('server_count', namespace=namespace) == 2

    # the Node server leaves, then comes back (new adapter uids)
    assert c.node.stop() == 0
    eventually(lambda: all(alice.cmd('server_count', namespace=namespace)
                           == 1 for namespace in NAMESPACES))
    # requests to the cluster no longer wait for the Node server
    assert alice.cmd('server_side_call', event='ping-servers') == \
        {'responses': []}
    assert ids(alice.cmd('fetch_sockets')) == sorted(
        [alice.sid(), c.carol.sid()])
    c.node.start()
    for client in (bob, c.dave):
        for namespace in NAMESPACES:
            client.wait_for(2, event='connect', namespace=namespace,
                            timeout=15)
    c.wait_until_joined(alice, bob)
    alice.cmd('emit', event='again', args=[PY])
    bob.cmd('emit', event='again', args=[NODE])
    settle(alice, bob)
    for client in (alice, bob):
        assert sorted(client.events('again')) == [(NODE,), (PY,)]
    assert alice.cmd('server_side_call', event='ping-servers') == \
        {'responses': [f'pong-from-{NODE}']}
    c.check_python_side()

    # the Python server leaves
    c.py.stop()
    eventually(lambda: all(bob.cmd('server_count', namespace=namespace)
                           == 1 for namespace in NAMESPACES))
    assert bob.cmd('server_side_call', event='ping-servers') == \
        {'responses': []}
    assert ids(bob.cmd('fetch_sockets')) == sorted([bob.sid(), c.dave.sid()])


# -- stream and PUB/SUB options -----------------------------------------------

def check_crossing(c: Mixed) -> None:
    """Broadcasts (stream) in both namespaces and server_side_call
    (PUB/SUB) cross in both directions."""
    for namespace in NAMESPACES:
        c.alice.cmd('emit', event='hi', args=[PY, b'\x00'],
                    namespace=namespace)
        c.bob.cmd('emit', event='hi', args=[NODE, b'\x01'],
                  namespace=namespace)
        settle(*c.clients, namespace=namespace)
        for client in c.clients:
            assert sorted(client.events('hi', namespace)) == \
                [(NODE, b'\x01'), (PY, b'\x00')], (client.name, namespace)
        assert c.alice.cmd('server_side_call', event='ping-servers',
                           namespace=namespace) == \
            {'responses': [f'pong-from-{NODE}']}
        assert c.bob.cmd('server_side_call', event='ping-servers',
                         namespace=namespace) == \
            {'responses': [f'pong-from-{PY}']}
    assert c.bob.cmd('call', event='whoami', to=c.carol.sid()) == 'carol'
    assert c.alice.cmd('call', event='whoami', to=c.dave.sid()) == 'dave'


def test_three_streams_both_ways(mixed):
    require_node()
    c = mixed(py_options={'stream_count': 3},
              node_options={'streamCount': 3})
    check_crossing(c)
    raw = c.redis.client()
    try:
        writers = {
            stream: {(fields[b'nsp'].decode(), fields[b'uid'].decode())
                     for _, fields in raw.xrange(stream)}
            for stream in ('socket.io', 'socket.io-0', 'socket.io-1',
                           'socket.io-2')}
    finally:
        raw.close()
    # Java hashes: '/' 47 -> stream 2, '/chat' 46457863 -> stream 1; both
    # servers wrote there (and nowhere else)
    assert writers['socket.io'] == writers['socket.io-0'] == set()
    for stream, namespace in (('socket.io-2', '/'), ('socket.io-1', '/chat')):
        assert {nsp for nsp, _ in writers[stream]} == {namespace}, writers
        assert len({uid for _, uid in writers[stream]}) == 2, writers
    c.check_python_side()


def test_sharded_pubsub_both_ways(mixed):
    require_node()
    c = mixed(py_options={'use_sharded_pubsub': True},
              node_options={'useShardedPubSub': True})
    check_crossing(c)
    for origin in (c.alice, c.bob):
        assert sorted(origin.cmd('emit_with_ack', event='whoami')[
            'responses']) == ['alice', 'bob', 'carol', 'dave']
        assert ids(origin.cmd('fetch_sockets')) == sorted(
            client.sid() for client in c.clients)
    raw = c.redis.client()
    try:
        for namespace in NAMESPACES:
            channel = f'socket.io#{namespace}#'.encode()
            assert dict(raw.pubsub_shardnumsub(channel)) == {channel: 2}
            assert dict(raw.pubsub_numsub(channel)) == {channel: 0}
    finally:
        raw.close()
    c.check_python_side()
