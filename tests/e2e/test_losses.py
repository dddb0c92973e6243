"""The losses a stream can still suffer, each reported exactly when it
happens: a stream wiped by a Redis restarted without persistence (whether
a server was cut off or writing at the time), and entries trimmed while a
server was paused."""
from __future__ import annotations

import re
import signal
import time

import pytest

from tests.e2e.test_faults import connect, no_task_crashed, numbers, \
    options, outbox_drained, stats
from tests.support.waiting import eventually, settle

pytestmark = pytest.mark.cluster

__all__ = ['connect']  # a fixture

RESET = re.compile(r'gap in stream socket\.io: the stream (was recreated|'
                   r'no longer exists|lost entries)')


def emitted(client, event, count):
    client.cmd('emit_sequence', event=event, count=count, interval=0.001)
    client.wait_for(count, event=event, timeout=30)
    eventually(outbox_drained(client), what='the outbox drains')


def test_a_wiped_stream_is_reported_by_a_server_that_was_cut_off(
        redis_factory, tcp_proxy_factory, server_factory, connect,
        async_mode):
    """Before, the new stream's later ids hid the wipe from B: it read on
    and never reported the 50 entries it had lost."""
    redis = redis_factory(appendonly=False)
    proxy = tcp_proxy_factory(redis.port)
    a, = server_factory(redis_url=redis.url, async_mode=async_mode,
                        options=options())
    b, = server_factory(redis_url=proxy.url, async_mode=async_mode,
                        options=options())
    alice, bob = connect(a.url, 'alice'), connect(b.url, 'bob')
    settle(alice, bob)
    emitted(alice, 'read', 20)
    bob.wait_for(20, event='read')

    proxy.cut()
    emitted(alice, 'lost', 50)  # B never reads these
    redis.restart()  # empty: no persistence
    eventually(lambda: alice.cmd('emit', event='probe', args=[1]) and
               stats(alice)['outbox_depth'] == 0, timeout=20,
               what="A writes again")
    emitted(alice, 'new', 50)
    proxy.restore()

    bob.wait_for(50, event='new', timeout=30)
    settle(alice, bob)
    assert bob.events('lost') == []
    assert numbers(bob, 'new') == list(range(1, 51))
    for server, client in ((a, alice), (b, bob)):
        assert stats(client)['gaps'] >= 1, server.name
        assert RESET.search(server.logs()), server.name
    no_task_crashed(a, b)


def test_a_wipe_while_both_servers_write_is_reported_by_both(
        redis_factory, server_factory, connect, async_mode):
    redis = redis_factory(appendonly=False)
    a, b = server_factory(2, redis_url=redis.url, async_mode=async_mode,
                          options=options())
    alice, bob = connect(a.url, 'alice'), connect(b.url, 'bob')
    settle(alice, bob)
    total = 600
    for client in (alice, bob):
        client.cmd('emit_sequence', event='seq', count=total,
                   interval=0.005, fields={'from': client.name})
    time.sleep(1)
    redis.kill()
    redis.start()  # empty

    def last_of_both(client):
        return {e[0]['from'] for e in client.events('seq')
                if e[0]['n'] == total} == {'alice', 'bob'}

    for client in (alice, bob):
        eventually(lambda: last_of_both(client), timeout=60,
                   what=f'{client.name} got the end of both sequences')
    eventually(lambda: all(stats(c)['outbox_depth'] == 0
                           for c in (alice, bob)), timeout=30,
               what='both outboxes drain')
    settle(alice, bob)
    for server, client in ((a, alice), (b, bob)):
        for sender in ('alice', 'bob'):
            got = [e[0]['n'] for e in client.events('seq')
                   if e[0]['from'] == sender]
            # what was wiped unread is lost; the rest in order; an entry
            # whose write was cut by the kill is sent again (the writer
            # cannot find it in the new stream), so a server that had read
            # it before the wipe gets it twice
            assert got == sorted(got) and got[-1] == total, \
                (server.name, sender)
            assert len(got) - len(set(got)) <= 2, (server.name, sender)
        assert stats(client)['gaps'] >= 1, server.name
        assert RESET.search(server.logs()), server.name
    no_task_crashed(a, b)


@pytest.mark.parametrize('async_mode', ['threading'])
def test_a_paused_reader_reports_trimmed_entries_at_once(
        redis_factory, server_factory, connect, async_mode):
    """Before, a reader that fell behind the trimming reported the loss
    only once it had caught up, after reading everything that was left."""
    redis = redis_factory(extra_args=['--stream-node-max-entries', '4'])
    maxlen, total = 1000, 5000
    a, b = server_factory(2, redis_url=redis.url, async_mode=async_mode,
                          options=options(maxlen=maxlen))
    alice, bob = connect(a.url, 'alice'), connect(b.url, 'bob')
    settle(alice, bob)
    b.send_signal(signal.SIGSTOP)
    try:
        emitted(alice, 'seq', total)
        time.sleep(1.2)  # longer than the verification interval
    finally:
        b.send_signal(signal.SIGCONT)
    eventually(lambda: numbers(bob, 'seq')[-1:] == [total], timeout=30,
               what='B catches up')
    got = numbers(bob, 'seq')
    assert got == sorted(set(got)) and len(got) < total
    found = re.search(r'gap in stream socket\.io: (\d+) entries after .* '
                      r'only (\d+) remain', b.logs())
    assert found, b.logs()[-2000:]
    lost, remaining = map(int, found.groups())
    # found while most of what was left was still ahead of the reader
    assert remaining >= maxlen // 2, found.group(0)
    assert lost + len(got) == total  # every entry read, or counted lost
    assert stats(bob)['gaps'] == 1
    no_task_crashed(a, b)
