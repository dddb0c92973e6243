"""Starting the ``redis-server`` nodes of a Redis Cluster and joining them
with ``redis-cli --cluster create``."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path
from typing import Sequence

from tests.support.ports import LOOPBACK, free_port
from tests.support.redis_server import RedisServer

# Redis binds its cluster bus on the data port + 10000.
_BUS_PORT_OFFSET = 10_000
_NODE_ATTEMPTS = 5


def node_args(node_timeout_ms: int, extra_args: Sequence[str]) -> list[str]:
    """Command-line settings of a node; ``extra_args`` come last and win."""
    return [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', 'nodes.conf',
        # a silent primary is replaced after ~2 s instead of ~20 s
        '--cluster-node-timeout', str(node_timeout_ms),
        # a replica may take over however long ago it last heard from its
        # primary: whether a test's failover happens must not depend on
        # timing
        '--cluster-replica-validity-factor', '0',
        # the topology stays as tests arrange it: no replica wanders off to
        # a primary that lost its own
        '--cluster-allow-replica-migration', 'no',
        # a replica syncs at once instead of 5 s later (the default waits
        # for more replicas to share one diskless transfer)
        '--repl-diskless-sync-delay', '0',
        *extra_args,
    ]


def start_nodes(
    workdir: Path, count: int, args: Sequence[str]
) -> list[RedisServer]:
    """Start ``count`` nodes in parallel (each start waits for its server
    to answer), in ``workdir/node-<i>``; if one fails, stop the others."""
    started: list[RedisServer | None] = [None] * count
    errors: list[BaseException] = []

    def start(index: int) -> None:
        try:
            started[index] = _start_node(workdir, index, args)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    nodes = [node for node in started if node is not None]
    if errors:
        for node in nodes:
            node.close()
        raise errors[0]
    return nodes


def _start_node(workdir: Path, index: int, args: Sequence[str]) -> RedisServer:
    error: Exception | None = None
    for attempt in range(_NODE_ATTEMPTS):
        suffix = f'-retry{attempt}' if attempt else ''
        node = RedisServer(
            appendonly=True,
            extra_args=args,
            workdir=workdir / f'node-{index}{suffix}',
            port=_cluster_port(),
        )
        try:
            node.start()
            return node
        except RuntimeError as exc:  # lost a race for a port
            node.close()
            error = exc
    raise RuntimeError(f'cluster node {index} did not start') from error


def _cluster_port() -> int:
    """A free port whose cluster bus port exists and is free as well
    (``redis-server`` exits if it cannot bind both)."""
    while True:
        port = free_port()
        if port + _BUS_PORT_OFFSET > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK, port + _BUS_PORT_OFFSET))
            except OSError:
                continue
        return port


def create_cluster(
    nodes: Sequence[RedisServer], replicas_per_primary: int
) -> str:
    """Join ``nodes`` into a cluster (the first ones become the primaries)
    and return what redis-cli printed. redis-cli waits until the nodes
    agree on the slots, but not until replicas have synced."""
    argv = [
        'redis-cli', '--cluster', 'create',
        *(f'{LOOPBACK}:{node.port}' for node in nodes),
        '--cluster-replicas', str(replicas_per_primary),
        '--cluster-yes',
    ]
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0 or '[ERR]' in output:
        raise RuntimeError(f'redis-cli --cluster create failed:\n{output}')
    return output
