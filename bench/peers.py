"""The peers a benchmark compares, started side by side on one private
``redis-server`` so that the ratios between them mean something even on a
noisy machine:

* ``streams``: this project's ``RedisStreamsManager`` (servers A and B);
* ``streams@base``: the same, as another checkout (``--baseline DIR``) has
  it;
* ``streams@cluster``: the same as ``streams``, on a private Redis Cluster
  (``--cluster``) instead of the single ``redis-server``;
* ``streams@cluster+acks``: the same with ``replica_acks=1``: every batch
  waits (WAIT) until a replica has it;
* ``pubsub``: python-socketio's ``socketio.RedisManager`` (A and B);
* ``ceiling``: ONE server with python-socketio's in-process ``Manager``,
  both A and B: what python-socketio itself costs, with no Redis at all;
* ``node``: two Node.js servers with the official
  ``@socket.io/redis-streams-adapter``;
* ``bare-ws``: no peer, ``flood.mjs``, a bare WebSocket server that feeds
  the receivers as fast as it can: what they can take.

A workload's sender is a cmd client of A; its receivers are clients of B.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.receivers import Receivers
from bench.wire import RawClient
from sio_redis_streams.core.codec import stream_for_namespace
from tests.support.node_server import NodeServerProcess, node_binary
from tests.support.processes import CLUSTER_APP, ReadyProcess, \
    ServerConfig, ServerProcess
from tests.support.redis_cluster import RedisClusterServers

#: peer name -> manager kind of tests/apps/cluster_app.py
PYTHON_PEERS = {'streams': 'streams', 'streams@base': 'streams',
                'streams@cluster': 'streams',
                'streams@cluster+acks': 'streams',
                'pubsub': 'pubsub', 'ceiling': 'local'}
#: the peers on the Redis Cluster, with the manager options they add
CLUSTER_PEERS = {'streams@cluster': {},
                 'streams@cluster+acks': {'replica_acks': 1}}
OURS = 'streams'
FLOOD = Path(__file__).resolve().parent / 'flood.mjs'


@dataclass(frozen=True)
class Deployment:
    """A Redis the peers run on: its URL; a client of it, for the peers to
    look at and delete their streams; the cluster, if it is one (to place
    the streams on its primaries)."""

    url: str
    store: Any
    cluster: RedisClusterServers | None = None


@dataclass(frozen=True)
class Settings:
    """What a workload asks of the servers of every peer."""

    #: stream length (ours: maxlen, Node: maxLen); large enough that no
    #: workload loses entries to trimming: the ratios compare speed
    maxlen: int = 200_000
    #: ours only; None keeps the default
    outbox_size: int | None = None
    #: Engine.IO (ping_interval, ping_timeout) of the Python servers; None
    #: keeps python-engineio's (25, 20)
    ping: tuple[float, float] | None = None
    #: ours only: the namespaces are spread over this many streams
    stream_count: int = 1
    #: where A emits and B's clients listen (every client in each)
    namespaces: tuple[str, ...] = ('/',)

    def describe(self) -> str:
        parts = [f'maxlen {self.maxlen:,}']
        if self.stream_count > 1:
            parts.append(f'stream_count {self.stream_count}')
        if self.namespaces != ('/',):
            parts.append(f'namespaces {" ".join(self.namespaces)}')
        if self.outbox_size:
            parts.append(f'outbox_size raised to {self.outbox_size:,}')
        if self.ping:
            parts.append(f'ping interval/timeout {self.ping[0]:g}/'
                         f'{self.ping[1]:g} s')
        return ', '.join(parts)


class Peer:
    """The servers of one peer; a cmd client of A (the sender) and of B."""

    def __init__(self, name: str, servers: list, stream: str | None,
                 store: Any, streams: tuple[str, ...] = ()) -> None:
        self.name = name
        self.servers = servers
        #: the stream A writes to, None for the peers without one
        self.stream = stream
        #: every stream of the workload's namespaces (deleted at the end)
        self.streams = streams or ((stream,) if stream else ())
        self._store = store
        self.a = RawClient(servers[0].url)
        self.b = RawClient(servers[-1].url) if len(servers) > 1 else self.a

    @property
    def b_server(self) -> Any:
        """The server of the receivers (the only one of ``ceiling``)."""
        return self.servers[-1]

    def emit(self, run: str, count: int, room: str, payload: str,
             interval: float = 0.0, tracked: bool = False,
             namespace: str = '/') -> None:
        """A emits ``{"run", "n": 1..count, "t", "payload"}`` as ``bench``
        to ``room`` of ``namespace``; ``tracked`` (Python servers of this
        checkout only) lets :meth:`progress` tell when A is done."""
        request = {'op': 'emit_sequence', 'event': 'bench', 'count': count,
                   'interval': interval, 'to': room,
                   'fields': {'run': run, 'payload': payload}}
        if namespace != '/':  # what an older server knows stays as it was
            request['namespace'] = namespace
        if tracked:
            request['tag'] = run
        answer = _cmd(self.a, request)
        if answer != {'ok': True}:
            raise RuntimeError(f'{self.name}: emit failed: {answer}')

    def progress(self, run: str) -> dict:
        """How far A is in the tracked sequence ``run``."""
        return _cmd(self.a, {'op': 'sequence_progress', 'tag': run})

    def entries_added(self) -> int:
        """How many entries were ever appended to A's stream."""
        return self._store.xinfo_stream(self.stream)['entries-added']

    def stats(self) -> dict:
        """The managers' counters (``{}`` where there are none)."""
        return {'A': _cmd(self.a, {'op': 'stats'}),
                'B': _cmd(self.b, {'op': 'stats'})}

    def writes(self) -> tuple[int, int] | None:
        """(entries written, round trips that wrote them) by A so far;
        None for the peers that do not count them."""
        stats = _cmd(self.a, {'op': 'stats'})
        if 'write_batches' not in stats:
            return None
        return stats['entries_written'], stats['write_batches']

    def dropped_and_gaps(self) -> tuple[int, int]:
        """Entries A's outbox dropped; times B lost entries to trimming
        (both 0 for peers that do not count them)."""
        stats = self.stats()
        return (stats['A'].get('outbox_dropped', 0),
                stats['B'].get('gaps', 0))

    def rooms_of(self, sid: str) -> list[str]:
        """The rooms of a client of B (none once it is disconnected)."""
        return _cmd(self.b, {'op': 'rooms', 'sid': sid})

    def freeze_b(self) -> None:
        """SIGSTOP B's process group: an outage that loses no state."""
        self.b_server.send_signal(signal.SIGSTOP)

    def thaw_b(self) -> None:
        """SIGCONT B's process group."""
        self.b_server.send_signal(signal.SIGCONT)

    def receivers(self, clients: int, room: str, log_dir: Path,
                  name: str, namespaces: tuple[str, ...] = ('/',)
                  ) -> Receivers:
        """``clients`` receivers connected to B, in ``room`` of each of
        ``namespaces``."""
        return Receivers(self.b_server.url, clients, room, log_dir,
                         f'{self.name}-{name}', namespaces=namespaces)

    def close(self) -> None:
        """Stop the servers; delete the stream."""
        for client in {id(c): c for c in (self.a, self.b)}.values():
            client.close()
        for server in self.servers:
            server.send_signal(signal.SIGTERM)
        for server in self.servers:
            server.stop()
        for stream in self.streams:  # one by one: a cluster's slots differ
            self._store.delete(stream)


def _cmd(client: RawClient, request: dict) -> Any:
    """The answer to a ``cmd`` request (its acknowledgement's argument)."""
    return client.call(request)[0]


def rss_of(pid: int) -> int:
    """VmRSS of a process, in bytes."""
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'no VmRSS for pid {pid}')


def start_peers(names: list[str], *, mode: str, tag: str,
                single: Deployment, cluster: Deployment | None,
                settings: Settings, log_dir: Path,
                baseline: Path | None = None) -> list[Peer]:
    """Start the servers of every peer in ``names`` at once (Python ones in
    async ``mode``), each on streams of its own named after ``tag``, on
    ``cluster`` for :data:`CLUSTER_PEERS`, on ``single`` for the others;
    wait until all accept connections."""
    plans = []
    for name in names:
        where = cluster if name in CLUSTER_PEERS else single
        if where is None:
            raise ValueError(f'{name} needs a Redis Cluster (--cluster)')
        stream = streams = None
        if name not in ('pubsub', 'ceiling', 'bare-ws'):
            stream, streams = stream_names(f'bench-{tag}-{name}', settings,
                                           where.cluster)
        if name == 'bare-ws':
            servers = [FloodProcess(f'{tag}-bare-ws', log_dir)]
        elif name == 'node':
            servers = [NodeServerProcess(
                redis_url=where.url, name=f'{tag}-node-{side}',
                options={'streamName': stream, 'maxLen': settings.maxlen},
                workdir=log_dir) for side in 'AB']
        else:
            servers = _python_servers(name, mode, tag, where.url,
                                      settings, stream, log_dir, baseline)
        plans.append((name, servers, stream, streams, where.store))
    started = [server for _, servers, *_ in plans for server in servers]
    try:
        for server in started:
            server.launch()
        for server in started:
            server.wait_ready(60.0)
        return [Peer(name, servers, stream, store, streams or ())
                for name, servers, stream, streams, store in plans]
    except BaseException:
        for server in started:
            server.stop()
        raise


def stream_names(base: str, settings: Settings,
                 cluster: RedisClusterServers | None
                 ) -> tuple[str, tuple[str, ...]]:
    """The ``stream_name`` of a peer, and the streams its namespaces use.

    On a cluster, a suffix is added to ``base`` until those streams are on
    as many different primaries as can be: spreading them is what
    ``stream_count`` > 1 is for there, and a name left to chance would put
    all three on one primary in one run out of nine, and measure that.
    """
    for attempt in range(1000):
        name = f'{base}~{attempt}' if attempt else base
        streams = tuple(dict.fromkeys(
            stream_for_namespace(namespace, name, settings.stream_count)
            for namespace in settings.namespaces))
        if cluster is None:
            return name, streams
        owners = {cluster.primary_for(stream).port for stream in streams}
        if len(owners) == min(len(streams), cluster.primary_count):
            print(f'  {name}: ' + ', '.join(
                f'{stream} on :{cluster.primary_for(stream).port}'
                for stream in streams), flush=True)
            return name, streams
    raise RuntimeError(f'no name spreads the streams of {base}')


class FloodProcess(ReadyProcess):
    """``flood.mjs``, in its own process group."""

    def argv(self) -> list[str]:
        return [node_binary() or 'node', str(FLOOD), '--port',
                str(self._port or 0)]


def _python_servers(name: str, mode: str, tag: str, redis_url: str,
                    settings: Settings, stream: str | None, log_dir: Path,
                    baseline: Path | None) -> list[ServerProcess]:
    kind = PYTHON_PEERS[name]
    options: dict[str, Any] = {}
    if kind == 'streams':
        options = {'stream_name': stream, 'maxlen': settings.maxlen,
                   **CLUSTER_PEERS.get(name, {})}
        if settings.outbox_size:
            options['outbox_size'] = settings.outbox_size
        if settings.stream_count > 1:
            options['stream_count'] = settings.stream_count
    app = CLUSTER_APP
    if name == 'streams@base':
        app = baseline / 'tests' / 'apps' / 'cluster_app.py'
    server_options = {}
    if settings.ping:
        server_options = dict(zip(('ping_interval', 'ping_timeout'),
                                  settings.ping))
    sides = 'A' if kind == 'local' else 'AB'
    return [ServerProcess(ServerConfig(
        redis_url=redis_url, name=f'{tag}-{name}-{side}', async_mode=mode,
        manager=kind, options=options, app=app,
        server_options=server_options), log_dir) for side in sides]
