"""The project's reference benchmark: every workload, for every peer, in
every async mode, in one run on one private ``redis-server``.

Peers (see ``bench/peers.py``): ``streams`` (this project), ``pubsub``
(``socketio.RedisManager``), ``ceiling`` (one python-socketio server, no
Redis), ``node`` (the official Node adapter, run once whatever the mode;
``--no-node`` skips it), ``streams@base`` (``--baseline DIR``: another
checkout), and ``bare-ws``: a lower bound of the receivers' capacity.
``--cluster`` adds a private loopback Redis Cluster (3 primaries with a
replica each) and ``streams@cluster`` (ours on it) and
``streams@cluster+acks`` (the same with ``replica_acks=1``, in latency and
burst), compared with ``streams`` on the single Redis of the same run.
``--peers`` keeps only the peers named.

Workloads (``--workloads``, default all but ``memory``):

* ``fanout50``, ``fanout500``: deliveries/s to 50 / 500 clients of B;
* ``latency``: p50/p99 at 1,000 msg/s;
* ``burst``: msgs/s of a saturated single-client burst, end to end;
* ``catchup``: B frozen while A writes 100,000 entries: catch-up and
  writer rates;
* ``memory`` (slow, only when named): B's RSS relaying 1,000,000 messages,
  then with a frozen client;
* ``fanout50-ns3``, ``fanout500-ns3``, ``latency-ns3``, ``burst-ns3``
  (by default with ``--cluster`` only): the same messages shared by 3
  namespaces over ``stream_count=3``, every client in all three; ours only.

Each figure is the median of ``--rounds``; a table per workload gives
the figures and the ratios ours / each peer; JSON (``--json``) and
Markdown (``--markdown``) get the same. ``--quick`` shrinks every size for
a smoke run::

    .venv/bin/python bench/run.py --quick --modes gevent --rounds 1
    .venv/bin/python bench/run.py --modes gevent --markdown bench.md
    .venv/bin/python bench/run.py --cluster --no-node --peers \
        streams,streams@cluster,streams@cluster+acks \
        --workloads fanout50,fanout50-ns3,latency,latency-ns3,burst,burst-ns3
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from bench.outage import CatchUp, Memory  # noqa: E402
from bench.peers import CLUSTER_PEERS, Deployment, start_peers  # noqa: E402
from bench.report import ONCE, Results, notes, render_markdown, \
    render_text, tables  # noqa: E402
from bench.workloads import Workload, broadcast_workloads  # noqa: E402
from tests.support.node_server import node_binary, \
    node_modules_ready  # noqa: E402
from tests.support.redis_cluster import RedisClusterServers  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

MODES = ('threading', 'gevent', 'eventlet')
#: peers measured once, in the first mode's turn
MODELESS = ('node', 'bare-ws')
SLOW = ('memory',)
#: the cluster's settings: those of the single redis-server (no
#: persistence; the test fixture fsyncs every write), and a node timeout
#: long enough that a stall of this busy machine starts no failover
CLUSTER_ARGS = {'extra_args': ['--appendonly', 'no'],
                'node_timeout_ms': 15_000}
LEGEND = ('Figures: median of the rounds; lost/dup: summed over them '
          '(! = should not be). rx busy: CPU time of the receivers\' '
          'process over the receipt window (100% would make them the '
          'limit; the bare-ws row shows at least what they can take).')


def all_workloads(quick: bool, payload_bytes: int) -> list[Workload]:
    return [*broadcast_workloads(quick, payload_bytes),
            CatchUp(5_000 if quick else 100_000, payload_bytes),
            Memory(quick, payload_bytes)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    names = [w.name for w in all_workloads(True, 1)]
    parser.add_argument('--modes', default=','.join(MODES),
                        help='Python async modes, comma-separated')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument(
        '--workloads', default='default',
        help=f'comma-separated, of {", ".join(names)}; "default": all '
             f'but {", ".join(SLOW)}; "all"')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes: a smoke run')
    parser.add_argument('--payload-bytes', type=int, default=100,
                        help='payload of every workload but burst (16)')
    parser.add_argument('--no-node', action='store_true')
    parser.add_argument('--cluster', action='store_true',
                        help='also measure ours on a Redis Cluster')
    parser.add_argument('--peers', default='',
                        help='comma-separated: only these peers')
    parser.add_argument('--baseline', type=Path, metavar='DIR',
                        help="also measure another checkout's manager")
    parser.add_argument('--json', type=Path, metavar='FILE',
                        help='default: results.json in the log folder')
    parser.add_argument('--markdown', type=Path, metavar='FILE')
    args = parser.parse_args()
    args.modes = [m for m in args.modes.split(',') if m]
    if not args.modes or set(args.modes) - set(MODES):
        parser.error(f'--modes: of {", ".join(MODES)}')
    workloads = all_workloads(args.quick, args.payload_bytes)
    default = [n for n in names if n not in SLOW and
               (args.cluster or not n.endswith('-ns3'))]
    chosen = {'default': default, 'all': names}.get(
        args.workloads, args.workloads.split(','))
    if set(chosen) - set(names):
        parser.error(f'--workloads: of {", ".join(names)}')
    args.workloads = [w for w in workloads if w.name in chosen]
    args.peers = {p for p in args.peers.split(',') if p}
    if node_binary() is None or not node_modules_ready():
        parser.error('the receivers need node and tests/node/node_modules '
                     '(npm ci --prefix tests/node)')
    return args


def peer_names(workload: Workload, first_mode: bool,
               args: argparse.Namespace) -> list[str]:
    names = ['streams', *(['streams@base'] if args.baseline else []),
             *(CLUSTER_PEERS if args.cluster else []), 'pubsub', 'ceiling']
    if first_mode:
        names += [*([] if args.no_node else ['node']), 'bare-ws']
    return [name for name in names if name in workload.peers and
            (not args.peers or name in args.peers)]


def run_workload(workload: Workload, mode: str, names: list[str],
                 single: Deployment, cluster: Deployment | None,
                 results: Results, args: argparse.Namespace,
                 log_dir: Path) -> None:
    """Start the peers; measure each, round after round, a different one
    first each round; stop them. A failure is recorded, and the run goes
    on: one broken peer must not cost the figures of an hour."""
    tag = f'{mode}-{workload.name}'

    def group(name: str) -> str:
        return ONCE if name in MODELESS else mode

    try:
        peers = start_peers(names, mode=mode, tag=tag, single=single,
                            cluster=cluster, settings=workload.settings,
                            log_dir=log_dir / tag, baseline=args.baseline)
    except Exception as exc:
        failure = _failure(f'{tag} start', exc)
        for name in names:
            results.add(workload.name, group(name), name, failure)
        return
    states = {}
    try:
        for peer in peers:
            try:
                states[peer.name] = workload.prepare(peer, log_dir / tag)
            except Exception as exc:
                results.add(workload.name, group(peer.name), peer.name,
                            _failure(f'{tag} {peer.name} setup', exc))
        ready = [peer for peer in peers if peer.name in states]
        for round_ in range(args.rounds):
            shift = round_ % max(1, len(ready))
            for peer in ready[shift:] + ready[:shift]:
                print(f'{tag} round {round_ + 1}/{args.rounds}: '
                      f'{peer.name}', flush=True)
                try:
                    figures = workload.measure(peer, states[peer.name],
                                               round_)
                except Exception as exc:
                    figures = _failure(f'{tag} {peer.name}', exc)
                results.add(workload.name, group(peer.name), peer.name,
                            figures)
        for peer in ready:
            try:
                dropped, gaps = peer.dropped_and_gaps()
            except Exception as exc:
                _failure(f'{tag} {peer.name} stats', exc)
                continue
            results.check(workload.name, group(peer.name), peer.name,
                          {'outbox_dropped': dropped, 'gaps': gaps})
    finally:
        for state in states.values():
            workload.release(state)
        for peer in peers:
            peer.close()


def _failure(where: str, exc: Exception) -> dict:
    print(f'! {where} failed: {type(exc).__name__}: {exc}', flush=True)
    return {'error': f'{type(exc).__name__}: {exc}'}


def describe_machine(store: redis.Redis) -> dict:
    """What the figures depend on, besides the code."""
    def output(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  cwd=REPO, timeout=10).stdout.strip()
        except OSError:
            return ''
    return {'platform': platform.platform(), 'cpus': os.cpu_count(),
            'python': platform.python_version(),
            'python-socketio': version('python-socketio'),
            'node': output(node_binary() or 'node', '--version'),
            'redis': store.info('server')['redis_version'],
            'commit': output('git', 'rev-parse', '--short', 'HEAD'),
            'dirty': bool(output('git', 'status', '--porcelain'))}


def start_cluster(stack: contextlib.ExitStack,
                  log_dir: Path) -> Deployment:
    """A Redis Cluster for the run, stopped (every node) when ``stack``
    closes; its logs stay in ``log_dir``."""
    began = time.monotonic()
    cluster = RedisClusterServers(log_dir / 'cluster', **CLUSTER_ARGS)
    stack.callback(cluster.close)
    cluster.start()
    store = stack.enter_context(cluster.client())
    print(f'Redis Cluster up in {time.monotonic() - began:.1f} s: '
          f'{cluster.url}', flush=True)
    return Deployment(cluster.url, store, cluster)


def main() -> None:
    args = parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix='sio-bench-'))
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        redis_server = stack.enter_context(
            RedisServer(workdir=log_dir / 'redis'))
        store = stack.enter_context(redis_server.client())
        single = Deployment(redis_server.url, store)
        cluster = start_cluster(stack, log_dir) if args.cluster else None
        results = Results({
            'modes': args.modes, 'rounds': args.rounds, 'quick': args.quick,
            'workloads': [w.name for w in args.workloads],
            'node': not args.no_node, 'baseline': str(args.baseline or ''),
            'cluster': CLUSTER_ARGS if args.cluster else None,
            'peers': sorted(args.peers), 'machine': describe_machine(store)})
        try:
            for index, mode in enumerate(args.modes):
                for workload in args.workloads:
                    names = peer_names(workload, index == 0, args)
                    run_workload(workload, mode, names, single, cluster,
                                 results, args, log_dir)
        except KeyboardInterrupt:
            # the servers are stopped by now: show what was measured
            print('\ninterrupted: the results so far')
    print(f'\n(all done in {time.monotonic() - began:,.0f} s; server logs '
          f'in {log_dir})\n')
    print(LEGEND + '\n')
    markdown = [LEGEND + '\n']
    for workload in args.workloads:
        for title, rows in tables(results, workload, args.modes):
            print(render_text(title, rows) + '\n')
            markdown.append(render_markdown(title, rows) + '\n')
        lines = notes(results, workload)
        if lines:
            print('\n'.join(lines) + '\n')
            markdown.append('\n'.join(f'- {line.strip()}'
                                      for line in lines) + '\n')
    json_path = args.json or log_dir / 'results.json'
    results.write_json(json_path, args.workloads)
    print(f'results: {json_path}')
    if args.markdown:
        args.markdown.write_text('\n'.join(markdown))
        print(f'markdown: {args.markdown}')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
