"""Proofs that the Redis Cluster fixtures work: the topology they promise,
and the faults (kill, restart, pause, live resharding) they inflict."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.support.redis_cluster import (
    RedisClusterServers,
    ReusableRedisCluster,
)
from tests.support.redis_cluster_state import SLOT_COUNT

pytestmark = pytest.mark.cluster

# What the manager reads with stream_count=3 and the default stream_name
# (namespaces whose Java hash is negative also use socket.io--1 and --2).
DEFAULT_STREAMS = ('socket.io-0', 'socket.io-1', 'socket.io-2')


def _xadd_and_replicate(node, key: str, count: int) -> None:
    """XADD ``count`` entries on the primary ``node`` and wait until its
    replica has them, so that a failover cannot lose them."""
    with node.client() as direct:
        for n in range(count):
            direct.xadd(key, {'n': n})
        assert direct.execute_command('WAIT', 1, 5000) == 1


def test_three_primaries_with_a_replica_each_cover_every_slot(
    shared_redis_cluster,
):
    cluster = shared_redis_cluster
    primaries, replicas = cluster.primaries(), cluster.replicas()
    assert len(primaries) == 3 and len(replicas) == 3
    assert set(primaries) | set(replicas) == set(cluster.nodes)
    replicas_of = [cluster.replicas_of(primary) for primary in primaries]
    assert [len(r) for r in replicas_of] == [1, 1, 1]
    assert {r for [r] in replicas_of} == set(replicas)
    assert cluster.url == 'redis+cluster://' + ','.join(
        f'127.0.0.1:{p.port}' for p in primaries
    )
    with cluster.client() as client:
        info = client.cluster_info()
        assert info['cluster_state'] == 'ok'
        assert int(info['cluster_slots_ok']) == SLOT_COUNT
        assert int(info['cluster_known_nodes']) == 6
        client.set('greeting', 'hello')
        assert client.get('greeting') == 'hello'


def test_default_streams_spread_over_primaries(shared_redis_cluster):
    owners = {
        name: shared_redis_cluster.primary_for(name)
        for name in DEFAULT_STREAMS
    }
    assert len(set(owners.values())) >= 2, {
        name: (shared_redis_cluster.slot_of(name), node.port)
        for name, node in owners.items()
    }


def test_flush_empties_every_primary_and_replica(shared_redis_cluster):
    cluster = shared_redis_cluster
    with cluster.client() as client:
        for n in range(100):
            client.set(f'key-{n}', n)
    cluster.flush()
    for node in cluster.nodes:
        with node.client() as direct:
            assert direct.dbsize() == 0, node.name


def test_killed_primary_fails_over_and_rejoins_as_replica(
    redis_cluster, record_property
):
    cluster, key = redis_cluster, 'failover-stream'
    old = cluster.primary_for(key)
    [replica] = cluster.replicas_of(old)
    _xadd_and_replicate(old, key, 10)

    began = time.monotonic()
    cluster.kill(old)
    new = cluster.wait_failover(key, old, timeout=30)
    failover_seconds = time.monotonic() - began
    record_property('failover_seconds', round(failover_seconds, 2))
    print(f'failover took {failover_seconds:.2f} s')

    assert new is replica
    assert old not in cluster.primaries() and new in cluster.primaries()
    with cluster.client() as client:
        assert client.xlen(key) == 10

    cluster.restart(old)
    assert cluster.replicas_of(new) == [old]
    assert old in cluster.replicas() and len(cluster.primaries()) == 3
    with old.client() as direct:
        replication = direct.info('replication')
    assert replication['role'] == 'slave'
    assert replication['master_port'] == new.port
    assert replication['master_link_status'] == 'up'


def test_paused_primary_is_replaced_and_resumes_as_replica(redis_cluster):
    cluster, key = redis_cluster, 'paused-stream'
    old = cluster.primary_for(key)
    [replica] = cluster.replicas_of(old)

    cluster.pause(old)
    with old.client(socket_timeout=0.3) as frozen:
        with pytest.raises(redis.TimeoutError):
            frozen.ping()
    assert cluster.wait_failover(key, old, timeout=30) is replica

    cluster.resume(old)
    cluster.wait_stable(timeout=30)
    assert cluster.replicas_of(replica) == [old]
    assert cluster.primary_for(key) is replica


def test_move_slot_loses_no_write_made_meanwhile(redis_cluster):
    cluster = redis_cluster
    key = 'moving-stream{moved}'
    slot = cluster.slot_of(key)
    source = cluster.primary_for(key)
    target = next(p for p in cluster.primaries() if p is not source)
    client = cluster.client()
    # Other keys of the slot, so that MIGRATE runs many batches while the
    # stream is written to.
    for n in range(500):
        client.set(f'filler-{n}{{moved}}', n)

    acked: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        writer = cluster.client()
        try:
            while not stop.is_set():
                acked.append(writer.xadd(key, {'n': len(acked)}))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            writer.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        while len(acked) < 50 and thread.is_alive():
            time.sleep(0.01)
        before = len(acked)
        cluster.move_slot(slot, target, batch=10)
        during = len(acked) - before
        while len(acked) < before + during + 50 and thread.is_alive():
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(10)
    print(f'{during} XADDs acknowledged while the slot moved')

    try:
        assert not errors, errors
        assert during > 0
        assert cluster.primary_for(key) is target
        assert client.xlen(key) == len(acked)
        assert [id_ for id_, _ in client.xrange(key)] == acked
        assert client.get('filler-499{moved}') == '499'
    finally:
        client.close()


def test_reusable_cluster_is_replaced_once_changed(tmp_path):
    reusable = ReusableRedisCluster(tmp_path)
    try:
        first = reusable.acquire()
        with first.client() as client:
            client.set('left-behind', 1)
            assert reusable.acquire() is first
            assert client.dbsize() == 0
        first.pause(first.replicas()[0])
        second = reusable.acquire()
        assert second is not first
        assert not any(node.is_running for node in first.nodes)
        assert isinstance(second, RedisClusterServers)
    finally:
        reusable.close()
