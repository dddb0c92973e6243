"""The peers a benchmark compares, started side by side on one private
``redis-server`` so that the ratios between them mean something even on a
noisy machine:

* ``streams``: this project's ``RedisStreamsManager`` (servers A and B);
* ``streams@base``: the same, as another checkout (``--baseline DIR``) has
  it;
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

import redis

from bench.receivers import Receivers
from bench.wire import RawClient
from tests.support.node_server import NodeServerProcess, node_binary
from tests.support.processes import CLUSTER_APP, ReadyProcess, \
    ServerConfig, ServerProcess
from tests.support.redis_server import RedisServer

#: peer name -> manager kind of tests/apps/cluster_app.py
PYTHON_PEERS = {'streams': 'streams', 'streams@base': 'streams',
                'pubsub': 'pubsub', 'ceiling': 'local'}
OURS = 'streams'
FLOOD = Path(__file__).resolve().parent / 'flood.mjs'


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

    def describe(self) -> str:
        parts = [f'maxlen {self.maxlen:,}']
        if self.outbox_size:
            parts.append(f'outbox_size raised to {self.outbox_size:,}')
        if self.ping:
            parts.append(f'ping interval/timeout {self.ping[0]:g}/'
                         f'{self.ping[1]:g} s')
        return ', '.join(parts)


class Peer:
    """The servers of one peer; a cmd client of A (the sender) and of B."""

    def __init__(self, name: str, servers: list, stream: str | None,
                 store: redis.Redis) -> None:
        self.name = name
        self.servers = servers
        #: the stream A writes to, None for the peers without one
        self.stream = stream
        self._store = store
        self.a = RawClient(servers[0].url)
        self.b = RawClient(servers[-1].url) if len(servers) > 1 else self.a

    @property
    def b_server(self) -> Any:
        """The server of the receivers (the only one of ``ceiling``)."""
        return self.servers[-1]

    def emit(self, run: str, count: int, room: str, payload: str,
             interval: float = 0.0, tracked: bool = False) -> None:
        """A emits ``{"run", "n": 1..count, "t", "payload"}`` as ``bench``
        to ``room``; ``tracked`` (Python servers of this checkout only)
        lets :meth:`progress` tell when A is done."""
        request = {'op': 'emit_sequence', 'event': 'bench', 'count': count,
                   'interval': interval, 'to': room,
                   'fields': {'run': run, 'payload': payload}}
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
                  name: str) -> Receivers:
        """``clients`` receivers connected to B, in ``room``."""
        return Receivers(self.b_server.url, clients, room, log_dir,
                         f'{self.name}-{name}')

    def close(self) -> None:
        """Stop the servers; delete the stream."""
        for client in {id(c): c for c in (self.a, self.b)}.values():
            client.close()
        for server in self.servers:
            server.send_signal(signal.SIGTERM)
        for server in self.servers:
            server.stop()
        if self.stream:
            self._store.delete(self.stream)


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
                redis_server: RedisServer, store: redis.Redis,
                settings: Settings, log_dir: Path,
                baseline: Path | None = None) -> list[Peer]:
    """Start the servers of every peer in ``names`` at once (Python ones in
    async ``mode``), each on streams of its own named after ``tag``; wait
    until all accept connections. ``store`` is a client of the same Redis,
    for the peers to look at their streams."""
    plans = []
    for name in names:
        stream = None if name in ('pubsub', 'ceiling', 'bare-ws') else \
            f'bench-{tag}-{name}'
        if name == 'bare-ws':
            servers = [FloodProcess(f'{tag}-bare-ws', log_dir)]
        elif name == 'node':
            servers = [NodeServerProcess(
                redis_url=redis_server.url, name=f'{tag}-node-{side}',
                options={'streamName': stream, 'maxLen': settings.maxlen},
                workdir=log_dir) for side in 'AB']
        else:
            servers = _python_servers(name, mode, tag, redis_server.url,
                                      settings, stream, log_dir, baseline)
        plans.append((name, servers, stream))
    started = [server for _, servers, _ in plans for server in servers]
    try:
        for server in started:
            server.launch()
        for server in started:
            server.wait_ready(60.0)
        return [Peer(name, servers, stream, store)
                for name, servers, stream in plans]
    except BaseException:
        for server in started:
            server.stop()
        raise


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
        options = {'stream_name': stream, 'maxlen': settings.maxlen}
        if settings.outbox_size:
            options['outbox_size'] = settings.outbox_size
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
