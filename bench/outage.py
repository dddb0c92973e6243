"""The workloads where something stops: server B (catch-up after an
outage) or a client of B (memory, with a client that stops reading)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.peers import Peer, Settings, rss_of
from bench.receivers import POLL_SECONDS, Receivers
from bench.workloads import MB_FORMAT, RATE_FORMAT, STALL_SECONDS, \
    Metric, Workload, losses, receivers_warmed_up

MB = 1024 * 1024


class CatchUp(Workload):
    """B is frozen (SIGSTOP) while A writes ``count`` messages, then resumed
    (SIGCONT).

    ``writer``: ``count`` / (request to A -> the stream has them all, from
    XINFO STREAM's entries-added; for pubsub, which has no stream: -> A
    has published them all). ``catchup``: ``count`` / (SIGCONT -> B's
    client has them all); pubsub loses what B missed: n/a, ``arrived``
    says how many came.
    """

    name = 'catchup'
    title = 'catch-up after an outage of B'
    metrics = (Metric('catchup', 'catch-up/s', RATE_FORMAT, True),
               Metric('writer', 'writer/s', RATE_FORMAT, True),
               Metric('arrived', 'arrived', '{:,.0f}', None))
    peers = frozenset({'streams', 'streams@base', 'pubsub', 'node'})
    outage = True
    room = 'catchup'
    notes = ('catch-up/s: from SIGCONT of B to the last receipt; n/a for '
             'pubsub, which has no stream to catch up from (what arrives '
             'had waited in socket buffers)',
             'writer/s: from the request to A until XINFO STREAM '
             'entries-added has them all; pubsub: until A has published '
             'them all')

    def __init__(self, count: int, payload_bytes: int) -> None:
        self.count = count
        self.payload = 'x' * payload_bytes
        # A writes the whole burst before B reads any of it: the outbox
        # and the stream must hold all of it
        self.settings = Settings(maxlen=max(200_000, 2 * count),
                                 outbox_size=max(200_000, 2 * count))

    def describe(self) -> str:
        return (f'1 client of B, {self.count:,} messages of '
                f'{len(self.payload)} bytes written while B is frozen')

    def prepare(self, peer: Peer, log_dir: Path) -> Receivers:
        return receivers_warmed_up(peer, 1, self.room, self.payload,
                                   log_dir, self.name)

    def measure(self, peer: Peer, receivers: Receivers, round_: int) -> dict:
        run = f'{self.name}-{round_}'
        durable = peer.stream is not None
        before = peer.entries_added() if durable else 0
        peer.freeze_b()
        try:
            requested = time.time()
            peer.emit(run, self.count, self.room, self.payload,
                      tracked=not durable)
            written = self._written(peer, run, before)
        finally:
            resumed = time.time()
            peer.thaw_b()
        got = receivers.wait([run], self.count, 2 * STALL_SECONDS)
        complete = got['received'] >= self.count
        return {**losses(got, self.count),
                'writer': (self.count / (written - requested)
                           if written else None),
                'catchup': (self.count / (got['last'] - resumed)
                            if durable and complete else None),
                'arrived': got['received'],
                'frozen_seconds': resumed - requested}

    def _written(self, peer: Peer, run: str, before: int) -> float | None:
        """When A's messages were all written (unix time); None if the
        writer stopped short of it."""
        done, progressed = -1, time.monotonic()
        while True:
            if peer.stream is not None:
                count = peer.entries_added() - before
                finished = time.time() if count >= self.count else None
            else:
                progress = peer.progress(run)
                count, finished = progress['emitted'], progress['finished']
            if finished:
                return finished
            if count != done:
                done, progressed = count, time.monotonic()
            if time.monotonic() - progressed > STALL_SECONDS:
                return None
            # short: the writer's time is only as precise as this
            time.sleep(0.01)


class RssSampler:
    """Samples a process's VmRSS in a thread, every ``period`` s."""

    def __init__(self, pid: int, period: float = 0.2) -> None:
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def now(self) -> float:
        """The RSS now, in MB."""
        return rss_of(self.pid) / MB

    def peak(self, since: float) -> float:
        """The largest RSS sampled since the unix time ``since``, in MB."""
        return max((rss for at, rss in self.samples if at >= since),
                   default=0) / MB

    def series(self, since: float, step: float) -> list[list[float]]:
        """[seconds since ``since``, MB], one every ``step`` s."""
        points, due = [], since
        for at, rss in self.samples:
            if at >= due:
                points.append([round(at - since, 1), round(rss / MB, 1)])
                due += step
        return points

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.samples.append((time.time(), rss_of(self.pid)))


@dataclass
class _Clients:
    """The memory workload's live client, and where a frozen one logs."""

    live: Receivers
    log_dir: Path

    def close(self) -> None:
        self.live.close()


class Memory(Workload):
    """B's RSS while it relays ``total`` messages (A emits them in chunks,
    at most two in flight, so that the stream never trims unread ones) to
    one client; then while a second client is frozen (its process
    SIGSTOPped) and A emits ``rate``/s of 1 KiB for long enough that B
    must drop it at its ping timeout: RSS must level off after that."""

    name = 'memory'
    title = "B's memory: relay, then a frozen client"
    metrics = (Metric('rss_start', 'start MB', MB_FORMAT, None),
               Metric('rss_peak', 'peak MB', MB_FORMAT, False),
               Metric('rss_end', 'end MB', MB_FORMAT, False),
               Metric('relay', 'relay msg/s', RATE_FORMAT, True),
               Metric('dropped_after', 'frozen dropped s', '{:,.1f}', None),
               Metric('growth_after_drop', 'growth after MB', MB_FORMAT,
                      None))
    peers = frozenset({'streams', 'pubsub'})
    room = 'memory'
    notes = ('start/peak/end MB: VmRSS of B before, during and after the '
             'relay; frozen dropped s: from the freeze of the second client '
             'until B dropped it (ping timeout); growth after MB: from '
             'then to the end of the frozen phase',)

    def __init__(self, quick: bool, payload_bytes: int) -> None:
        self.total = 20_000 if quick else 1_000_000
        self.chunk = 5_000 if quick else 20_000
        self.payload = 'x' * payload_bytes
        self.rate = 1000
        # quick: a shorter ping timeout, so that the frozen client is
        # dropped within a smoke run (python-engineio's: 25 + 20 s)
        self.settings = Settings(ping=(2.0, 2.0) if quick else None)
        ping_interval, ping_timeout = self.settings.ping or (25.0, 20.0)
        self.frozen_seconds = ping_interval + ping_timeout + \
            (10 if quick else 20)

    def describe(self) -> str:
        return (f'{self.total:,} messages of {len(self.payload)} bytes '
                f'relayed to 1 client; then a frozen client for '
                f'{self.frozen_seconds:g} s of {self.rate:,} msg/s of 1 KiB')

    def prepare(self, peer: Peer, log_dir: Path) -> _Clients:
        return _Clients(receivers_warmed_up(peer, 1, self.room, self.payload,
                                            log_dir, self.name), log_dir)

    def measure(self, peer: Peer, clients: _Clients, round_: int) -> dict:
        with RssSampler(peer.b_server.pid) as sampler:
            relay = self._relay(peer, clients.live, round_, sampler)
            frozen = self._frozen(peer, clients, round_, sampler)
        # the receivers' busy share of the relay, not of the paced phase
        frozen.pop('busy')
        return {**relay, **frozen,
                'lost': relay['lost'] + frozen.pop('lost'),
                'dup': relay['dup'] + frozen.pop('dup')}

    def _relay(self, peer: Peer, live: Receivers, round_: int,
               sampler: RssSampler) -> dict:
        start, started = sampler.now(), time.time()
        runs: list[str] = []
        received, progressed = 0, time.monotonic()
        while len(runs) * self.chunk < self.total:
            got = live.progress(runs)['received']
            if got != received:
                received, progressed = got, time.monotonic()
            if got >= (len(runs) - 1) * self.chunk:
                runs.append(f'{self.name}-{round_}-{len(runs)}')
                peer.emit(runs[-1], self.chunk, self.room, self.payload)
            elif time.monotonic() - progressed > STALL_SECONDS:
                break  # B stopped relaying: what is missing is lost
            else:
                time.sleep(POLL_SECONDS)
        got = live.wait(runs, self.total, STALL_SECONDS, forget=True)
        return {**losses(got, self.total), 'rss_start': start,
                'rss_peak': sampler.peak(started), 'rss_end': sampler.now(),
                'relay': (got['received'] / (got['last'] - started)
                          if got['last'] else None)}

    def _frozen(self, peer: Peer, clients: _Clients, round_: int,
                sampler: RssSampler) -> dict:
        live = clients.live
        frozen = peer.receivers(1, self.room, clients.log_dir,
                                f'frozen-{round_}')
        try:
            sid = frozen.sids[0]
            frozen.freeze()
            started, at_freeze = time.time(), sampler.now()
            run, count = f'frozen-{round_}', int(self.rate *
                                                 self.frozen_seconds)
            peer.emit(run, count, self.room, 'x' * 1024,
                      interval=1 / self.rate)
            dropped = at_drop = None
            while time.time() - started < self.frozen_seconds:
                if dropped is None and sid not in peer.rooms_of(sid):
                    dropped, at_drop = time.time() - started, sampler.now()
                time.sleep(0.5)
            at_end = sampler.now()
            got = live.wait([run], count, STALL_SECONDS, forget=True)
        finally:
            frozen.close()
        growth = at_end - at_drop if at_drop is not None else None
        return {**losses(got, count), 'frozen_rss_start': at_freeze,
                'frozen_rss_at_drop': at_drop, 'frozen_rss_end': at_end,
                'dropped_after': dropped, 'growth_after_drop': growth,
                # levels off: once the client is dropped, B grows by no
                # more than noise
                'levelled': growth is not None and
                growth <= max(5.0, 0.05 * at_drop),
                'series': sampler.series(started, 5.0)}
