"""Cross-server broadcast, measured side by side: server A emits, a client
of server B receives, through

* ``redis-streams``: this project's ``RedisStreamsManager``;
* ``redis-pubsub``: python-socketio's ``socketio.RedisManager``;
* ``node-streams``: two Node.js servers with the official
  ``@socket.io/redis-streams-adapter``
  (when ``tests/node/node_modules`` is installed; ``--no-node`` skips it);
* ``streams@base``, with ``--baseline DIR``: this project's manager as
  another checkout (``DIR``) has it, to compare two versions in one run.

All run in one go on loopback, on one private ``redis-server``, with the
same payload, so that the ratios between them mean something even on a
noisy machine. Two measurements per peer:

* throughput: A emits ``--burst`` messages as fast as it can; messages per
  second from the first emit to the last receipt on B;
* latency: A emits ``--rate`` messages per second for ``--seconds``;
  p50/p99 of (receipt on B - emit on A), both clocks being this machine's.

    python bench/bench_broadcast.py [--async-mode gevent] [--burst 5000]

``bench/run.py`` is the full benchmark (fan-out, catch-up, memory...).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.wire import RawClient  # noqa: E402
from tests.support.node_server import NodeServerProcess, \
    node_modules_ready  # noqa: E402
from tests.support.processes import ServerConfig, ServerProcess  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402


class Peer:
    """Two servers of one kind; a sender on A and a receiver on B, which
    alone is in the room the messages go to."""

    def __init__(self, name: str, servers: list) -> None:
        self.name = name
        self.servers = servers
        self.sender = RawClient(servers[0].url)
        self.receiver = RawClient(servers[1].url)
        self.receiver.call({'op': 'enter_room', 'sid': self.receiver.sid,
                            'room': 'bench'})

    def emit(self, run: str, count: int, interval: float,
             payload: str) -> None:
        self.sender.call({'op': 'emit_sequence', 'event': 'bench',
                          'count': count, 'interval': interval,
                          'to': 'bench',
                          'fields': {'run': run, 'payload': payload}})

    def close(self) -> None:
        self.sender.close()
        self.receiver.close()
        for server in self.servers:
            server.stop()


def measure(peer: Peer, args, payload: str, round_: int) -> dict:
    burst_run, paced_run = f'burst-{round_}', f'paced-{round_}'
    peer.emit(burst_run, args.burst, 0.0, payload)
    burst = peer.receiver.wait(burst_run, args.burst, 120)
    sent = min(t for t, _ in burst)
    last = max(r for _, r in burst)

    count = int(args.rate * args.seconds)
    peer.emit(paced_run, count, 1.0 / args.rate, payload)
    paced = peer.receiver.wait(paced_run, count, args.seconds + 60)
    latencies = sorted((r - t) * 1000 for t, r in paced)
    return {
        'throughput': len(burst) / (last - sent),
        'lost': args.burst - len(burst) + count - len(paced),
        'p50': statistics.median(latencies),
        'p99': latencies[min(len(latencies) - 1,
                             int(len(latencies) * 0.99))],
    }


def median_of(rounds: list) -> dict:
    return {key: (sum(r[key] for r in rounds) if key == 'lost' else
                  statistics.median(r[key] for r in rounds))
            for key in rounds[0]}


def python_peer(kind: str, name: str, redis: RedisServer, args,
                log_dir: Path, checkout: Path = REPO) -> Peer:
    servers = [ServerProcess(ServerConfig(
        redis_url=redis.url, name=f'{name}-{side}',
        async_mode=args.async_mode, manager=kind,
        options={} if kind == 'pubsub' else {'stream_name': name},
        app=checkout / 'tests' / 'apps' / 'cluster_app.py'),
        log_dir) for side in 'AB']
    for server in servers:
        server.start()
    return Peer(name, servers)


def node_peer(redis: RedisServer, log_dir: Path) -> Peer:
    servers = [NodeServerProcess(redis_url=redis.url, name=f'node-{side}',
                                 options={'streamName': 'node-streams'},
                                 workdir=log_dir) for side in 'AB']
    for server in servers:
        server.start()
    return Peer('node-streams', servers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--async-mode', default='gevent',
                        choices=['threading', 'gevent', 'eventlet'])
    parser.add_argument('--burst', type=int, default=5000)
    parser.add_argument('--rate', type=float, default=200.0)
    parser.add_argument('--seconds', type=float, default=5.0)
    parser.add_argument('--payload-bytes', type=int, default=100)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--no-node', action='store_true')
    parser.add_argument('--baseline', type=Path, metavar='DIR',
                        help='also measure the manager of another checkout')
    args = parser.parse_args()
    payload = 'x' * args.payload_bytes

    log_dir = Path(tempfile.mkdtemp(prefix='sio-bench-'))
    peers = []
    with RedisServer(workdir=log_dir / 'redis') as redis:
        try:
            peers.append(python_peer('streams', 'redis-streams', redis, args,
                                     log_dir))
            if args.baseline:
                peers.append(python_peer('streams', 'streams@base', redis,
                                         args, log_dir, args.baseline))
            peers.append(python_peer('pubsub', 'redis-pubsub', redis, args,
                                     log_dir))
            if not args.no_node and node_modules_ready():
                peers.append(node_peer(redis, log_dir))
            for peer in peers:
                peer.emit('warmup', 200, 0.0, payload)
                peer.receiver.wait('warmup', 200, 30)
            rounds = {peer.name: [] for peer in peers}
            for round_ in range(args.rounds):
                # a different peer goes first in each round
                order = peers[round_ % len(peers):] + \
                    peers[:round_ % len(peers)]
                for peer in order:
                    print(f'round {round_ + 1}/{args.rounds}: {peer.name}',
                          flush=True)
                    rounds[peer.name].append(
                        measure(peer, args, payload, round_))
        finally:
            for peer in peers:
                peer.close()
    report({name: median_of(r) for name, r in rounds.items()}, args)
    print(f'(server logs in {log_dir})')


def report(results: dict, args) -> None:
    print()
    print(f'cross-server broadcast, python servers in {args.async_mode} '
          f'mode, {args.payload_bytes}-byte payload, '
          f'burst {args.burst}, paced {args.rate:g}/s for {args.seconds:g} s'
          f' (median of {args.rounds} rounds)')
    print(f'{"peer":<15}{"msg/s":>10}{"p50 ms":>10}{"p99 ms":>10}'
          f'{"lost":>6}')
    for name, r in results.items():
        print(f'{name:<15}{r["throughput"]:>10.0f}{r["p50"]:>10.2f}'
              f'{r["p99"]:>10.2f}{r["lost"]:>6}')
    ours = results['redis-streams']
    for name, r in results.items():
        if name == 'redis-streams':
            continue
        print(f'redis-streams / {name}: throughput x'
              f'{ours["throughput"] / r["throughput"]:.2f}, p50 x'
              f'{ours["p50"] / r["p50"]:.2f}, p99 x'
              f'{ours["p99"] / r["p99"]:.2f}')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
