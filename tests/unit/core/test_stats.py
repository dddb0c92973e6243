"""The counters an operator reads: every documented counter, starting at
zero, exact under concurrent increments."""
import threading

import pytest

from sio_redis_streams.core.stats import COUNTERS, Stats


def test_every_counter_starts_at_zero():
    assert Stats().snapshot() == dict.fromkeys(COUNTERS, 0)
    assert all(isinstance(text, str) and text for text in COUNTERS.values())


def test_incr():
    stats = Stats()
    stats.incr('gaps')
    stats.incr('entries_read', 5)
    stats.incr('entries_read')
    stats.incr('bad_entries', 0)
    snapshot = stats.snapshot()
    assert (snapshot['gaps'], snapshot['entries_read'],
            snapshot['bad_entries']) == (1, 6, 0)
    assert sum(snapshot.values()) == 7


def test_snapshot_is_a_copy():
    stats = Stats()
    snapshot = stats.snapshot()
    snapshot['gaps'] = 99
    stats.incr('gaps')
    assert stats.snapshot()['gaps'] == 1
    assert snapshot['gaps'] == 99


def test_unknown_counter():
    stats = Stats()
    with pytest.raises(KeyError):
        stats.incr('no_such_counter')
    assert 'no_such_counter' not in stats.snapshot()


def test_concurrent_increments_are_exact():
    stats = Stats()
    names = list(COUNTERS)

    def work(offset):
        for i in range(1000):
            stats.incr(names[(i + offset) % len(names)])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(stats.snapshot().values()) == 8000
