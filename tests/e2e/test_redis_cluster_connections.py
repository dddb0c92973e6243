"""Every way of plugging a Redis Cluster in, and its layouts: a ready
cluster client object, the valkey client, sharded PUB/SUB, several streams
spread over the primaries; each proven by two real servers."""
from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from sio_redis_streams import RedisStreamsManager
from tests.e2e.test_connections import check_cluster
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster


def test_a_ready_cluster_client_object(shared_redis_cluster, server_factory,
                                       client_factory):
    [b] = server_factory(1, redis_url=shared_redis_cluster.url,
                         async_mode='threading')
    bob = client_factory(b.url, name='bob')
    host, port = shared_redis_cluster.startup_nodes[0]
    ready = RedisCluster(host=host, port=port, decode_responses=True)
    emitter = RedisStreamsManager(redis_client=ready, write_only=True)
    emitter.emit('from-client-object', [1, 2])
    assert emitter.flush(10)
    emitter.close()
    assert bob.wait_for(1, event='from-client-object') == [([1, 2],)]
    assert ready.ping() is True  # the given client is untouched
    ready.close()


def test_valkey_cluster(shared_redis_cluster, server_factory,
                        client_factory):
    valkey = pytest.importorskip('valkey')
    url = shared_redis_cluster.url.replace('redis+', 'valkey+')
    _, bob = check_cluster(server_factory, client_factory, url)
    emitter = RedisStreamsManager(url, write_only=True)
    assert emitter._driver.context.connector.module is valkey
    emitter.emit('from-valkey', 1)
    assert emitter.flush(10)
    emitter.close()
    host, port = shared_redis_cluster.startup_nodes[0]
    ready = valkey.cluster.ValkeyCluster(host=host, port=port)
    emitter = RedisStreamsManager(redis_client=ready, write_only=True)
    emitter.emit('from-valkey', 2)
    assert emitter.flush(10)
    emitter.close()
    ready.close()
    assert bob.wait_for(2, event='from-valkey') == [(1,), (2,)]


def test_sharded_pubsub_on_a_cluster(shared_redis_cluster, server_factory,
                                     client_factory):
    alice, _ = check_cluster(server_factory, client_factory,
                             shared_redis_cluster.url,
                             {'use_sharded_pubsub': True,
                              'heartbeat_interval': 0.5,
                              'heartbeat_timeout': 2})
    eventually(lambda: alice.cmd('live_servers') == 2)
    assert alice.cmd('server_count') == 2
    client = shared_redis_cluster.client()
    owner = client.get_node_from_key('socket.io#/#')
    assert client.pubsub_shardnumsub('socket.io#/#', target_nodes=owner) \
        == [('socket.io#/#', 2)]
    client.close()


def test_several_streams_spread_over_the_primaries(
        shared_redis_cluster, server_factory, client_factory):
    check_cluster(server_factory, client_factory, shared_redis_cluster.url,
                  {'stream_count': 3})
    client = shared_redis_cluster.client()
    owners = {}
    for stream in ('socket.io-1', 'socket.io-2', 'socket.io--1'):
        assert client.xlen(stream) > 0, stream
        owners[stream] = shared_redis_cluster.primary_for(stream).port
    client.close()
    # '/' and '/chat' (streams 2 and 1) live on different primaries
    assert len(set(owners.values())) >= 2, owners


def test_an_unreachable_cluster_fails_no_construction(server_factory):
    """A cluster client connects when it is made: the manager makes them
    at first use, so that it can be made, and keep emits, while Redis is
    away."""
    manager = RedisStreamsManager('redis+cluster://127.0.0.1:1',
                                  write_only=True, socket_timeout=0.5,
                                  close_timeout=0.5)
    manager.emit('kept', 1)
    assert manager._driver.writer.depth == 1
    assert not manager.flush(1)
    manager.close()
    with pytest.raises(redis.exceptions.ConnectionError,
                       match='cannot reach the Redis Cluster'):
        manager._driver.commands.ping()
