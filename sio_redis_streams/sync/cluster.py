"""Redis Cluster (and Valkey cluster): its clients, and held connections
that follow the slot of each stream.

A cluster client is made for each role from the same description as the
other clients: a ``redis+cluster://h1:p1,h2:p2`` URL (any one reachable
node is enough to find the others) or a cluster client of the user's. Each
stream is one key, so every command the reader or the writer sends touches
one slot; the writer's MULTI/EXEC is sent to the primary of that slot.

A slot map can go stale in two ways, and both are followed here: the slot
moved (a reshard, or a failed primary came back as a replica), which Redis
answers with MOVED or ASK; or the primary is gone, which no node answers
at all. The client library refreshes its map on the first only, so after
any failure the map is refreshed from the other nodes before the next
attempt: that is what lets a reader find the promoted replica.
"""
from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlparse

from ..core.commands import Command
from ..options import url_servers
from .direct import DirectSender, checkout, exchange

#: How many MOVED or ASK replies one call follows before it gives up (a
#: slot keeps moving: the supervisor retries after a pause).
MAX_REDIRECTIONS = 5

#: The schemes of a cluster URL (``valkey`` ones use the valkey package
#: where installed).
CLUSTER_SCHEMES = ('redis+cluster', 'rediss+cluster', 'valkey+cluster',
                   'valkeys+cluster')

#: The oldest client library versions whose cluster client has what this
#: package uses (sharded PUB/SUB over the nodes, commands sent to chosen
#: nodes).
MINIMUM_VERSIONS = {'redis': (5, 0), 'valkey': (6, 0)}


def is_cluster_url(url: Optional[str]) -> bool:
    """Whether ``url`` names a Redis Cluster."""
    return bool(url) and urlparse(url).scheme.lower() in CLUSTER_SCHEMES


def is_cluster_client(client: Any) -> bool:
    """Whether ``client`` is a cluster client (redis-py or valkey)."""
    return hasattr(client, 'nodes_manager')


def check_version(module: ModuleType) -> None:
    """:raises RuntimeError: the client library is too old for a cluster."""
    minimum = MINIMUM_VERSIONS.get(module.__name__)
    version = getattr(module, '__version__', '0')
    found = tuple(int(part) for part in version.split('.')[:2]
                  if part.isdigit())
    if minimum and found < minimum:
        raise RuntimeError(
            f'a Redis Cluster needs {module.__name__} >= '
            f'{".".join(map(str, minimum))} (installed: {version})')


def parse_cluster_url(module: ModuleType, url: str
                      ) -> Tuple[List[Tuple[str, int]], Dict[str, Any]]:
    """Split ``redis+cluster://[user:pass@]h1:p1,h2:p2[/][?query]`` into
    the startup nodes and the connection arguments (TLS for ``rediss``,
    credentials, the query's arguments as the client library reads them).

    :raises ValueError: a node address or the database is wrong.
    """
    parsed = urlparse(url)
    nodes, credentials = url_servers(url, 'cluster node')
    database = parsed.path.strip('/')
    if database not in ('', '0'):
        raise ValueError(f'url: a Redis Cluster has only database 0, not '
                         f'{database!r}')
    # the query, read by the client library as for one server, gives the
    # other arguments
    tls = parsed.scheme.lower().startswith(('rediss', 'valkeys'))
    scheme = ('valkey' if module.__name__ == 'valkey' else 'redis') + \
        ('s' if tls else '')
    kwargs = module.connection.parse_url(
        f'{scheme}://localhost/0{"?" + parsed.query if parsed.query else ""}')
    for key in ('host', 'port', 'db', 'path'):
        kwargs.pop(key, None)
    kwargs.update(credentials)
    if tls:  # a cluster client makes its connections itself
        kwargs.pop('connection_class', None)
        kwargs['ssl'] = True
    return nodes, kwargs


def cluster_client(module: ModuleType, nodes: List[Tuple[str, int]],
                   kwargs: Dict[str, Any],
                   address_remap: Any = None) -> Any:
    """A new cluster client of ``module`` that starts from ``nodes``."""
    cluster = importlib.import_module(module.__name__ + '.cluster')
    client_class = getattr(cluster, 'RedisCluster', None) or \
        getattr(cluster, 'ValkeyCluster')
    extra = {'address_remap': address_remap} if address_remap else {}
    return client_class(
        startup_nodes=[cluster.ClusterNode(host, port)
                       for host, port in nodes],
        require_full_coverage=False, **extra, **kwargs)


class LazyClusterClient:
    """A cluster client made at its first use. A cluster client connects
    as soon as it is made, to learn the slot map; a manager must be made,
    and keep what is emitted in its outbox, while Redis is away.

    :param make: makes the client.
    :param connection_error: raised, with the reason, while no node can be
                             reached (so that tasks retry, as for any lost
                             connection).
    """

    def __init__(self, make: Callable[[], Any],
                 connection_error: type) -> None:
        self._make = make
        self._connection_error = connection_error
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The cluster client, made now if it was not yet."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._make()
                    except Exception as exc:
                        raise self._connection_error(
                            f'cannot reach the Redis Cluster: {exc}'
                        ) from exc
        return self._client

    def disconnect_connection_pools(self) -> None:
        """Close its connections (nothing to do if it was never made)."""
        if self._client is not None:
            self._client.disconnect_connection_pools()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def description_of(client: Any) -> Tuple[List[Tuple[str, int]],
                                         Dict[str, Any], Any]:
    """What a new client like the user's ``client`` needs: the nodes it
    knows, its connection arguments and its address translation."""
    manager = client.nodes_manager
    nodes = [(node.host, node.port) for node in client.get_nodes()] or \
        [(node.host, node.port) for node in manager.startup_nodes.values()]
    kwargs = {key: value for key, value in manager.connection_kwargs.items()
              if key not in ('host', 'port', 'retry')}
    return nodes, kwargs, getattr(manager, 'address_remap', None)


def count_subscribers(client: Any, command: str, channel: str,
                      connection_errors: Tuple[type, ...]) -> int:
    """The sum over every node of ``command`` (``PUBSUB NUMSUB`` or
    ``PUBSUB SHARDNUMSUB``) for ``channel``. A node that cannot be reached
    has no subscriber left (their connections broke with it); if none can,
    the error is raised.
    """
    # a client that lost nodes from its map while they were unreachable
    # (redis-py 5 does) would count too few: ask for the whole map first
    refresh(client)
    total, reached, error = 0, 0, None
    for node in client.get_nodes():
        # a pooled connection may have died with a network cut: the first
        # attempt finds out, the second connects afresh
        for _ in range(2):
            try:
                reply = client.execute_command(command, channel,
                                               target_nodes=node)
            except connection_errors as exc:
                error = exc
                continue
            reached += 1
            total += sum(int(count) for _, count in reply)
            break
    if not reached and error is not None:
        raise error
    return total


def disconnect(client: Any) -> None:
    """Close the connections of a cluster client and refresh its slot map
    (best effort: the next command tries again)."""
    try:
        client.disconnect_connection_pools()
    except Exception:  # closing is best effort
        pass
    refresh(client)


def refresh(client: Any) -> None:
    """Ask the live nodes where every slot is now."""
    try:
        client.nodes_manager.initialize()
    except Exception:  # no node answers: the next attempt will ask again
        pass


class ClusterDirectConnection(DirectSender):
    """Sends commands on held connections to the primaries of a cluster,
    each call to the primary that serves its key, and reads the replies
    raw; follows MOVED (the slot map is refreshed) and ASK (the commands go
    once to the importing node, after ASKING).

    :param client: a cluster client used by this task only.
    :param module: its client library (redis or valkey).
    """

    def __init__(self, client: Any, module: ModuleType) -> None:
        self._client = client
        exceptions = module.exceptions
        self._response_error = exceptions.ResponseError
        self._ask_error: type = exceptions.AskError  # MOVED is one too
        self._moved_error: type = exceptions.MovedError
        # node name: (its pool, the connection held)
        self._connections: Dict[str, Tuple[Any, Any]] = {}
        self._last: Any = None

    def execute(self, *commands: Command, key: Optional[str] = None
                ) -> List[Any]:
        """Send ``commands``, which touch ``key`` only, in one write to
        the node that serves it; the replies in order, error replies as
        instances (see
        :meth:`~sio_redis_streams.sync.direct.DirectConnection.execute`).
        """
        if key is None:
            raise ValueError('a command on a Redis Cluster needs its key')
        slot = self._client.keyslot(key)
        asking: Any = None
        for _ in range(MAX_REDIRECTIONS):
            node = asking or self._client.nodes_manager.get_node_from_slot(
                slot)
            sent = (('ASKING',),) + commands if asking else commands
            replies = self._send(node, sent)
            if asking:
                replies = replies[1:]
            redirect = next((reply for reply in replies
                             if isinstance(reply, self._ask_error)), None)
            if redirect is None:
                return replies
            if isinstance(redirect, self._moved_error):
                asking = None
                refresh(self._client)
            else:
                asking = self._node_at(redirect.host, redirect.port)
        raise self._response_error(
            f'TRYAGAIN slot {slot} of {key!r} kept moving')

    def disconnect(self) -> None:
        """Drop every held connection and refresh the slot map: after a
        failure, the primary may have changed."""
        for name in list(self._connections):
            self._drop(name)
        disconnect(self._client)

    @property
    def socket(self) -> Optional[Any]:
        """The socket of the connection used last, while connected."""
        return getattr(self._last, '_sock', None)

    def _send(self, node: Any, commands: Tuple[Command, ...]) -> List[Any]:
        held = self._connections.get(node.name)
        if held is None:
            pool = self._node_client(node).connection_pool
            held = self._connections[node.name] = (pool, checkout(pool))
        self._last = connection = held[1]
        try:
            return exchange(connection, commands, self._response_error)
        except BaseException:
            self._drop(node.name)
            raise

    def _drop(self, name: str) -> None:
        pool, connection = self._connections.pop(name)
        try:
            connection.disconnect()
            pool.release(connection)
        except Exception:  # the pool may be closed already
            pass

    def _node_client(self, node: Any) -> Any:
        """The client of one node (made now if the cluster client has
        not connected to it yet)."""
        client = self._client
        get = getattr(client, 'get_redis_connection', None) or \
            getattr(client, 'get_valkey_connection')
        return get(node)

    def _node_at(self, host: str, port: int) -> Any:
        manager = self._client.nodes_manager
        node = manager.get_node(host=host, port=port)
        if node is None:
            refresh(self._client)
            node = manager.get_node(host=host, port=port)
        if node is None:
            raise self._response_error(
                f'TRYAGAIN asked to go to {host}:{port}, which the cluster '
                f'does not list')
        return node
