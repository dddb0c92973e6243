"""Redis clients for the manager's roles, and how to wait between retries.

Each role (the XREAD reader of a stream, the PUB/SUB subscriber, the writer
and publisher) gets a client with its own connection pool, so that a blocking
XREAD never holds a connection another role needs, and each can have the
socket timeout that suits it. Automatic retries of the client library are
turned off: a retried XADD whose first attempt reached Redis would add the
entry twice, so the writer decides itself what to resend.
"""
from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlparse

from ..options import Options, url_servers
from . import cluster
from .direct import DirectConnection, DirectSender

#: Error replies after which the same command can succeed later: Redis is
#: loading its data, failing over, or short of memory. The client library
#: turns most of them into these classes and strips their prefix...
TRANSIENT_ERROR_CLASSES = ('BusyLoadingError', 'ReadOnlyError',
                           'OutOfMemoryError', 'TryAgainError',
                           'ClusterDownError', 'AskError')  # MOVED too
#: ...the others keep it (a pipeline puts its own words in front).
TRANSIENT_ERROR_PREFIXES = ('LOADING', 'BUSY', 'READONLY', 'MASTERDOWN',
                            'TRYAGAIN', 'CLUSTERDOWN', 'OOM', 'NOREPLICAS',
                            'UNBLOCKED')
_PIPELINE_ERROR_MARK = ' of pipeline caused error: '


#: Connection arguments that a pool of redis-py 8 adds for itself: copied
#: into a new pool, they would contradict the arguments set here.
_POOL_MANAGED_KWARGS = ('maint_notifications', 'orig_', 'himport_registry')

#: The connections of a client many tasks share (see ``shared``).
SHARED_POOL_SIZE = 50
#: How long (seconds) a task of a shared client waits for a free connection
#: at least. Each command holds one for a round trip only, but in a
#: reconnect storm of 500 clients under eventlet, with the sequence still
#: being delivered, waits over 5 s were seen (and those clients then got
#: new sessions); 15 s stays under the 20 s a Socket.IO client waits for
#: its connection to be accepted.
SHARED_POOL_WAIT = 15.0


class RedisConnector:
    """Makes the Redis (or Valkey) clients of one manager.

    :param options: the manager's options; ``url`` or ``redis_client`` says
                    where Redis is, ``redis_options`` adds keyword arguments
                    for the client library.
    :param name: the start of the name each connection gives itself (CLIENT
                 SETNAME), so that an operator can tell them apart.
    """

    def __init__(self, options: Options, name: str) -> None:
        self._options = options
        self._name = name
        self._clients: List[Any] = []
        if options.redis_client is not None:
            self.module = _module_of(options.redis_client)
            #: the clients are Redis Cluster clients
            self.cluster = cluster.is_cluster_client(options.redis_client)
        else:
            self.module, self._url = _module_for_url(options.url)
            self.cluster = cluster.is_cluster_url(options.url)
        if self.cluster:
            cluster.check_version(self.module)
        exceptions = self.module.exceptions
        # a cluster client that reaches no node raises this, which is not
        # even a RedisError
        cluster_error = getattr(exceptions, 'RedisClusterException', None) \
            or getattr(exceptions, 'ValkeyClusterException', None)
        unreachable = (cluster_error,) if self.cluster and cluster_error \
            else ()
        #: Errors that mean the connection is unusable: reconnect and retry.
        self.connection_errors: Tuple[type, ...] = (
            exceptions.ConnectionError, exceptions.TimeoutError, OSError,
            *unreachable)
        #: An error reply from Redis to one command.
        self.response_error: type = exceptions.ResponseError
        #: What Redis going away or refusing looks like: anything else a
        #: task meets is a bug, and logged with its traceback.
        self.expected_errors: Tuple[type, ...] = \
            self.connection_errors + (self.response_error,)
        #: Every error of the client library.
        self.error: Tuple[type, ...] = (
            getattr(exceptions, 'RedisError', None) or
            getattr(exceptions, 'ValkeyError'), *unreachable)
        self._transient_errors = tuple(
            getattr(exceptions, name) for name in TRANSIENT_ERROR_CLASSES
            if hasattr(exceptions, name))

    def client(self, role: str, socket_timeout: Optional[float],
               on_connect: Optional[Callable[[Any], None]] = None,
               shared: bool = False) -> Any:
        """A new client with its own pool for ``role``, whose reads give up
        after ``socket_timeout`` seconds (``None``: never).

        :param on_connect: replaces the hand-shake of each new connection
                           of the client; it must call the connection's
                           ``on_connect()`` itself.
        :param shared: many tasks use the client at once (a reconnect storm
                       restores hundreds of sessions together): its pool
                       holds :data:`SHARED_POOL_SIZE` connections, and a
                       task waits for a free one (:data:`SHARED_POOL_WAIT`)
                       rather than fail.
        """
        overrides = self._role_kwargs(role, socket_timeout)
        if on_connect is not None:  # redis_connect_func, valkey_connect_func
            overrides[f'{self.module.__name__}_connect_func'] = on_connect
        if self.cluster:
            client = self._cluster_client(overrides)
            self._clients.append(client)
            return client
        pool_kwargs: Dict[str, Any] = {}
        if shared:
            pool_kwargs = {'max_connections': SHARED_POOL_SIZE,
                           'timeout': max(self._options.socket_timeout,
                                          SHARED_POOL_WAIT)}
        if self._options.redis_client is not None:
            client = self._clone(self._options.redis_client, overrides,
                                 pool_kwargs)
        elif urlparse(self._url).scheme.endswith('+sentinel'):
            client = self._sentinel_client(overrides)
        else:
            kwargs = dict(self._options.redis_options)
            kwargs.update(overrides)
            pool_class = self.module.BlockingConnectionPool if shared \
                else self.module.ConnectionPool
            client = self._client_class()(connection_pool=pool_class.from_url(
                self._url, **kwargs, **pool_kwargs))
        self._clients.append(client)
        return client

    def direct(self, role: str, socket_timeout: Optional[float],
               on_connect: Optional[Callable[[Any], None]] = None
               ) -> DirectSender:
        """The held connection(s) of a new client for ``role`` (arguments
        as :meth:`client`), for a task that sends its commands itself: a
        :class:`~sio_redis_streams.sync.direct.DirectConnection`, or on a
        cluster a
        :class:`~sio_redis_streams.sync.cluster.ClusterDirectConnection`.
        """
        client = self.client(role, socket_timeout, on_connect)
        if self.cluster:
            return cluster.ClusterDirectConnection(client, self.module)
        return DirectConnection(client, self.response_error)

    def is_transient(self, error: BaseException) -> bool:
        """Tell whether an error reply may go away if the command is sent
        again later."""
        if isinstance(error, self._transient_errors):
            return True
        reply = str(error).rpartition(_PIPELINE_ERROR_MARK)[2]
        return reply.upper().startswith(TRANSIENT_ERROR_PREFIXES)

    def disconnect(self, client: Any) -> None:
        """Close the connections of a client made here, as a task does
        after a failure (on a cluster, the slot map is refreshed too)."""
        if self.cluster:
            cluster.disconnect(client)
        else:
            client.connection_pool.disconnect()

    def close(self) -> None:
        """Close every connection of every client made here."""
        for client in self._clients:
            try:
                if self.cluster:
                    client.disconnect_connection_pools()
                else:
                    client.connection_pool.disconnect()
            except Exception:  # closing is best effort
                pass
        self._clients.clear()

    def _client_class(self) -> Any:
        return getattr(self.module, 'Redis', None) or \
            getattr(self.module, 'Valkey')

    def _role_kwargs(self, role: str,
                     socket_timeout: Optional[float]) -> Dict[str, Any]:
        retry_module = importlib.import_module(self.module.__name__ + '.retry')
        backoff_module = importlib.import_module(
            self.module.__name__ + '.backoff')
        connect_timeout = self._options.socket_timeout
        return {
            'socket_timeout': socket_timeout,
            'socket_connect_timeout': connect_timeout,
            'decode_responses': False,
            'retry': retry_module.Retry(backoff_module.NoBackoff(), 0),
            'retry_on_timeout': False,
            'protocol': 2,
            # CLIENT SETNAME refuses spaces (a stream name may have some)
            'client_name': re.sub(r'\s', '_', f'{self._name}:{role}'),
        }

    def _clone(self, client: Any, overrides: Dict[str, Any],
               pool_kwargs: Dict[str, Any]) -> Any:
        pool = client.connection_pool
        kwargs = {key: value for key, value in pool.connection_kwargs.items()
                  if not key.startswith(_POOL_MANAGED_KWARGS)}
        kwargs.update(overrides)
        sentinel = getattr(pool, 'sentinel_manager', None)
        if sentinel is not None:
            new_pool = type(pool)(pool.service_name, sentinel,
                                  connection_class=pool.connection_class,
                                  **kwargs)
        else:
            pool_class = self.module.BlockingConnectionPool if pool_kwargs \
                else self.module.ConnectionPool
            new_pool = pool_class(connection_class=pool.connection_class,
                                  **kwargs, **pool_kwargs)
        return self._client_class()(connection_pool=new_pool)

    def _cluster_client(self, overrides: Dict[str, Any]) -> Any:
        remap = None
        if self._options.redis_client is not None:
            nodes, kwargs, remap = cluster.description_of(
                self._options.redis_client)
        else:
            nodes, kwargs = cluster.parse_cluster_url(self.module, self._url)
            kwargs.update(self._options.redis_options)
            remap = kwargs.pop('address_remap', None)
        kwargs = {key: value for key, value in kwargs.items()
                  if not key.startswith(_POOL_MANAGED_KWARGS)}
        kwargs.update(overrides)
        kwargs.pop('retry_on_timeout')  # a cluster client retries itself
        return cluster.LazyClusterClient(
            lambda: cluster.cluster_client(self.module, nodes, kwargs, remap),
            self.connection_errors[0])

    def _sentinel_client(self, overrides: Dict[str, Any]) -> Any:
        sentinels, service, url_kwargs = parse_sentinel_url(self._url)
        kwargs = dict(self._options.redis_options)
        kwargs.update(url_kwargs)
        sentinel_kwargs = kwargs.pop('sentinel_kwargs', None)
        sentinel = self.module.sentinel.Sentinel(
            sentinels, sentinel_kwargs=sentinel_kwargs, **kwargs)
        return sentinel.master_for(service, **overrides)


def parse_sentinel_url(url: str) -> Tuple[List[Tuple[str, int]], str,
                                          Dict[str, Any]]:
    """Split ``redis+sentinel://[user:pass@]h1:p1,h2:p2[/db[/service]]``
    into the sentinel addresses, the service name and client arguments."""
    parsed = urlparse(url)
    sentinels, kwargs = url_servers(url, 'sentinel')
    parts = [p for p in parsed.path.split('/') if p]
    if parts:
        if not parts[0].isdigit():
            raise ValueError(f'url: bad database number {parts[0]!r}')
        kwargs['db'] = int(parts[0])
    service = parts[1] if len(parts) > 1 else 'mymaster'
    return sentinels, service, kwargs


def _module_for_url(url: str) -> Tuple[ModuleType, str]:
    scheme = urlparse(url).scheme.lower()
    family = scheme.split('+', 1)[0]
    if family in ('valkey', 'valkeys'):
        try:
            return importlib.import_module('valkey'), url
        except ImportError:
            # a Valkey server speaks the Redis protocol: redis-py will do
            return _import_redis(), 'redis' + url[len('valkey'):]
    if family == 'unix':
        try:
            return _import_redis(), url
        except RuntimeError:
            return importlib.import_module('valkey'), url
    return _import_redis(), url


def _import_redis() -> ModuleType:
    try:
        return importlib.import_module('redis')
    except ImportError:  # pragma: no cover
        raise RuntimeError('the redis package is not installed '
                           '(pip install redis)') from None


def _module_of(client: Any) -> ModuleType:
    return importlib.import_module(type(client).__module__.split('.')[0])


def describe_error(error: BaseException) -> str:
    """An error as a log line shows it: the class tells what the reply was
    where the client library stripped its prefix (OOM, LOADING...)."""
    return f'{type(error).__name__}: {error}' if str(error) \
        else type(error).__name__
