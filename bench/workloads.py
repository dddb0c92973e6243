"""What the benchmark measures, one peer at a time: A emits numbered
``bench`` messages to a room with a ``cmd`` request, clients of B in that
room (``receiver.mjs``) count and timestamp them.

Every figure comes from timestamps on this one machine: the request to A
(``time.time()`` here), the receipts (the receivers' wall clock) and the
``t`` the emitting server put in each message.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.peers import Peer, Settings
from bench.receivers import Receivers

#: a wait ends when nothing new arrived for this long: what is missing then
#: is lost
STALL_SECONDS = 10.0


@dataclass(frozen=True)
class Metric:
    """One column of a workload's table."""

    key: str
    label: str
    #: format of a value, e.g. '{:,.0f}'
    format: str
    #: True/False: higher/lower is better, and ours / peer is shown;
    #: None: a plain figure, not compared
    higher_is_better: bool | None


RATE_FORMAT = '{:,.0f}'
MS_FORMAT = '{:,.2f}'
MB_FORMAT = '{:,.1f}'

#: the peers that are this manager, on one Redis or on a cluster
STREAMS_PEERS = frozenset({'streams', 'streams@base', 'streams@cluster',
                           'streams@cluster+acks'})
#: every peer name a workload may run for (see bench.peers)
ALL_PEERS = STREAMS_PEERS | {'pubsub', 'ceiling', 'node', 'bare-ws'}
#: the replica-ack peer is for the latency (and burst) cost of WAIT only
ACKS = 'streams@cluster+acks'
#: namespaces whose streams differ with stream_count=3 ("/other" shares
#: "/"'s: see codec.stream_for_namespace)
THREE_NAMESPACES = ('/', '/chat', '/dashboard')


class Workload:
    """One measurement, for each peer it applies to; subclasses say how.

    :meth:`prepare` runs once per peer (receivers connect, a warm-up), then
    :meth:`measure` once per round, then :meth:`release`.
    """

    name = ''
    title = ''
    metrics: tuple[Metric, ...] = ()
    peers = ALL_PEERS - {'bare-ws'}
    settings = Settings()
    #: B is made unavailable: only peers with a stream must lose nothing
    outage = False
    #: lines printed under the tables: what the columns mean
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """The sizes, for the table's title."""
        raise NotImplementedError

    def prepare(self, peer: Peer, log_dir: Path) -> Any:
        raise NotImplementedError

    def measure(self, peer: Peer, state: Any, round_: int) -> dict:
        """The figures of one round, with ``lost`` and ``dup`` (counts of
        messages) and ``busy`` (the receivers' CPU share, see
        receiver.mjs)."""
        raise NotImplementedError

    def release(self, state: Any) -> None:
        """Undo :meth:`prepare` (receivers close)."""
        state.close()


def losses(got: dict, expected: int) -> dict:
    """``lost``, ``dup`` and ``busy`` from a receivers' report."""
    return {'lost': max(0, expected - got['received']),
            'dup': got['duplicates'], 'busy': got['busy']}


def emit_spread(peer: Peer, run: str, count: int, room: str,
                payload: str, namespaces: tuple[str, ...] = ('/',),
                interval: float = 0.0) -> list[str]:
    """A emits ``count`` messages to ``room``, shared evenly by
    ``namespaces``: one sequence each (run ``<run><namespace>``), each
    ``len(namespaces)`` times slower, so that together they keep
    ``interval``; the runs, for :meth:`Receivers.wait`."""
    if len(namespaces) == 1:
        peer.emit(run, count, room, payload, interval, namespace=namespaces[0])
        return [run]
    share = count // len(namespaces)
    for namespace in namespaces:
        peer.emit(f'{run}{namespace}', share, room, payload,
                  interval * len(namespaces), namespace=namespace)
    return [f'{run}{namespace}' for namespace in namespaces]


def receivers_warmed_up(peer: Peer, clients: int, room: str, payload: str,
                        log_dir: Path, name: str,
                        namespaces: tuple[str, ...] = ('/',)) -> Receivers:
    """Receivers of B in ``room`` (of each of ``namespaces``), once a few
    messages went through, so that no round pays for connections made
    lazily or code not yet compiled (Node's JIT)."""
    receivers = peer.receivers(clients, room, log_dir, name, namespaces)
    try:
        count = max(20, 2000 // clients) // len(namespaces) * len(namespaces)
        runs = emit_spread(peer, f'{name}-warm-up', count, room, payload,
                           namespaces)
        receivers.wait(runs, count, STALL_SECONDS)
    except BaseException:
        receivers.close()
        raise
    return receivers


class Broadcast(Workload):
    """``clients`` receivers of B in one room; A emits ``count`` messages
    to it, as fast as it can (``interval`` 0) or paced.

    ``rate`` is deliveries per second, END TO END: all the messages
    received by all the clients over the time from the request to A to the
    last receipt; ``p50``/``p99`` are of receipt - emit, in ms; ``batch``
    is the entries A wrote per round trip to Redis (ours only): what
    explains a writer-bound rate.

    With several ``settings.namespaces``, the ``count`` messages are shared
    by them (see :func:`emit_spread`) and every client is in the room of
    each: the same deliveries, over as many streams as ``stream_count``
    spreads the namespaces on.
    """

    def __init__(self, name: str, title: str, metrics: tuple[Metric, ...],
                 *, clients: int, count: int, payload_bytes: int,
                 interval: float = 0.0, peers: frozenset = ALL_PEERS,
                 settings: Settings = Settings()) -> None:
        self.name, self.title, self.metrics = name, title, metrics
        self.clients, self.count, self.interval = clients, count, interval
        self.payload = 'x' * payload_bytes
        self.peers = peers
        self.settings = settings

    def over_namespaces(self, namespaces: tuple[str, ...]) -> Broadcast:
        """The same workload with its messages shared by ``namespaces``,
        spread over as many streams (``<name>-ns<N>``), for this manager
        only (the other peers have no ``stream_count``)."""
        k = len(namespaces)
        return Broadcast(
            f'{self.name}-ns{k}', f'{self.title}, over {k} namespaces',
            self.metrics, clients=self.clients,
            count=-(-self.count // k) * k, payload_bytes=len(self.payload),
            interval=self.interval, peers=self.peers & STREAMS_PEERS,
            settings=replace(self.settings, stream_count=k,
                             namespaces=namespaces))

    def describe(self) -> str:
        pace = (f'at {1 / self.interval:,.0f}/s' if self.interval
                else 'as fast as A can')
        clients = (f'{self.clients:,} clients' if self.clients > 1
                   else '1 client')
        return (f'{clients} of B, {self.count:,} messages of '
                f'{len(self.payload)} bytes {pace} = '
                f'{self.clients * self.count:,} deliveries')

    def prepare(self, peer: Peer, log_dir: Path) -> Receivers:
        return receivers_warmed_up(peer, self.clients, self.name,
                                   self.payload, log_dir, self.name,
                                   self.settings.namespaces)

    def measure(self, peer: Peer, receivers: Receivers, round_: int) -> dict:
        writes = peer.writes()
        requested = time.time()
        runs = emit_spread(peer, f'{self.name}-{round_}', self.count,
                           self.name, self.payload, self.settings.namespaces,
                           self.interval)
        got = receivers.wait(runs, self.count, STALL_SECONDS,
                             timeout=self.count * self.interval + 600)
        return {**losses(got, self.clients * self.count),
                'rate': (got['received'] / (got['last'] - requested)
                         if got['last'] else None),
                'p50': got['p50'], 'p99': got['p99'],
                'batch': per_batch(writes, peer.writes())}


def per_batch(before: tuple[int, int] | None,
              after: tuple[int, int] | None) -> float | None:
    """Entries per write round trip between two :meth:`Peer.writes`."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


DELIVERIES = Metric('rate', 'deliveries/s', RATE_FORMAT, True)
MESSAGES = Metric('rate', 'msgs/s', RATE_FORMAT, True)
LATENCY = (Metric('p50', 'p50 ms', MS_FORMAT, False),
           Metric('p99', 'p99 ms', MS_FORMAT, False))
#: a plain figure: how the writer batched
BATCH = Metric('batch', 'A entries/write', '{:,.1f}', None)


def broadcast_workloads(quick: bool, payload_bytes: int) -> list[Workload]:
    """Fan-out to 50 and 500 clients, latency at 1,000 msg/s, a saturated
    single-client burst; then each over three namespaces and as many
    streams (``-ns3``)."""
    deliveries = 2_000 if quick else 50_000
    fan_outs = []
    for clients in (50, 500):
        actual = clients // 10 if quick else clients
        fan_outs.append(Broadcast(
            f'fanout{clients}', f'fan-out to {actual} clients',
            (DELIVERIES, BATCH), clients=actual,
            count=-(-deliveries // actual),
            payload_bytes=payload_bytes, peers=ALL_PEERS - {ACKS}))
    rate, seconds = 1000, (1 if quick else 5)
    latency = Broadcast(
        'latency', f'latency at {rate:,} msg/s', (*LATENCY, BATCH),
        clients=1,
        count=rate * seconds, payload_bytes=payload_bytes,
        interval=1 / rate, peers=ALL_PEERS - {'bare-ws'})
    burst = Broadcast(
        'burst', 'saturated single-client burst, end to end',
        (MESSAGES, BATCH),
        clients=1, count=2_000 if quick else 20_000, payload_bytes=16)
    single = [*fan_outs, latency, burst]
    return single + [w.over_namespaces(THREE_NAMESPACES) for w in single]
