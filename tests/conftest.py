"""Fixtures that start real Redis servers, TCP proxies, Socket.IO servers
and clients.

Options (each also settable through an environment variable):

* ``--async-modes`` / ``SIO_ASYNC_MODES`` (default
  ``threading,gevent,eventlet``)
  parametrizes the ``async_mode`` fixture;
* ``--frameworks`` / ``SIO_FRAMEWORKS`` (default ``socketio``) parametrizes
  ``framework`` (``socketio`` and/or ``flask``);
* ``--sio-manager`` / ``SIO_MANAGER`` (default ``streams``) picks the client
  manager of servers started by ``server_factory``: ``streams`` is the
  project's RedisStreamsManager, ``pubsub`` python-socketio's RedisManager.

A test can parametrize ``async_mode`` or ``framework`` itself to override the
option. Tests that start processes carry ``@pytest.mark.cluster``.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from pathlib import Path
from typing import (
    Any,
    Callable,
    Generator,
    Iterator,
    Protocol,
    Sequence,
)

import pytest

from tests.support.clients import RecordingClient
from tests.support.process_group import ProcessGroup
from tests.support.processes import ServerConfig, ServerProcess
from tests.support.redis_cluster import (
    RedisClusterServers,
    ReusableRedisCluster,
)
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

DEFAULT_TIMEOUT_SECONDS = 120
_PARAMETRIZED_OPTIONS = {
    # fixture name: (command-line option, environment variable, default)
    'async_mode': (
        '--async-modes',
        'SIO_ASYNC_MODES',
        'threading,gevent,eventlet',
    ),
    'framework': ('--frameworks', 'SIO_FRAMEWORKS', 'socketio'),
}


class LogSource(Protocol):
    """Anything whose logs are worth showing when a test fails."""

    name: str

    def logs(self) -> str: ...


_LOG_SOURCES = pytest.StashKey[list[LogSource]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup('sio-cluster', 'Socket.IO cluster tests')
    for fixture, (option, variable, default) in _PARAMETRIZED_OPTIONS.items():
        group.addoption(
            option,
            default=os.environ.get(variable, default),
            help=(
                f'comma-separated values of the {fixture!r} fixture '
                f'(env {variable}, default {default})'
            ),
        )
    group.addoption(
        '--sio-manager',
        default=os.environ.get('SIO_MANAGER', 'streams'),
        choices=('streams', 'pubsub'),
        help='manager of started servers (env SIO_MANAGER, default streams)',
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers',
        'cluster: starts real processes (redis-server, Socket.IO servers)',
    )
    config.addinivalue_line(
        'markers',
        'interop: runs Node.js servers or clients from tests/node',
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, (option, _, _) in _PARAMETRIZED_OPTIONS.items():
        if fixture in metafunc.fixturenames and not _parametrized_by_test(
            metafunc, fixture
        ):
            values = [
                value.strip()
                for value in metafunc.config.getoption(option).split(',')
                if value.strip()
            ]
            metafunc.parametrize(fixture, values)


def _parametrized_by_test(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers('parametrize'):
        names = marker.args[0]
        if isinstance(names, str):
            names = names.split(',')
        if name in (n.strip() for n in names):
            return True
    return False


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # A marker rather than config, so that --timeout, PYTEST_TIMEOUT and
    # the ini file still win.
    if not config.pluginmanager.hasplugin('timeout'):
        return
    if (
        config.getoption('timeout') is not None
        or os.environ.get('PYTEST_TIMEOUT')
        or config.getini('timeout')
    ):
        return
    for item in items:
        if item.get_closest_marker('timeout') is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT_SECONDS))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for source in item.stash.get(_LOG_SOURCES, []):
            report.sections.append((f'logs of {source.name}', source.logs()))
    return report


def _attach_logs(request: pytest.FixtureRequest, source: LogSource) -> None:
    request.node.stash.setdefault(_LOG_SOURCES, []).append(source)


@pytest.fixture(scope='session', autouse=True)
def _reap_leftover_processes() -> Iterator[None]:
    """Last resort: kill any process group a crashed fixture did not stop."""
    yield
    ProcessGroup.kill_all()


@pytest.fixture(scope='session')
def manager_kind(pytestconfig: pytest.Config) -> str:
    """``streams`` or ``pubsub``: the manager of started servers, unless a
    test says otherwise."""
    return pytestconfig.getoption('--sio-manager')


class RedisFactory(Protocol):
    """Signature of the ``redis_factory`` fixture."""

    def __call__(
        self, *, appendonly: bool = True, extra_args: Sequence[str] = ()
    ) -> RedisServer: ...


@pytest.fixture
def redis_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[RedisFactory]:
    """Start Redis servers (AOF on by default); all stop at teardown."""
    servers: list[RedisServer] = []
    numbers = itertools.count()

    def start(
        *, appendonly: bool = True, extra_args: Sequence[str] = ()
    ) -> RedisServer:
        server = RedisServer(
            appendonly=appendonly,
            extra_args=extra_args,
            workdir=tmp_path / f'redis-{next(numbers)}',
        )
        servers.append(server)
        _attach_logs(request, server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def redis_server(redis_factory: RedisFactory) -> RedisServer:
    """A fresh Redis server with the AOF on (fsync always)."""
    return redis_factory()


def _attach_cluster_logs(
    request: pytest.FixtureRequest, cluster: RedisClusterServers | None
) -> None:
    for node in cluster.nodes if cluster is not None else ():
        _attach_logs(request, node)


@pytest.fixture(params=['redis', 'redis-cluster'])
def redis_deployment(request: pytest.FixtureRequest) -> Any:
    """Each test runs on a single Redis (``redis_server``) and on a Redis
    Cluster (``shared_redis_cluster``); both have a ``url``."""
    if request.param == 'redis':
        return request.getfixturevalue('redis_server')
    return request.getfixturevalue('shared_redis_cluster')


@pytest.fixture
def redis_cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[RedisClusterServers]:
    """A Redis Cluster of this test's own (3 primaries, 3 replicas, AOF on),
    stable when the test begins: for tests that kill, pause, restart or
    reshard nodes. Starting one takes about 2 s."""
    cluster = RedisClusterServers(tmp_path / 'redis-cluster')
    try:
        cluster.start()
    finally:
        _attach_cluster_logs(request, cluster)
    yield cluster
    cluster.close()


@pytest.fixture(scope='session')
def _reusable_redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ReusableRedisCluster]:
    reusable = ReusableRedisCluster(tmp_path_factory.mktemp('redis-cluster'))
    yield reusable
    reusable.close()


@pytest.fixture
def shared_redis_cluster(
    request: pytest.FixtureRequest,
    _reusable_redis_cluster: ReusableRedisCluster,
) -> RedisClusterServers:
    """A Redis Cluster like ``redis_cluster`` but shared by the tests that
    only need one: flushed before each test (milliseconds), started again
    only when an earlier test left it changed. A test that reconfigures
    nodes (CONFIG SET) takes ``redis_cluster`` instead."""
    try:
        return _reusable_redis_cluster.acquire()
    finally:
        _attach_cluster_logs(request, _reusable_redis_cluster.cluster)


class ProxyFactory(Protocol):
    """Signature of the ``tcp_proxy_factory`` fixture."""

    def __call__(
        self, target_port: int, target_host: str = '127.0.0.1'
    ) -> TcpProxy: ...


@pytest.fixture
def tcp_proxy_factory() -> Iterator[ProxyFactory]:
    """Start TCP proxies in front of a port; all are stopped at teardown."""
    proxies: list[TcpProxy] = []

    def start(target_port: int, target_host: str = '127.0.0.1') -> TcpProxy:
        proxy = TcpProxy(target_host, target_port)
        proxies.append(proxy)
        proxy.start()
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


class ServerFactory(Protocol):
    """Signature of the ``server_factory`` fixture."""

    def __call__(
        self,
        count: int = 1,
        *,
        redis_url: str,
        async_mode: str,
        framework: str = 'socketio',
        manager: str | None = None,
        options: dict[str, Any] | None = None,
        names: Sequence[str] | None = None,
        log_level: str = 'WARNING',
    ) -> list[ServerProcess]: ...


@pytest.fixture
def server_factory(
    request: pytest.FixtureRequest, tmp_path: Path, manager_kind: str
) -> Iterator[ServerFactory]:
    """Start ``count`` cluster_app servers in parallel; wait until all are
    READY.

    Names default to A, B, C... (continuing across calls); ``manager``
    defaults to the ``--sio-manager`` option. Every server is stopped at
    teardown, and its logs are added to the report of a failed test.
    """
    started: list[ServerProcess] = []
    default_names = (chr(ord('A') + i) for i in itertools.count())

    def start(
        count: int = 1,
        *,
        redis_url: str,
        async_mode: str,
        framework: str = 'socketio',
        manager: str | None = None,
        options: dict[str, Any] | None = None,
        names: Sequence[str] | None = None,
        log_level: str = 'WARNING',
    ) -> list[ServerProcess]:
        names = (
            list(names)
            if names is not None
            else [next(default_names) for _ in range(count)]
        )
        if len(names) != count:
            raise ValueError(f'{count} servers but {len(names)} names')
        batch = [
            ServerProcess(
                ServerConfig(
                    redis_url=redis_url,
                    name=name,
                    async_mode=async_mode,
                    framework=framework,
                    manager=manager or manager_kind,
                    options=dict(options or {}),
                    log_level=log_level,
                ),
                log_dir=tmp_path / 'servers',
            )
            for name in names
        ]
        for server in batch:
            started.append(server)
            _attach_logs(request, server)
            server.launch()
        for server in batch:
            server.wait_ready()
        return batch

    yield start
    # SIGTERM all first: servers may take a while to shut down.
    for server in started:
        server.send_signal(signal.SIGTERM)
    for server in started:
        server.stop()


ClientFactory = Callable[..., RecordingClient]


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    """Connect RecordingClients:
    ``client_factory(url, namespaces=('/',), name=None, **client_options)``.

    Every client is shut down at teardown.
    """
    clients: list[RecordingClient] = []
    numbers = itertools.count(1)

    def connect(
        url: str,
        namespaces: Sequence[str] = ('/',),
        name: str | None = None,
        **client_options: Any,
    ) -> RecordingClient:
        client = RecordingClient(
            name or f'client-{next(numbers)}', **client_options
        )
        clients.append(client)
        client.connect(url, namespaces)
        return client

    yield connect
    # in parallel: a client may wait 3 s for the close frame of a threading
    # server
    closers = [threading.Thread(target=c.close, daemon=True) for c in clients]
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join(15)
