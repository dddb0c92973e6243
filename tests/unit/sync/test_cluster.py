"""Redis Cluster support without a cluster: URLs, the routing of held
connections by slot (MOVED, ASK, a dead primary), and the count of
subscribers over every node, against an in-memory cluster client."""
from types import SimpleNamespace

import pytest
import redis
import valkey

from sio_redis_streams.sync import cluster
from sio_redis_streams.sync.cluster import ClusterDirectConnection


class Connection:
    """A node's connection: answers each command with the next scripted
    reply of its node (an exception instance is raised, as the parser
    does)."""

    def __init__(self, node):
        self.node = node
        self.sent = []
        self.disconnects = 0
        self._replies = []

    def pack_commands(self, commands):
        return list(commands)

    def send_packed_command(self, commands, check_health=True):
        if self.node.down:
            raise redis.exceptions.ConnectionError(f'{self.node.name} down')
        self.sent.append(commands)
        self._replies = [self.node.reply(c) for c in commands]

    def read_response(self):
        reply = self._replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def disconnect(self):
        self.disconnects += 1


class Node:
    def __init__(self, name, answers=None):
        self.name = name
        self.host, _, port = name.partition(':')
        self.port = int(port)
        self.down = False
        self.answers = answers or {}
        self.connections = []
        self.released = []
        self.subscribers = 0

    def reply(self, command):
        answer = self.answers.get(command[0], b'OK')
        if isinstance(answer, list):  # one answer per call, the last stays
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer

    # the pool
    def get_connection(self):
        connection = Connection(self)
        self.connections.append(connection)
        return connection

    def release(self, connection):
        self.released.append(connection)


class FakeCluster:
    """What ClusterDirectConnection uses of a cluster client: every key is
    in slot 7, served by ``owner`` until ``refreshes`` changes it."""

    def __init__(self, *nodes):
        self.nodes = {node.name: node for node in nodes}
        self.owner = nodes[0]
        self.after_refresh = None
        self.refreshes = 0
        self.nodes_manager = SimpleNamespace(
            get_node_from_slot=lambda slot: self.owner,
            get_node=lambda host, port: self.nodes.get(f'{host}:{port}'),
            initialize=self._refresh)

    def keyslot(self, key):
        return 7

    def get_redis_connection(self, node):
        return SimpleNamespace(connection_pool=node)

    def get_nodes(self):
        return list(self.nodes.values())

    def disconnect_connection_pools(self):
        pass

    def execute_command(self, command, channel, target_nodes):
        if target_nodes.down or getattr(target_nodes, 'stale', False):
            target_nodes.stale = False
            raise redis.exceptions.ConnectionError('down')
        return [(channel.encode(), target_nodes.subscribers)]

    def _refresh(self):
        self.refreshes += 1
        if self.after_refresh is not None:
            self.owner = self.after_refresh


XADD = ('XADD', 's', '*', 'a', 'b')


def transaction():
    return [('MULTI',), XADD, ('EXEC',)]


def test_commands_go_to_the_primary_of_their_key():
    a = Node('127.0.0.1:7000', {'EXEC': [[b'1-0']]})
    conn = ClusterDirectConnection(FakeCluster(a), redis)
    assert conn.execute(*transaction(), key='s') == [b'OK', b'OK', [b'1-0']]
    assert conn.execute(*transaction(), key='s')[-1] == [b'1-0']
    assert len(a.connections) == 1  # held, not checked out each time
    with pytest.raises(ValueError, match='needs its key'):
        conn.execute(XADD)


def test_moved_refreshes_the_slot_map_and_sends_again_to_the_new_owner():
    moved = redis.exceptions.MovedError('7 127.0.0.1:7001')
    a = Node('127.0.0.1:7000', {'XADD': moved, 'EXEC': redis.ResponseError(
        'EXECABORT Transaction discarded because of previous errors.')})
    b = Node('127.0.0.1:7001', {'EXEC': [[b'2-0']]})
    client = FakeCluster(a, b)
    client.after_refresh = b
    conn = ClusterDirectConnection(client, redis)
    assert conn.execute(*transaction(), key='s')[-1] == [b'2-0']
    assert client.refreshes == 1
    assert [c[0] for c in b.connections[0].sent[0]] == ['MULTI', 'XADD',
                                                        'EXEC']


def test_ask_sends_once_to_the_importing_node_after_asking():
    ask = redis.exceptions.AskError('7 127.0.0.1:7001')
    a = Node('127.0.0.1:7000', {'XREAD': [ask, b'from-a']})
    b = Node('127.0.0.1:7001', {'XREAD': b'from-b'})
    conn = ClusterDirectConnection(FakeCluster(a, b), redis)
    assert conn.call(('XREAD', 'STREAMS', 's', '0'), key='s') == b'from-b'
    assert b.connections[0].sent == [[('ASKING',),
                                      ('XREAD', 'STREAMS', 's', '0')]]
    # the slot map did not change: the next call goes to the owner
    assert conn.call(('XREAD', 'STREAMS', 's', '0'), key='s') == b'from-a'


def test_a_slot_that_keeps_moving_is_a_reply_worth_retrying_later():
    moved = redis.exceptions.MovedError('7 127.0.0.1:7000')
    a = Node('127.0.0.1:7000', {'XREAD': moved})
    client = FakeCluster(a)
    conn = ClusterDirectConnection(client, redis)
    with pytest.raises(redis.ResponseError, match='TRYAGAIN') as caught:
        conn.execute(('XREAD', 'STREAMS', 's', '0'), key='s')
    assert caught.value.args[0].startswith('TRYAGAIN')
    assert client.refreshes == cluster.MAX_REDIRECTIONS


def test_a_dead_primary_is_left_and_the_slot_map_refreshed():
    a = Node('127.0.0.1:7000')
    b = Node('127.0.0.1:7001', {'XREAD': b'from-b'})
    client = FakeCluster(a, b)
    conn = ClusterDirectConnection(client, redis)
    conn.call(('XREAD', 'STREAMS', 's', '0'), key='s')
    a.down = True
    with pytest.raises(redis.exceptions.ConnectionError):
        conn.call(('XREAD', 'STREAMS', 's', '0'), key='s')
    # the broken connection went back to its pool, closed
    assert a.released == a.connections and a.connections[0].disconnects
    client.after_refresh = b  # the replica was promoted
    conn.disconnect()  # what the supervisor does after a failure
    assert client.refreshes == 1
    assert conn.call(('XREAD', 'STREAMS', 's', '0'), key='s') == b'from-b'


def test_subscribers_are_counted_on_every_node():
    nodes = [Node(f'127.0.0.1:{7000 + i}') for i in range(3)]
    nodes[0].subscribers, nodes[2].subscribers = 2, 1
    client = FakeCluster(*nodes)
    errors = (redis.exceptions.ConnectionError,)
    assert cluster.count_subscribers(client, 'PUBSUB NUMSUB', 'c',
                                     errors) == 3
    nodes[0].stale = True  # a pooled connection died: asked again
    assert cluster.count_subscribers(client, 'PUBSUB NUMSUB', 'c',
                                     errors) == 3
    nodes[0].down = True  # its subscribers went with it
    assert cluster.count_subscribers(client, 'PUBSUB NUMSUB', 'c',
                                     errors) == 1
    for node in nodes:
        node.down = True
    with pytest.raises(redis.exceptions.ConnectionError):
        cluster.count_subscribers(client, 'PUBSUB NUMSUB', 'c', errors)


@pytest.mark.parametrize('url', [
    'redis+cluster://h:1', 'rediss+cluster://h:1,g:2', 'valkey+cluster://h:1',
    'REDIS+CLUSTER://h:1'])
def test_cluster_urls(url):
    assert cluster.is_cluster_url(url)


@pytest.mark.parametrize('url', [
    'redis://h:1', 'redis+sentinel://h:1', None, ''])
def test_other_urls(url):
    assert not cluster.is_cluster_url(url)


def test_a_url_gives_every_node_and_the_connection_arguments():
    url = ('redis+cluster://us%40r:p%3Ass@10.0.0.1:7000,[::1]:7001/'
           '?socket_keepalive=true')
    nodes, kwargs = cluster.parse_cluster_url(redis, url)
    assert nodes == [('10.0.0.1', 7000), ('::1', 7001)]
    assert kwargs['username'] == 'us@r' and kwargs['password'] == 'p:ss'
    assert kwargs['socket_keepalive'] is True
    assert 'ssl' not in kwargs and 'connection_class' not in kwargs


@pytest.mark.parametrize('module, url', [
    (redis, 'rediss+cluster://h:7000'), (valkey, 'valkeys+cluster://h:7000')])
def test_tls_cluster_urls(module, url):
    nodes, kwargs = cluster.parse_cluster_url(module, url)
    assert nodes == [('h', 7000)] and kwargs == {'ssl': True}


@pytest.mark.parametrize('url, message', [
    ('redis+cluster://h', "bad cluster node address 'h'"),
    ('redis+cluster://h:1,:2', "bad cluster node address ':2'"),
    ('redis+cluster://h:x', "bad cluster node address 'h:x'"),
    ('redis+cluster://h:1/3', "only database 0, not '3'")])
def test_wrong_cluster_urls_say_what_is_wrong(url, message):
    with pytest.raises(ValueError, match=message):
        cluster.parse_cluster_url(redis, url)


def test_a_client_library_too_old_for_a_cluster_is_refused():
    old = SimpleNamespace(__name__='redis', __version__='4.6.0')
    with pytest.raises(RuntimeError, match=r'redis >= 5\.0 \(installed: '
                                           r'4\.6\.0\)'):
        cluster.check_version(old)
    cluster.check_version(redis)
    cluster.check_version(valkey)
