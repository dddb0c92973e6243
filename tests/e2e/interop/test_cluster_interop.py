"""Python and Node.js servers on one Redis Cluster (3 masters, 3 replicas):
the Python server runs RedisStreamsManager with a ``redis+cluster://`` URL,
the Node server the official adapter 0.3.1 on node-redis ``createCluster``.

The checks of test_interop.py run here as they are, on the cluster (its
``mixed`` fixture starts the servers on ``mixed_redis``, the cluster here),
with those that only a cluster makes interesting: streams on different
masters, sharded PUB/SUB, sessions stored on one master and taken by the
other server.

On a cluster, each stream and each session key lives on the master of its
slot, and ``PUBSUB NUMSUB`` / ``SHARDNUMSUB`` count only the subscribers
connected to the node asked: the raw checks below ask every node.
"""
from __future__ import annotations

import time
from typing import Any

import pytest
import socketio
from redis.cluster import RedisCluster

from tests.conftest import _attach_logs
from tests.e2e.interop import test_interop as interop
from tests.e2e.interop import test_recovery as recovery
from tests.e2e.interop.test_interop import NODE, PY, ids
from tests.support.node_server import NodeServerProcess, require_node
from tests.support.redis_cluster import RedisClusterServers
from tests.support.waiting import eventually, settle

pytestmark = [pytest.mark.interop, pytest.mark.cluster]

# The fixtures of test_interop.py and test_recovery.py, on the cluster.
node_factory = interop.node_factory
mixed = interop.mixed
js = recovery.js


class BytesClients:
    """A cluster whose ``client()`` returns bytes, as a RedisServer's does
    (the checks of test_interop.py compare stream fields as bytes)."""

    def __init__(self, cluster: RedisClusterServers) -> None:
        self.cluster = cluster
        self.url = cluster.url

    def client(self) -> RedisCluster:
        return self.cluster.client(decode_responses=False)


@pytest.fixture
def mixed_redis(shared_redis_cluster) -> BytesClients:
    """The servers of ``mixed`` meet on the Redis Cluster."""
    return BytesClients(shared_redis_cluster)


def on_every_node(cluster: RedisClusterServers, method: str,
                  *args: Any) -> Any:
    """``client().<method>(*args)`` sent to every node of the cluster, the
    replies merged by redis-py (lists joined, PUB/SUB counts summed)."""
    raw = cluster.client()
    try:
        return getattr(raw, method)(*args, target_nodes=RedisCluster.ALL_NODES)
    finally:
        raw.close()


def sessions(cluster: RedisClusterServers) -> list[str]:
    """The stored sessions (a replica holds copies of its master's keys)."""
    raw = cluster.client()
    try:
        return sorted(raw.keys('sio:session:*',
                               target_nodes=RedisCluster.PRIMARIES))
    finally:
        raw.close()


# -- the checks of test_interop.py, on the cluster ----------------------------

def test_broadcast_to_all_rooms_sids_and_except_both_ways(mixed):
    interop.test_broadcast_to_all_rooms_sids_and_except_both_ways(mixed)


def test_bursts_from_both_servers_arrive_complete_and_in_order(mixed):
    interop.test_bursts_from_both_servers_arrive_complete_and_in_order(mixed)


def test_binary_and_namespaces_both_ways(mixed):
    interop.test_binary_and_namespaces_both_ways(mixed)


def test_sockets_join_and_leave_both_ways(mixed):
    interop.test_sockets_join_and_leave_both_ways(mixed)


def test_fetched_node_socket_can_be_acted_on_from_python(mixed):
    interop.test_fetched_node_socket_can_be_acted_on_from_python(mixed)


def test_disconnect_sockets_both_ways(mixed):
    interop.test_disconnect_sockets_both_ways(mixed)


def test_fetch_sockets_both_ways(mixed):
    interop.test_fetch_sockets_both_ways(mixed)


def test_server_side_emit_with_and_without_acks_both_ways(mixed):
    interop.test_server_side_emit_with_and_without_acks_both_ways(mixed)


def test_broadcast_with_acks_both_ways(mixed):
    interop.test_broadcast_with_acks_both_ways(mixed)


def test_server_count_both_ways(mixed):
    """Each server subscribes on one master, and ``serverCount()`` of the
    Node adapter sums the counts of every master it knows."""
    interop.test_server_count_both_ways(mixed)


# -- what only a cluster makes interesting ------------------------------------

def test_three_streams_on_two_masters_both_ways(mixed, shared_redis_cluster):
    """``/`` goes to ``socket.io-2`` and ``/chat`` to ``socket.io-1``: two
    slots of two masters, each read by a connection of its own."""
    assert shared_redis_cluster.primary_for('socket.io-1') != \
        shared_redis_cluster.primary_for('socket.io-2')
    interop.test_three_streams_both_ways(mixed)


def test_sharded_pubsub_both_ways(mixed, shared_redis_cluster):
    """Each channel is subscribed on the master of its slot, by both
    servers; nothing is left on the classic PUB/SUB."""
    require_node()
    c = mixed(py_options={'use_sharded_pubsub': True},
              node_options={'useShardedPubSub': True})
    interop.check_crossing(c)
    for origin in (c.alice, c.bob):
        assert sorted(origin.cmd('emit_with_ack', event='whoami')[
            'responses']) == ['alice', 'bob', 'carol', 'dave']
        assert ids(origin.cmd('fetch_sockets')) == sorted(
            client.sid() for client in c.clients)
        assert origin.cmd('server_count') == 2
    for namespace in interop.NAMESPACES:
        channel = f'socket.io#{namespace}#'
        assert on_every_node(shared_redis_cluster, 'pubsub_shardnumsub',
                             channel) == [(channel, 2)]
        assert on_every_node(shared_redis_cluster, 'pubsub_numsub',
                             channel) == [(channel, 0)]
    c.check_python_side()


def test_classic_pubsub_reaches_subscribers_on_any_node(
        mixed, shared_redis_cluster):
    """A PUBLISH reaches every node of the cluster: each server's requests
    are answered wherever the other one subscribed."""
    require_node()
    c = mixed()
    interop.check_crossing(c)
    for namespace in interop.NAMESPACES:
        channel = f'socket.io#{namespace}#'
        assert on_every_node(shared_redis_cluster, 'pubsub_numsub',
                             channel) == [(channel, 2)]
    c.check_python_side()


# -- connection state recovery across the two servers -------------------------

@pytest.mark.parametrize('stored_by', [PY, NODE])
def test_sessions_move_between_python_and_node_servers(
        shared_redis_cluster, server_factory, node_factory, client_factory,
        tcp_proxy_factory, js, async_mode, stored_by):
    """An official client's session stored by one server is restored by the
    other, with the broadcasts both servers sent meanwhile, in order."""
    node = node_factory(redis_url=shared_redis_cluster.url,
                        recovery=recovery.NODE_RECOVERY)
    [python] = server_factory(redis_url=shared_redis_cluster.url,
                              async_mode=async_mode, names=[PY],
                              options=recovery.RECOVERY)
    node.wait_ready()
    first, then = (python, node) if stored_by == PY else (node, python)
    proxy = tcp_proxy_factory(first.port)
    sid = js.connect('alice', proxy.http_url)['sid']
    carol = client_factory(python.url, name='carol')
    dave = client_factory(node.url, name='dave')
    for client in (carol, dave):
        for room in ('r1', 'r2', 'r3'):
            client.cmd('enter_room', sid=client.sid(), room=room)
    carol.cmd('enter_room', sid=sid, room='r1')
    dave.cmd('sockets_join', rooms=['r2'], to=sid)
    if stored_by == PY:
        carol.cmd('set_data', sid=sid, data={'from': PY})
    recovery.primed(js, 'alice', carol)  # (after the joins, in the stream)

    proxy.cut()
    eventually(lambda: len(sessions(shared_redis_cluster)) == 1, timeout=10)
    # Both servers send, in turns: a broadcast is in the stream once the
    # other server's client got it, and the next one comes after it.
    for n, (sender, witness, to) in enumerate((
            (carol, dave, 'r1'), (dave, carol, 'r3'), (dave, carol, 'r2'),
            (carol, dave, None), (dave, carol, None)), start=1):
        sender.cmd('emit', event=f'm{n}', args=[sender.name], to=to)
        witness.wait_for(1, event=f'm{n}')
    dave.cmd('emit', event='m6', args=['dave'], namespace='/chat')
    proxy.retarget(then.port)
    proxy.restore()

    state = recovery.reconnected(js, 'alice')
    assert (state['sid'], state['recovered']) == (sid, True)
    missed = recovery.received_until(js, 'alice', 'm5')
    assert [e[:2] for e in missed] == [['m1', 'carol'], ['m3', 'dave'],
                                       ['m4', 'carol'], ['m5', 'dave']]
    recovery.assert_offsets(missed)
    for client in (carol, dave):
        [socket] = client.cmd('fetch_sockets', to=sid)
        assert socket['rooms'] == sorted([sid, 'r1', 'r2']), client.name
        if stored_by == PY:
            assert socket['data'] == {'from': PY}, client.name
    assert sessions(shared_redis_cluster) == []
    # the recovered socket gets what either server sends from now on
    carol.cmd('emit', event='after', args=[PY])
    dave.cmd('emit', event='after', args=[NODE])
    js.wait_for(lambda: sorted(e[1] for e in js.events('alice')
                               if e[0] == 'after') == [NODE, PY])


# -- the Node side alone ------------------------------------------------------

@pytest.mark.parametrize('options', [
    {}, {'streamCount': 3, 'useShardedPubSub': True}], ids=['default', '3x'])
def test_two_node_servers_on_a_cluster(shared_redis_cluster, node_factory,
                                       client_factory, options):
    """node_server.mjs on the cluster, without a Python server: what the
    mixed tests rely on from the Node side."""
    require_node()
    servers = [node_factory(redis_url=shared_redis_cluster.url, name=name,
                            options=options) for name in ('A', 'B')]
    for server in servers:
        server.wait_ready()
    alice, bob = (client_factory(server.url, interop.NAMESPACES, name=name)
                  for server, name in zip(servers, ('alice', 'bob')))
    for client in (alice, bob):
        for namespace in interop.NAMESPACES:
            assert client.cmd('server_count', namespace=namespace) == 2
    for namespace in interop.NAMESPACES:
        alice.cmd('emit', event='hi', args=['A', b'\x00'],
                  namespace=namespace)
        bob.cmd('emit', event='hi', args=['B'], namespace=namespace)
        settle(alice, bob, namespace=namespace)
        for client in (alice, bob):
            assert sorted(client.events('hi', namespace)) == \
                [('A', b'\x00'), ('B',)], namespace
    assert alice.cmd('server_side_call', event='ping-servers') == \
        {'responses': ['pong-from-B']}
    assert sorted(bob.cmd('emit_with_ack', event='whoami')['responses']) == \
        ['alice', 'bob']
    assert ids(alice.cmd('fetch_sockets')) == sorted([alice.sid(), bob.sid()])


# -- what a failover does to the Node adapter ---------------------------------

RATE = 400  # broadcasts per second during the failover
WINDOW = 30  # seconds watched after the kill


@pytest.mark.slow
def test_node_adapter_stalls_after_a_failover(redis_cluster, tmp_path,
                                              request, client_factory):
    """PROTOCOL.md, "On a Redis Cluster": while A broadcasts 400 messages a
    second, the master holding the stream is SIGKILLed and its replica
    promoted (in a few seconds). Node servers on node-redis
    ``createCluster`` then deliver nothing more, even to the sender's own
    clients, for the next 30 s, and their requests hang: their cluster
    client refreshes its slot map only on a MOVED or ASK reply, which a dead
    node never sends. The stream itself is served again by the new master.
    """
    require_node()
    servers = [NodeServerProcess(redis_url=redis_cluster.url, name=name,
                                 workdir=tmp_path / 'node')
               for name in ('A', 'B')]
    for server in servers:
        _attach_logs(request, server)
        server.launch()
    try:
        for server in servers:
            server.wait_ready()
        alice, bob = (client_factory(server.url, name=name)
                      for server, name in zip(servers, ('alice', 'bob')))
        assert bob.cmd('server_count') == 2
        victim = redis_cluster.primary_for('socket.io')
        alice.cmd('emit_sequence', event='seq', count=RATE * (WINDOW + 5),
                  interval=1 / RATE)
        bob.wait_for(RATE // 2, event='seq')

        def received() -> list[int]:
            return [len(client.events('seq')) for client in (alice, bob)]

        redis_cluster.kill(victim)
        killed = time.monotonic()
        at_kill = received()
        successor = redis_cluster.wait_failover('socket.io', victim,
                                                timeout=WINDOW)
        took_over = time.monotonic() - killed
        # the new master serves the stream, with what it had replicated of
        # the entries bob got
        with redis_cluster.client() as raw:
            assert raw.xlen('socket.io') > RATE // 4
        # requests and new broadcasts of the other server go nowhere
        with pytest.raises(socketio.exceptions.TimeoutError):
            bob.cmd('server_count', wait=3)
        bob.cmd('emit', event='late', args=['B'])
        settled = received()  # (what was on its way at the kill is in)
        time.sleep(max(0.0, killed + WINDOW - time.monotonic()))
        final = received()
    finally:
        for server in servers:
            server.kill()
    assert successor is not victim and took_over < WINDOW / 2, took_over
    # nothing since the takeover, and before it at most what was on its
    # way at the kill, out of the ~12000 broadcasts of the 30 s
    assert final == settled, (at_kill, settled, final)
    assert all(n - before < RATE for n, before in zip(final, at_kill)), \
        (at_kill, final)
    assert alice.events('late') == bob.events('late') == []
