"""Every way of reaching Redis, and every stream/PUB/SUB layout: TLS, a
unix socket, the valkey client, Sentinel, a ready client object, sharded
PUB/SUB and several streams, each proven by a real two-server cluster."""
from __future__ import annotations

import shutil
import subprocess
import textwrap
import time

import pytest
import redis
from redis.sentinel import Sentinel

from sio_redis_streams import RedisStreamsManager
from tests.support.ports import free_port
from tests.support.waiting import eventually, settle

pytestmark = pytest.mark.cluster

NAMESPACES = ('/', '/chat', '/dashboard')


def check_cluster(server_factory, client_factory, redis_url, options=None,
                  async_mode='threading'):
    """Two servers on ``redis_url``: broadcasts in every namespace and an
    emit with callback (PUB/SUB) cross from one to the other."""
    a, b = server_factory(2, redis_url=redis_url, async_mode=async_mode,
                          options=options or {})
    alice = client_factory(a.url, NAMESPACES, name='alice')
    bob = client_factory(b.url, NAMESPACES, name='bob')
    for namespace in NAMESPACES:
        alice.cmd('emit', event='hi', args=[namespace, b'\x00'],
                  namespace=namespace)
        settle(alice, bob, namespace=namespace)
        assert bob.events('hi', namespace) == [(namespace, b'\x00')]
    assert alice.cmd('call', event='ack_me', to=bob.sid('/chat'),
                     args=[1], namespace='/chat') == ['ack', 'bob', 1]
    return alice, bob


def test_several_streams_route_each_namespace_like_node(
        redis_server, server_factory, client_factory):
    check_cluster(server_factory, client_factory, redis_server.url,
                  {'stream_count': 3, 'stream_name': 'ns'})
    raw = redis_server.client()
    namespaces_of = {
        stream: {fields[b'nsp'].decode()
                 for _, fields in raw.xrange(stream)}
        for stream in ('ns-0', 'ns-1', 'ns-2', 'ns--1', 'ns')}
    # the Java hashes of '/', '/chat' and '/dashboard' are 47, 46457863 and
    # -1694060731 (checked against Node in tests/unit/test_codec.py)
    assert namespaces_of == {'ns-0': set(), 'ns-1': {'/chat'},
                             'ns-2': {'/'}, 'ns--1': {'/dashboard'},
                             'ns': set()}


def test_sharded_pubsub(redis_server, server_factory, client_factory):
    alice, _ = check_cluster(server_factory, client_factory,
                             redis_server.url,
                             {'use_sharded_pubsub': True,
                              'heartbeat_interval': 0.5,
                              'heartbeat_timeout': 2})
    raw = redis_server.client()
    assert raw.pubsub_shardnumsub('socket.io#/#') == [(b'socket.io#/#', 2)]
    assert raw.pubsub_numsub('socket.io#/#') == [(b'socket.io#/#', 0)]
    eventually(lambda: alice.cmd('live_servers') == 2)


def test_valkey_client(redis_server, server_factory, client_factory):
    pytest.importorskip('valkey')
    url = redis_server.url.replace('redis://', 'valkey://')
    check_cluster(server_factory, client_factory, url)
    manager = RedisStreamsManager(url, write_only=True)
    assert manager._driver.context.connector.module.__name__ == 'valkey'
    manager.close()


def test_unix_socket(redis_factory, server_factory, client_factory,
                     tmp_path):
    path = tmp_path / 'redis.sock'
    server = redis_factory(extra_args=['--unixsocket', str(path),
                                       '--unixsocketperm', '700'])
    assert server.is_running
    check_cluster(server_factory, client_factory, f'unix://{path}?db=0')


@pytest.fixture
def tls_files(tmp_path):
    if shutil.which('openssl') is None:
        pytest.skip('openssl is not installed')

    def openssl(*args):
        subprocess.run(['openssl', *args], cwd=tmp_path, check=True,
                       capture_output=True)

    # the extensions that Python 3.13's strict verification requires
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
            'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca',
            '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key',
            '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
    (tmp_path / 'san.ext').write_text(
        'subjectAltName=IP:127.0.0.1\n'
        'keyUsage=critical,digitalSignature,keyEncipherment\n'
        'extendedKeyUsage=serverAuth\n'
        'subjectKeyIdentifier=hash\n'
        'authorityKeyIdentifier=keyid\n')
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey',
            'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2',
            '-extfile', 'san.ext')
    return tmp_path


def test_tls(redis_factory, server_factory, client_factory, tls_files):
    tls_port = free_port()
    redis_factory(extra_args=[
        '--tls-port', str(tls_port),
        '--tls-cert-file', str(tls_files / 'server.crt'),
        '--tls-key-file', str(tls_files / 'server.key'),
        '--tls-ca-cert-file', str(tls_files / 'ca.crt'),
        '--tls-auth-clients', 'no'])
    check_cluster(server_factory, client_factory,
                  f'rediss://127.0.0.1:{tls_port}/0',
                  {'redis_options': {'ssl_ca_certs':
                                     str(tls_files / 'ca.crt')}})


def test_sentinel(redis_server, server_factory, client_factory, tmp_path):
    port = free_port()
    config = tmp_path / 'sentinel.conf'
    config.write_text(textwrap.dedent(f'''\
        port {port}
        bind 127.0.0.1
        dir {tmp_path}
        sentinel monitor cache 127.0.0.1 {redis_server.port} 1
        '''))
    process = subprocess.Popen(
        ['redis-server', str(config), '--sentinel'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sentinel = Sentinel([('127.0.0.1', port)])
        deadline = time.monotonic() + 10
        while True:
            try:
                if sentinel.discover_master('cache'):
                    break
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, 'sentinel did not start'
            time.sleep(0.1)
        check_cluster(server_factory, client_factory,
                      f'redis+sentinel://127.0.0.1:{port}/0/cache')
    finally:
        process.terminate()
        process.wait(10)


def test_a_ready_client_object(redis_server, server_factory,
                               client_factory):
    [b] = server_factory(1, redis_url=redis_server.url,
                         async_mode='threading')
    bob = client_factory(b.url, name='bob')
    ready = redis.Redis(host='127.0.0.1', port=redis_server.port,
                        decode_responses=True, socket_timeout=30)
    emitter = RedisStreamsManager(redis_client=ready, write_only=True)
    emitter.emit('from-client-object', [1, 2])
    assert emitter.flush(10)
    emitter.close()
    assert bob.wait_for(1, event='from-client-object') == [([1, 2],)]
    # the manager made its own connections; the given client is untouched
    assert ready.ping() is True
    ready.close()
