"""A reconnect storm: hundreds of official socket.io-client sockets with
connection state recovery lose their transports at once (a load balancer
restart, a network blip) and reconnect together, to the same server or to
the other one, while a server broadcasts a numbered sequence. Every one
must come back as itself with every broadcast once, in order; a client
that did not drop keeps getting the sequence meanwhile."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from tests.e2e.interop.test_recovery import RECOVERY, away, js, sessions
from tests.support.waiting import eventually

pytestmark = [pytest.mark.interop, pytest.mark.cluster]

STORM = 500
# the sequence: 8 s, the storm in its middle; 20/s to 500 clients is what
# one server under test here delivers without falling behind
COUNT, RATE = 160, 20.0
ARTIFACTS = Path(__file__).resolve().parents[3] / 'test-artifacts' / 'storm'

__all__ = ['js']  # a fixture


@pytest.mark.parametrize('back_to', ['same server', 'other server'])
def test_every_client_of_a_reconnect_storm_recovers(
        redis_server, server_factory, client_factory, tcp_proxy_factory, js,
        async_mode, back_to):
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode=async_mode,
                          options={**RECOVERY, 'maxlen': 100_000})
    proxy = tcp_proxy_factory(a.port)
    js.connect_many('s', STORM, proxy.http_url)
    watcher = client_factory(a.url, name='watcher')
    sender = client_factory(b.url, name='sender')
    sender.cmd('emit', event='primer', args=[{'n': 0}])
    eventually(lambda: all(c['numbers'] == [0] for c in
                           js.summary('s', 'primer').values()),
               timeout=30, what='every socket has an offset')

    sender.cmd('emit_sequence', event='seq', count=COUNT,
               interval=1 / RATE)
    time.sleep(COUNT / RATE / 4)
    stormed = time.monotonic()
    away(proxy, redis_server, count=STORM)  # all dropped, sessions stored
    stored = time.monotonic()
    if back_to == 'other server':
        proxy.retarget(b.port)
    proxy.restore()
    eventually(lambda: all(c['connects'] == 2 and c['connected'] for c in
                           js.summary('s', 'seq').values()), timeout=60,
               what='every socket reconnected')
    back = time.monotonic()

    def everyone_back():
        summary = js.summary('s', 'seq')
        return all(c['connected'] and c['connects'] == 2 and
                   c['numbers'][-1:] == [COUNT] for c in summary.values()) \
            and summary

    summary = eventually(everyone_back, timeout=90,
                         what='every socket reconnected and got it all')
    expected = list(range(1, COUNT + 1))
    not_recovered = [n for n, c in summary.items() if not c['recovered']]
    new_sid = [n for n, c in summary.items() if c['sid'] != c['firstSid']]
    wrong = [n for n, c in summary.items() if c['numbers'] != expected]
    assert (len(not_recovered), len(new_sid), len(wrong)) == (0, 0, 0), \
        (not_recovered[:5], new_sid[:5],
         [summary[n]['numbers'][:20] for n in wrong[:3]])
    assert sessions(redis_server) == []

    # the client that stayed got the whole sequence meanwhile, in order
    watcher.wait_for(COUNT, event='seq', timeout=30)
    got = watcher.events('seq')
    assert [e[0]['n'] for e in got] == expected
    latencies = sorted(1000 * (t - e[0]['t']) for e, t in
                       zip(got, watcher.times('seq')))
    report = {
        'mode': async_mode, 'back_to': back_to, 'clients': STORM,
        'recovered': STORM - len(not_recovered),
        'sessions_stored_s': round(stored - stormed, 2),
        'all_reconnected_s': round(back - stored, 2),
        'watcher_latency_ms': {
            'p50': round(statistics.median(latencies), 2),
            'p99': round(latencies[int(len(latencies) * 0.99)], 2),
            'max': round(latencies[-1], 2)},
        'server_stats': {'A': stats_of(watcher), 'B': stats_of(sender)},
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f'{async_mode}-{back_to.replace(" ", "-")}.json') \
        .write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    assert a.is_running and b.is_running


def stats_of(client) -> dict:
    values = client.cmd('stats')
    return {k: values[k] for k in ('reader_reconnects', 'gaps',
                                   'handler_errors', 'messages_dropped')}
