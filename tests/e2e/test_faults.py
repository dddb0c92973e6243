"""Fault injection: Redis killed and restarted, links cut or black-holed,
Redis unreachable for long; real redis-server, proxy and server processes,
in every async mode.

What must hold through every fault: the clients of every server get each
message of a server exactly once and in that server's order (or, when
``maxlen`` trimmed entries nobody had read, a logged and counted gap);
local delivery and request handling never wait for Redis; everything comes
back on its own once Redis is reachable again.
"""
from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.clients import RecordingClient
from tests.support.processes import ServerProcess
from tests.support.waiting import eventually, settle

pytestmark = pytest.mark.cluster

#: Manager options that make the tests short: a quiet XREAD returns after
#: 1 s, a silent socket is given up after 1 s more, heartbeats every second.
FAST: dict[str, Any] = {
    'block_time_ms': 1000,
    'socket_timeout': 1,
    'heartbeat_interval': 1,
    'heartbeat_timeout': 3,
}


def options(**overrides: Any) -> dict[str, Any]:
    return {**FAST, **overrides}


@pytest.fixture
def connect(client_factory) -> Callable[..., RecordingClient]:
    """``client_factory`` with a shorter call: ``connect(url, name)``."""
    return lambda url, name: client_factory(url, name=name)


@pytest.fixture
def two_servers(redis_server, server_factory, connect, async_mode
                ) -> tuple[ServerProcess, ServerProcess, RecordingClient,
                           RecordingClient]:
    """Servers A and B on ``redis_server``, alice on A and bob on B, after
    every earlier message arrived."""
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode=async_mode, options=options())
    alice = connect(a.url, 'alice')
    bob = connect(b.url, 'bob')
    settle(alice, bob)
    return a, b, alice, bob


def no_task_crashed(*servers: ServerProcess) -> None:
    """Every background task of the managers is still alive."""
    for server in servers:
        crashes = re.findall(r'background task .* crashed|heartbeat failed',
                             server.logs(max_chars=10**7))
        assert not crashes, f'{server.name}: {crashes}'


def got_whole_sequence(total: int, *clients: RecordingClient) -> None:
    """Every client got 1..total of ``emit_sequence``, once each, in
    order."""
    for client in clients:
        client.wait_for(total, event='seq', timeout=30)
    settle(*clients)
    for client in clients:
        assert numbers(client, 'seq') == list(range(1, total + 1)), \
            client.name


def healthy_again(a: ServerProcess, b: ServerProcess,
                  alice: RecordingClient, bob: RecordingClient) -> None:
    """No background task died, and the servers hear each other again."""
    no_task_crashed(a, b)
    eventually(sees_each_other(2, alice, bob), what='heartbeats flow again')


def numbers(client: RecordingClient, event: str) -> list[int]:
    """The ``n`` of every ``emit_sequence`` message received, in order."""
    return [args[0]['n'] for args in client.events(event)]


def received_at_least(count: int, event: str) -> Callable[[RecordingClient],
                                                          bool]:
    def predicate(client: RecordingClient) -> bool:
        return len(client.events(event)) >= count
    predicate.__name__ = f'{count}+ x {event!r}'
    return predicate


def stats(client: RecordingClient) -> dict[str, int]:
    """The counters of the manager of ``client``'s server."""
    return client.cmd('stats')


def outbox_drained(client: RecordingClient) -> Callable[[], bool]:
    return lambda: stats(client)['outbox_depth'] == 0


def live_servers(client: RecordingClient) -> int:
    return client.cmd('live_servers')


def sees_each_other(count: int, *clients: RecordingClient
                    ) -> Callable[[], bool]:
    """The heartbeats flow: the server of each client counts ``count``
    live servers."""
    return lambda: all(live_servers(c) == count for c in clients)


# -- 1. redis-server killed and restarted -----------------------------------

def test_redis_killed_and_restarted_mid_sequence(
        redis_server, server_factory, connect, async_mode):
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode=async_mode, options=options())
    alice = connect(a.url, 'alice')
    bob = connect(b.url, 'bob')
    carol = connect(b.url, 'carol')
    settle(alice, bob, carol)

    total = 400
    alice.cmd('emit_sequence', event='seq', count=total, interval=0.01)
    for outage, kill_at in enumerate((50, 250), start=1):
        alice.wait_for(received_at_least(kill_at, 'seq'), timeout=20)
        redis_server.kill()
        # whatever the sequence did meanwhile, the writer must meet the
        # outage: this emit waits in the outbox
        alice.cmd('emit', event='during', args=[outage])
        time.sleep(1.5)
        redis_server.start()
        # both readers and A's writer work again before the next outage
        bob.wait_for(outage, event='during', timeout=20)

    got_whole_sequence(total, alice, bob, carol)
    for client in (alice, bob, carol):
        assert client.events('during') == [(1,), (2,)], client.name

    eventually(outbox_drained(alice), what="A's outbox drains")
    a_stats, b_stats = stats(alice), stats(bob)
    assert a_stats['writer_reconnects'] >= 2, a_stats
    assert b_stats['reader_reconnects'] >= 2, b_stats
    assert a_stats['reader_reconnects'] >= 1, a_stats
    assert b_stats['subscriber_reconnects'] >= 1, b_stats
    assert a_stats['outbox_dropped'] == a_stats['write_errors'] == 0, a_stats
    assert b_stats['gaps'] == b_stats['bad_entries'] == 0, b_stats
    # B's own emits (the settle markers) may still be on their way
    eventually(outbox_drained(bob), what="B's outbox drains")
    healthy_again(a, b, alice, bob)


# -- 2. one server's link to Redis cut or black-holed ----------------------

@pytest.mark.parametrize('fault', ['cut', 'blackhole'])
def test_reader_link_lost_and_restored(
        redis_server, tcp_proxy_factory, server_factory, connect,
        async_mode, fault):
    proxy = tcp_proxy_factory(redis_server.port)
    a, = server_factory(redis_url=redis_server.url, async_mode=async_mode,
                        options=options())
    b, = server_factory(redis_url=proxy.url, async_mode=async_mode,
                        options=options())
    alice = connect(a.url, 'alice')
    bob = connect(b.url, 'bob')
    dan = connect(b.url, 'dan')
    settle(alice, bob, dan)

    total = 300
    alice.cmd('emit_sequence', event='seq', count=total, interval=0.01)
    alice.wait_for(received_at_least(30, 'seq'))
    getattr(proxy, fault)()
    if fault == 'cut':
        time.sleep(3)
    else:
        # nothing says the connection is dead: the reader has to find out
        # through its socket timeout (block_time_ms + socket_timeout)
        eventually(lambda: stats(bob)['reader_reconnects'] >= 1,
                   what="B's reader notices the partition")
    # B is partitioned, not A: A's clients keep getting everything
    alice.wait_for(total, event='seq', timeout=30)
    assert len(bob.events('seq')) < total, 'the fault came too late'
    proxy.restore()

    got_whole_sequence(total, alice, bob, dan)
    b_stats = stats(bob)
    assert b_stats['reader_reconnects'] >= 1, b_stats
    assert b_stats['gaps'] == 0, b_stats
    eventually(outbox_drained(bob), what="B's outbox drains")
    healthy_again(a, b, alice, bob)


# -- 3. Redis unreachable from the emitting server --------------------------

@pytest.mark.parametrize('fault', ['cut', 'blackhole'])
def test_outbox_keeps_messages_while_redis_is_unreachable(
        redis_server, tcp_proxy_factory, server_factory, connect,
        async_mode, fault):
    proxy = tcp_proxy_factory(redis_server.port)
    a, = server_factory(redis_url=proxy.url, async_mode=async_mode,
                        options=options())
    b, = server_factory(redis_url=redis_server.url, async_mode=async_mode,
                        options=options())
    alice = connect(a.url, 'alice')
    bob = connect(b.url, 'bob')
    settle(alice, bob)
    eventually(outbox_drained(alice), what="A's outbox drains")

    getattr(proxy, fault)()
    total = 100
    alice.cmd('emit_sequence', event='seq', count=total, interval=0.005)
    # local delivery does not wait for Redis
    alice.wait_for(total, event='seq')
    assert numbers(alice, 'seq') == list(range(1, total + 1))
    assert stats(alice)['outbox_depth'] == total
    eventually(lambda: stats(alice)['writer_reconnects'] >= 1,
               what="A's writer notices")
    time.sleep(1)  # the writer keeps trying; nothing gets through
    assert stats(alice)['outbox_depth'] == total
    assert bob.events('seq') == []

    proxy.restore()
    bob.wait_for(total, event='seq', timeout=30)
    settle(alice, bob)
    assert numbers(bob, 'seq') == list(range(1, total + 1))
    assert numbers(alice, 'seq') == list(range(1, total + 1))
    eventually(outbox_drained(alice), what="A's outbox drains")
    a_stats = stats(alice)
    assert a_stats['outbox_dropped'] == a_stats['write_errors'] == 0, \
        a_stats
    assert a_stats['entries_written'] >= total, a_stats
    healthy_again(a, b, alice, bob)


@contextlib.contextmanager
def out_of_memory(redis_server) -> Iterator[None]:
    """Redis refuses every command that may use memory (and MULTI)."""
    raw = redis_server.client()
    try:
        raw.config_set('maxmemory-policy', 'noeviction')
        raw.config_set('maxmemory', 1)
        yield
    finally:
        raw.config_set('maxmemory', 0)
        raw.close()


def test_outbox_keeps_messages_while_redis_refuses_writes(
        redis_server, two_servers):
    # Redis reachable but out of memory: every XADD is refused with OOM
    a, b, alice, bob = two_servers
    eventually(outbox_drained(alice), what="A's outbox drains")

    total = 100
    with out_of_memory(redis_server):
        alice.cmd('emit_sequence', event='seq', count=total, interval=0.005)
        alice.wait_for(total, event='seq')
        eventually(lambda: stats(alice)['writer_reconnects'] >= 1,
                   what="A's writer is refused")
        time.sleep(1)  # the writer keeps trying; nothing gets through
        assert stats(alice)['outbox_depth'] == total
        assert bob.events('seq') == []
        assert 'OutOfMemoryError' in a.logs(max_chars=10**7)

    got_whole_sequence(total, alice, bob)
    eventually(outbox_drained(alice), what="A's outbox drains")
    a_stats = stats(alice)
    assert a_stats['outbox_dropped'] == a_stats['write_errors'] == 0, \
        a_stats
    healthy_again(a, b, alice, bob)


# the reader of a server that fell behind checks for trimmed entries with
# MULTI, which Redis refuses when out of memory; the async mode does not
# matter there
@pytest.mark.parametrize('async_mode', ['threading'])
def test_a_server_behind_catches_up_while_redis_is_out_of_memory(
        redis_server, two_servers):
    a, b, alice, bob = two_servers

    total = 350  # several full XREAD batches of read_count=100
    b.send_signal(signal.SIGSTOP)  # B falls behind
    try:
        alice.cmd('emit_sequence', event='seq', count=total, interval=0.001)
        alice.wait_for(total, event='seq')
        eventually(outbox_drained(alice), what="A's outbox drains")
        with out_of_memory(redis_server):
            b.send_signal(signal.SIGCONT)
            bob.wait_for(total, event='seq', timeout=30)
    finally:
        b.send_signal(signal.SIGCONT)
    got_whole_sequence(total, alice, bob)
    assert stats(bob)['gaps'] == 0
    no_task_crashed(a, b)


# -- 4. entries trimmed before a server could read them ---------------------

def trimmed_cluster(redis_factory, server_factory, connect, async_mode,
                    proxy_factory=None):
    """A and B with maxlen=20 on a Redis whose stream nodes hold 4 entries,
    so that MAXLEN ~ 20 keeps 20 to 23 entries; B behind a proxy if
    ``proxy_factory`` is given."""
    redis = redis_factory(extra_args=['--stream-node-max-entries', '4'])
    proxy = proxy_factory(redis.port) if proxy_factory else None
    a, = server_factory(redis_url=redis.url, async_mode=async_mode,
                        options=options(maxlen=20))
    b, = server_factory(redis_url=proxy.url if proxy else redis.url,
                        async_mode=async_mode, options=options(maxlen=20))
    alice, bob = connect(a.url, 'alice'), connect(b.url, 'bob')
    settle(alice, bob)
    return redis, proxy, b, alice, bob


def emit_past_maxlen(redis, alice: RecordingClient, total: int) -> None:
    alice.cmd('emit_sequence', event='seq', count=total, interval=0.001)
    alice.wait_for(total, event='seq')
    eventually(outbox_drained(alice), what="A's outbox drains")
    raw = redis.client()
    try:
        assert raw.xlen('socket.io') < 30  # trimmed, as configured
    finally:
        raw.close()


def check_gap(b: ServerProcess, alice: RecordingClient,
              bob: RecordingClient, total: int) -> None:
    """B got the tail of the sequence, in order, once each, and whatever
    comes next; and it reported the entries it never got."""
    bob.wait_for(lambda c: numbers(c, 'seq')[-1:] == [total], timeout=20)
    got = numbers(bob, 'seq')
    assert got == sorted(set(got)), got
    assert len(got) < total - 100, got  # most were trimmed unread
    alice.cmd('emit', event='after', args=['still here'])
    settle(alice, bob)
    assert bob.events('after') == [('still here',)]
    assert numbers(bob, 'seq') == got
    no_task_crashed(b)
    assert stats(bob)['gaps'] >= 1
    assert 'gap in stream' in b.logs()
    assert 'entries-added' in b.logs()


def test_gap_is_detected_after_entries_were_trimmed(
        redis_factory, tcp_proxy_factory, server_factory, connect,
        async_mode):
    redis, proxy, b, alice, bob = trimmed_cluster(
        redis_factory, server_factory, connect, async_mode,
        tcp_proxy_factory)
    total = 200
    proxy.cut()
    emit_past_maxlen(redis, alice, total)
    proxy.restore()
    check_gap(b, alice, bob, total)


# The same, on the other path of the reader (no reconnection: a full XREAD
# batch triggers the lag check); the async mode does not matter there.
@pytest.mark.parametrize('async_mode', ['threading'])
def test_gap_is_detected_when_a_reader_falls_behind(
        redis_factory, server_factory, connect, async_mode):
    redis, _, b, alice, bob = trimmed_cluster(
        redis_factory, server_factory, connect, async_mode)
    total = 200
    b.send_signal(signal.SIGSTOP)  # B's reader stops reading, stays linked
    try:
        emit_past_maxlen(redis, alice, total)
    finally:
        b.send_signal(signal.SIGCONT)
    check_gap(b, alice, bob, total)


# -- 5. the outbox overflows ------------------------------------------------

def test_full_outbox_drops_new_messages_without_blocking(
        redis_server, tcp_proxy_factory, server_factory, connect,
        async_mode):
    size = 50
    proxy = tcp_proxy_factory(redis_server.port)
    a, = server_factory(redis_url=proxy.url, async_mode=async_mode,
                        options=options(outbox_size=size))
    b, = server_factory(redis_url=redis_server.url, async_mode=async_mode,
                        options=options())
    alice = connect(a.url, 'alice')
    bob = connect(b.url, 'bob')
    settle(alice, bob)
    eventually(outbox_drained(alice), what="A's outbox drains")

    proxy.cut()
    total = size + 30
    for n in range(1, total + 1):
        started = time.monotonic()
        assert alice.cmd('emit', event='o', args=[n], wait=10) == \
            {'ok': True}
        # liveness, not performance: with the writer disconnected a full
        # outbox drops at once instead of waiting outbox_timeout (5 s)
        elapsed = time.monotonic() - started
        assert elapsed < 3, f'emit {n} took {elapsed:.1f} s'
    a_stats = stats(alice)
    assert a_stats['outbox_depth'] == size, a_stats
    assert a_stats['outbox_dropped'] == total - size, a_stats
    logs = a.logs(max_chars=10**7)
    assert logs.count('outbox full') == 1
    assert f'outbox full ({size} entries, Redis unreachable)' in logs
    # local delivery does not depend on the outbox
    assert alice.events('o') == [(n,) for n in range(1, total + 1)]

    proxy.restore()
    bob.wait_for(size, event='o', timeout=30)
    settle(alice, bob)
    assert bob.events('o') == [(n,) for n in range(1, size + 1)]
    eventually(outbox_drained(alice), what="A's outbox drains")
    a_stats = stats(alice)
    assert a_stats['outbox_dropped'] == total - size, a_stats
    assert a.logs(max_chars=10**7).count('outbox full') == 1
    no_task_crashed(a, b)


# -- 6. PUB/SUB requests after a restart ------------------------------------

def test_emit_with_callback_works_again_after_redis_restart(
        redis_server, server_factory, connect, async_mode):
    # a request whose answers were lost stays pending for ack_timeout
    a, b = server_factory(2, redis_url=redis_server.url,
                          async_mode=async_mode,
                          options=options(ack_timeout=3))
    alice = connect(a.url, 'alice')
    bob = connect(b.url, 'bob')

    def call_works(tag: str) -> Callable[[], bool]:
        def works() -> bool:
            # short tries: a call whose request got lost times out
            # (RecordingClient.cmd keeps ``timeout`` for itself)
            answer = alice.client.call(
                'cmd', {'op': 'call', 'event': 'ack_me', 'to': bob.sid(),
                        'args': [tag], 'timeout': 2},
                namespace='/', timeout=10)
            return answer == ['ack', 'bob', tag]
        return works

    eventually(call_works('before'), what='a call before the restart')
    redis_server.kill()
    time.sleep(1)
    redis_server.start()
    eventually(call_works('after'), timeout=15,
               what='a call after the restart')
    assert stats(bob)['subscriber_reconnects'] >= 1
    assert stats(alice)['subscriber_reconnects'] >= 1
    # the requests whose answers were lost around the restart are forgotten
    eventually(lambda: stats(alice)['pending_requests'] == 0,
               what='no pending requests')
    no_task_crashed(a, b)


# -- 7. shutting down without Redis -----------------------------------------

@pytest.mark.parametrize('fault', ['cut', 'blackhole'])
def test_shutdown_without_redis_is_bounded(
        redis_server, tcp_proxy_factory, server_factory, connect,
        async_mode, fault):
    close_timeout = 1
    margin = 7  # below the 10 s after which the test app exits on SIGALRM
    proxy = tcp_proxy_factory(redis_server.port)
    a, = server_factory(redis_url=proxy.url, async_mode=async_mode,
                        options=options(close_timeout=close_timeout))
    alice = connect(a.url, 'alice')
    settle(alice)  # local delivery only: the marker may not be written yet
    eventually(outbox_drained(alice), what="A's outbox drains")

    getattr(proxy, fault)()
    for n in range(3):
        alice.cmd('emit', event='unsent', args=[n])
    eventually(lambda: stats(alice)['writer_reconnects'] >= 1,
               what="A's writer notices")
    assert stats(alice)['outbox_depth'] == 3

    started = time.monotonic()
    status = a.stop(timeout=close_timeout + margin)
    elapsed = time.monotonic() - started
    assert elapsed < close_timeout + margin, f'{elapsed:.1f} s'
    logs = a.logs(max_chars=10**7)
    assert 'closing with 3 entries not written' in logs
    assert 'Socket.IO shutdown failed' not in logs
    assert status == 0, f'exit status {status} after {elapsed:.1f} s'
