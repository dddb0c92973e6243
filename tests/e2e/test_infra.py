"""Proofs that the test infrastructure itself works, using python-socketio's
pub/sub RedisManager as the manager (independent of the project package)."""

from __future__ import annotations

import time

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

pytestmark = pytest.mark.cluster

PUBSUB_CHANNEL = 'socketio'  # python-socketio RedisManager's default channel


def _wait_until(
    condition, timeout: float = 10.0, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f'condition not met within {timeout}s')
        time.sleep(interval)


def _no_retry_client(url: str, socket_timeout: float) -> redis.Redis:
    # Without retries every interruption surfaces as an exception.
    return redis.Redis.from_url(
        url, socket_timeout=socket_timeout, retry=Retry(NoBackoff(), 0)
    )


@pytest.mark.parametrize('framework', ['socketio', 'flask'])
def test_cross_server_emit_and_call(
    redis_server, server_factory, client_factory, async_mode, framework
):
    server_a, server_b = server_factory(
        2,
        redis_url=redis_server.url,
        async_mode=async_mode,
        framework=framework,
        manager='pubsub',
    )
    client_a = client_factory(
        server_a.url, namespaces=('/', '/chat'), name='alice'
    )
    client_b = client_factory(
        server_b.url, namespaces=('/', '/chat'), name='bob'
    )
    assert client_a.cmd('ping')['name'] == 'A'
    assert client_b.cmd('ping')['name'] == 'B'
    assert requests.get(f'{server_b.url}/health', timeout=5).text == 'ok'

    # RedisManager subscribes when its server gets its first client; messages
    # published before both subscriptions exist would be lost.
    raw = redis_server.client()
    _wait_until(
        lambda: (
            dict(raw.pubsub_numsub(PUBSUB_CHANNEL))[PUBSUB_CHANNEL.encode()]
            == 2
        )
    )
    raw.close()

    assert client_a.cmd('emit', event='news', args=['hello', 1]) == {
        'ok': True
    }
    assert client_b.wait_for(1, event='news') == [('hello', 1)]
    assert client_a.wait_for(1, event='news') == [('hello', 1)]

    client_a.cmd('emit', event='bare', args=[], namespace='/chat')
    assert client_b.wait_for(1, event='bare', namespace='/chat') == [()]

    answer = client_a.cmd(
        'call',
        event='ack_me',
        to=client_b.sid('/chat'),
        args=['x'],
        namespace='/chat',
    )
    assert answer == ['ack', 'bob', 'x']

    assert [server.stop() for server in (server_a, server_b)] == [0, 0]


def test_proxy_cut_and_restore(redis_server, tcp_proxy_factory):
    proxy = tcp_proxy_factory(redis_server.port)
    client = _no_retry_client(proxy.url, socket_timeout=2)
    assert client.ping()
    assert proxy.connection_count == 1

    proxy.cut()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert proxy.connection_count == 0

    proxy.restore()
    assert client.ping()
    assert proxy.connection_count == 1
    client.close()


def test_proxy_blackhole_and_restore(redis_server, tcp_proxy_factory):
    proxy = tcp_proxy_factory(redis_server.port)
    client = _no_retry_client(proxy.url, socket_timeout=0.5)
    assert client.set('key', 'before')

    proxy.blackhole()
    with pytest.raises(redis.TimeoutError):
        client.get('key')
    with pytest.raises(redis.TimeoutError):
        client.get('key')  # also a connection opened during the partition
    assert proxy.connection_count >= 1

    proxy.restore()
    _wait_until(lambda: proxy.connection_count == 0)
    assert client.get('key') == b'before'
    client.close()


def test_redis_kill_and_restart_keeps_stream(redis_server):
    client = redis_server.client()
    ids = [client.xadd('stream', {'n': n}) for n in range(3)]
    client.close()
    port = redis_server.port

    redis_server.kill()
    assert not redis_server.is_running
    redis_server.restart()

    assert redis_server.port == port
    client = redis_server.client()
    assert [entry_id for entry_id, _ in client.xrange('stream')] == ids
    client.close()
