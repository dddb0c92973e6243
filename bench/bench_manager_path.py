"""The manager-to-manager path alone: two managers in one process (A emits,
B's reader delivers), on a private ``redis-server``, with no Socket.IO
client in the way; the quietest measure of what the package itself costs.

* a burst of ``--burst`` emits: emits/s on A, then entries/s until B has
  read them all;
* paced emits at ``--rate``/s: latency from A's emit to B's delivery to
  its local sockets, p50/p90/p99.

With ``--baseline DIR`` the same runs, alternated, for the package of
another checkout (to compare two versions in one run)::

    python bench/bench_manager_path.py --async-mode threading \\
        --baseline ../old-checkout --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.redis_server import RedisServer  # noqa: E402


def measure(checkout: str, mode: str, url: str, burst: int, rate: float,
            count: int) -> dict:
    """One round, in this process, with the package of ``checkout``."""
    if mode == 'gevent':
        from gevent import monkey
        monkey.patch_all()
    sys.path.insert(0, checkout)
    import time

    import socketio

    from sio_redis_streams import RedisStreamsManager
    stream = f'path-{os.getpid()}'
    managers = [RedisStreamsManager(url, stream_name=stream, maxlen=10 ** 6,
                                    outbox_size=10 ** 6) for _ in 'AB']
    servers = [socketio.Server(client_manager=m, async_mode=mode)
               for m in managers]
    a, b = managers
    delivered = []
    local = getattr(b, '_local', None) or b._driver.local

    def deliver(namespace, event, args, opts, offset=None):
        delivered.append((event, args[0], time.perf_counter()))

    for manager in managers:
        manager.start()
    servers[0].sleep(0.5)
    local.emit = deliver
    started = time.perf_counter()
    for _ in range(burst):
        a.emit('burst', 0.0)
    emitted = time.perf_counter() - started
    while len(delivered) < burst:
        servers[1].sleep(0.001)
    read = time.perf_counter() - started
    delivered.clear()
    begin = time.perf_counter()
    for i in range(count):
        target = begin + i / rate
        while time.perf_counter() < target:
            servers[0].sleep(max(0.0, target - time.perf_counter()))
        a.emit('paced', time.perf_counter())
    while len(delivered) < count:
        servers[1].sleep(0.005)
    latencies = sorted((t - sent) * 1000 for _, sent, t in delivered)
    for manager in managers:
        manager.close()
    return {'emit_per_s': burst / emitted, 'read_per_s': burst / read,
            'p50': latencies[len(latencies) // 2],
            'p90': latencies[int(len(latencies) * 0.9)],
            'p99': latencies[int(len(latencies) * 0.99)]}


def round_in_subprocess(checkout: Path, args, url: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, '--one', str(checkout), '--url', url,
         '--async-mode', args.async_mode, '--burst', str(args.burst),
         '--rate', str(args.rate), '--count', str(args.count)],
        capture_output=True, text=True, timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--async-mode', default='threading',
                        choices=['threading', 'gevent'])
    parser.add_argument('--burst', type=int, default=20_000)
    parser.add_argument('--rate', type=float, default=200.0)
    parser.add_argument('--count', type=int, default=2000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--baseline', type=Path, metavar='DIR')
    parser.add_argument('--one', help=argparse.SUPPRESS)
    parser.add_argument('--url', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.async_mode, args.url,
                                 args.burst, args.rate, args.count)))
        return
    versions = {'this checkout': REPO}
    if args.baseline:
        versions['baseline'] = args.baseline.resolve()
    rounds = {name: [] for name in versions}
    with RedisServer(workdir=Path(tempfile.mkdtemp()) / 'redis') as redis:
        for _ in range(args.rounds):
            for name, checkout in versions.items():
                rounds[name].append(round_in_subprocess(checkout, args,
                                                        redis.url))
    print(f'manager to manager, {args.async_mode}, burst {args.burst}, '
          f'paced {args.rate:g}/s x {args.count} (median of {args.rounds} '
          f'rounds)')
    print(f'{"version":<15}{"emit/s":>10}{"read/s":>10}{"p50 ms":>9}'
          f'{"p90 ms":>9}{"p99 ms":>9}')
    medians = {name: {key: statistics.median(r[key] for r in results)
                      for key in results[0]}
               for name, results in rounds.items()}
    for name, m in medians.items():
        print(f'{name:<15}{m["emit_per_s"]:>10.0f}{m["read_per_s"]:>10.0f}'
              f'{m["p50"]:>9.3f}{m["p90"]:>9.3f}{m["p99"]:>9.3f}')
    if args.baseline:
        new, old = medians['this checkout'], medians['baseline']
        print('this / baseline: ' + ', '.join(
            f'{key} x{new[key] / old[key]:.2f}' for key in new))


if __name__ == '__main__':
    main()
