"""A real Redis Cluster of ``redis-server`` processes on loopback ports."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from tests.support.ports import LOOPBACK
from tests.support.redis_cluster_launch import (
    create_cluster,
    node_args,
    start_nodes,
)
from tests.support.redis_cluster_state import (
    UNHEALTHY,
    NodeView,
    SlotMap,
    first_slot,
    owner_port,
    parse_nodes,
    slot_map,
    survey,
    text,
)
from tests.support.redis_server import RedisServer


class RedisClusterServers:
    """Six ``redis-server`` processes (three primaries with a replica each)
    formed into a cluster by ``redis-cli --cluster create``, with the faults
    that tests need: kill, pause, restart, failover and live resharding.

    ``start()`` returns only once every node reports ``cluster_state:ok``,
    all of them return the same CLUSTER SLOTS and every replica is in sync,
    so that a test never begins on a half-formed cluster. Every node is a
    :class:`RedisServer` with the AOF on (fsync always), so ``kill()`` loses
    nothing acknowledged by the node itself.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        node_timeout_ms: int = 1000,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 30.0,
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix='redis-cluster-'))
            if workdir is None
            else workdir
        )
        self.primary_count = primaries
        self.replicas_per_primary = replicas_per_primary
        self.node_timeout_ms = node_timeout_ms
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        #: every node, in start order (replaced nodes are never kept)
        self.nodes: list[RedisServer] = []
        #: (host, port) of the primaries the cluster was created with
        self.startup_nodes: list[tuple[str, int]] = []
        #: seconds ``start()`` took, and what redis-cli printed
        self.start_seconds: float | None = None
        self.create_output = ''
        self._by_port: dict[int, RedisServer] = {}
        self._paused: set[RedisServer] = set()
        self._admins: dict[int, redis.Redis] = {}
        self._initial_map: SlotMap | None = None

    def __enter__(self) -> RedisClusterServers:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- life cycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+cluster://`` and the primaries the cluster began with."""
        return 'redis+cluster://' + ','.join(
            f'{host}:{port}' for host, port in self.startup_nodes
        )

    def start(self) -> None:
        """Start the nodes, create the cluster, wait until it is stable."""
        began = time.monotonic()
        try:
            self.nodes = start_nodes(
                self.workdir,
                self.primary_count * (1 + self.replicas_per_primary),
                node_args(self.node_timeout_ms, self.extra_args),
            )
            self._by_port = {node.port: node for node in self.nodes}
            self.create_output = create_cluster(
                self.nodes, self.replicas_per_primary
            )
            self._initial_map = self.wait_stable(self.ready_timeout)
        except BaseException:
            self.close()
            raise
        self.startup_nodes = [(LOOPBACK, n.port) for n in self.primaries()]
        self.start_seconds = time.monotonic() - began

    def close(self) -> None:
        """SIGKILL every node (their data is thrown away: no need to wait
        for a primary's graceful shutdown, which waits for lagging
        replicas), then delete the working directory if this object made
        it."""
        for admin in self._admins.values():
            admin.close()
        self._admins.clear()
        for node in self.nodes:
            node.kill()
            node.close()
        self._paused.clear()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def is_pristine(self) -> bool:
        """Whether every node runs, none is paused and the slot map is the
        one ``start()`` saw: the cluster can serve another test."""
        if not all(n.is_running for n in self.nodes) or self._paused:
            return False
        problem, slots = survey(self._live_nodes(), self._admin)
        return problem is None and slots == self._initial_map

    def flush(self) -> None:
        """FLUSHALL every primary and wait until its replicas did too."""
        for primary in self.primaries():
            admin = self._admin(primary)
            admin.flushall()
            replicas = admin.info('replication')['connected_slaves']
            admin.execute_command('WAIT', replicas, 10_000)

    # -- topology -----------------------------------------------------------

    def client(self, **kwargs: Any) -> RedisCluster:
        """A new ``RedisCluster`` for checks made by the test itself
        (decode_responses on unless overridden; the caller closes it)."""
        options = {'decode_responses': True, **kwargs}
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in self.startup_nodes],
            **options,
        )

    def primaries(self) -> list[RedisServer]:
        """The healthy nodes that own slots, as a live node sees them,
        ordered by their first slot."""
        views = [
            v for v in self._cluster_nodes()
            if 'master' in v.flags and v.slots and not v.flags & UNHEALTHY
        ]
        return [self._by_port[v.port] for v in sorted(views, key=first_slot)]

    def replicas(self) -> list[RedisServer]:
        """The healthy replicas, as a live node sees them."""
        return [
            self._by_port[v.port] for v in self._cluster_nodes()
            if 'slave' in v.flags and not v.flags & UNHEALTHY
        ]

    def replicas_of(self, node: RedisServer) -> list[RedisServer]:
        """The healthy replicas of ``node``, as a live node sees them."""
        views = self._cluster_nodes()
        ids = [v.id for v in views if v.port == node.port]
        return [
            self._by_port[v.port] for v in views
            if ids and v.master_id == ids[0] and not v.flags & UNHEALTHY
        ]

    def slot_of(self, key: str | bytes) -> int:
        """CLUSTER KEYSLOT of ``key``."""
        return self._ask(
            lambda admin: admin.execute_command('CLUSTER', 'KEYSLOT', key)
        )

    def primary_for(self, key: str | bytes) -> RedisServer:
        """The node that a live node says serves ``key``'s slot now."""
        return self._owner(self.slot_of(key))

    # -- faults -------------------------------------------------------------

    def kill(self, node: RedisServer) -> None:
        """SIGKILL ``node`` (its replica takes over within ~2 s)."""
        node.kill()
        self._paused.discard(node)
        self._forget(node)

    def pause(self, node: RedisServer) -> None:
        """SIGSTOP ``node``: connections stay open but it answers nothing,
        and after the node timeout the others treat it as failed."""
        node.pause()
        self._paused.add(node)

    def resume(self, node: RedisServer) -> None:
        """SIGCONT ``node``; ``wait_stable()`` waits until it rejoined."""
        node.resume()
        self._paused.discard(node)

    def restart(self, node: RedisServer, timeout: float = 30.0) -> None:
        """Start ``node`` again on its port and directory (stopping it first
        if it runs) and wait until the cluster is stable with it. After a
        failover it rejoins as a replica of the node that replaced it."""
        self._forget(node)
        node.restart()
        self._paused.discard(node)
        self.wait_stable(timeout)

    def wait_failover(
        self, key: str | bytes, old_primary: RedisServer, timeout: float = 30.0
    ) -> RedisServer:
        """Wait until every live node agrees that a node other than
        ``old_primary`` serves ``key``'s slot and the cluster is stable;
        return that node."""
        slot = self.slot_of(key)

        def moved(slots: SlotMap) -> str | None:
            if owner_port(slots, slot) == old_primary.port:
                return f'slot {slot} is still on {old_primary.name}'
            return None

        return self._by_port[
            owner_port(self.wait_stable(timeout, until=moved), slot)
        ]

    def move_slot(
        self,
        slot: int,
        target: RedisServer,
        *,
        batch: int = 100,
        timeout: float = 30.0,
    ) -> None:
        """Reshard ``slot`` to the primary ``target`` while it stays in use,
        as ``redis-cli --cluster reshard`` does: the keys move in batches
        with MIGRATE, clients are sent to the target (ASK) for keys that
        already moved, and only then does the slot change owner everywhere.
        """
        source = self._owner(slot)
        if source is target:
            return
        ids = {v.port: v.id for v in self._cluster_nodes()}
        source_admin, target_admin = self._admin(source), self._admin(target)
        target_admin.execute_command(
            'CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids[source.port]
        )
        source_admin.execute_command(
            'CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids[target.port]
        )
        # While MIGRATING, the source sends writes to absent keys to the
        # target, so once it has no key left none can appear again.
        while keys := source_admin.execute_command(
            'CLUSTER', 'GETKEYSINSLOT', slot, batch
        ):
            source_admin.execute_command(
                'MIGRATE', target.host, target.port, '', 0, 10_000,
                'KEYS', *keys,
            )
        # Target first, so that a client the source sends there is served.
        others = [p for p in self.primaries() if p not in (source, target)]
        for node in (target, source, *others):
            self._admin(node).execute_command(
                'CLUSTER', 'SETSLOT', slot, 'NODE', ids[target.port]
            )

        def arrived(slots: SlotMap) -> str | None:
            if owner_port(slots, slot) != target.port:
                return f'slot {slot} is not on {target.name} yet'
            return None

        self.wait_stable(timeout, until=arrived)

    # -- waiting ------------------------------------------------------------

    def wait_stable(
        self,
        timeout: float = 30.0,
        *,
        until: Callable[[SlotMap], str | None] | None = None,
    ) -> SlotMap:
        """Wait until every live (running, not paused) node reports
        ``cluster_state:ok``, sees every other live node as healthy, is in
        sync with its primary if it is a replica, and returns the same
        CLUSTER SLOTS, covering all slots (and ``until`` of that map returns
        None); return the map. Killed and paused nodes are left out."""
        deadline = time.monotonic() + timeout
        while True:
            problem, slots = survey(self._live_nodes(), self._admin)
            if problem is None and until is not None:
                problem = until(slots)
            if problem is None:
                return slots
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f'Redis Cluster not stable within {timeout} s: {problem}'
                )
            time.sleep(0.05)

    # -- helpers ------------------------------------------------------------

    def _live_nodes(self) -> list[RedisServer]:
        return [
            n for n in self.nodes if n.is_running and n not in self._paused
        ]

    def _admin(self, node: RedisServer) -> redis.Redis:
        """A connection to ``node`` alone that fails at once instead of
        retrying: callers poll, or move on to another node."""
        admin = self._admins.get(node.port)
        if admin is None:
            admin = self._admins[node.port] = redis.Redis(
                host=node.host,
                port=node.port,
                socket_timeout=2,
                socket_connect_timeout=2,
                retry=Retry(NoBackoff(), 0),
            )
        return admin

    def _forget(self, node: RedisServer) -> None:
        admin = self._admins.pop(node.port, None)
        if admin is not None:
            admin.close()

    def _ask(self, command: Callable[[redis.Redis], Any]) -> Any:
        """``command`` on the first live node that answers."""
        error: Exception | None = None
        for node in self._live_nodes():
            try:
                return command(self._admin(node))
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                error = exc
        raise RuntimeError('no live cluster node answers') from error

    def _cluster_nodes(self) -> list[NodeView]:
        return parse_nodes(self._ask(
            lambda admin: text(admin, 'CLUSTER', 'NODES')
        ))

    def _owner(self, slot: int) -> RedisServer:
        slots = slot_map(self._ask(
            lambda admin: admin.execute_command('CLUSTER', 'SLOTS')
        ), {})
        return self._by_port[owner_port(slots, slot)]


class ReusableRedisCluster:
    """Hands the same cluster to one test after another, flushed, and
    starts a new one when a test left it changed (a node killed, paused or
    demoted, a slot moved): starting one takes seconds, flushing it
    milliseconds. (Settings changed with CONFIG SET go unnoticed.)"""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cluster: RedisClusterServers | None = None
        self._generation = 0

    def acquire(self) -> RedisClusterServers:
        """A stable cluster with no keys, in the topology it started with."""
        if self.cluster is not None and self.cluster.is_pristine():
            try:
                self.cluster.flush()
                return self.cluster
            except (redis.RedisError, RuntimeError):
                pass  # left in a state flushing cannot undo: replace it
        self.close()
        self._generation += 1
        self.cluster = RedisClusterServers(
            self.workdir / f'cluster-{self._generation}'
        )
        self.cluster.start()
        return self.cluster

    def close(self) -> None:
        """Stop the current cluster, if any."""
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
