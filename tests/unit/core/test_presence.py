"""The table of live servers built from what is heard on PUB/SUB, its
expiry, and the check that this server still hears its own heartbeats."""
import pytest

from sio_redis_streams.core.messages import AdapterClose, Broadcast, \
    Heartbeat, InitialHeartbeat
from sio_redis_streams.core.presence import Presence

ME = 'me'


def presence(interval=1.0, timeout=3.0):
    return Presence(ME, interval, timeout)


def test_heard_others():
    table = presence()
    assert table.heard(Heartbeat('A', '/'), now=100) is False
    assert table.heard(InitialHeartbeat('B', '/'), now=100) is True
    assert table.heard(Broadcast('C', '/chat', None, 'e'), now=100) is False
    assert table.live_count('/', now=100) == 3
    assert table.live_count('/chat', now=100) == 2
    assert table.live_count('/other', now=100) == 1
    assert table.namespaces_tracked == 2


def test_own_messages_do_not_count():
    table = presence()
    assert table.heard(InitialHeartbeat(ME, '/'), now=100) is False
    assert table.heard(Heartbeat(ME, '/'), now=100) is False
    assert table.heard(AdapterClose(ME, '/'), now=100) is False
    assert table.live_count('/', now=100) == 1
    assert table.namespaces_tracked == 0


def test_adapter_close_forgets_the_server():
    table = presence()
    table.heard(Heartbeat('A', '/'), now=100)
    table.heard(Heartbeat('B', '/'), now=100)
    assert table.heard(AdapterClose('A', '/'), now=101) is False
    assert table.live_count('/', now=101) == 2
    table.heard(AdapterClose('B', '/'), now=101)
    assert table.live_count('/', now=101) == 1
    assert table.namespaces_tracked == 0


def test_adapter_close_of_unknown_server_adds_nothing():
    table = presence()
    table.heard(AdapterClose('A', '/nowhere'), now=100)
    table.heard(Heartbeat('B', '/'), now=100)
    table.heard(AdapterClose('A', '/'), now=100)
    assert table.namespaces_tracked == 1
    assert table.live_count('/', now=100) == 2


@pytest.mark.parametrize('now,count', [
    (100, 3), (102.9, 3), (103, 2), (104.9, 2), (105, 1),
])
def test_live_count_horizon(now, count):
    table = presence(timeout=3)
    table.heard(Heartbeat('A', '/'), now=100)
    table.heard(Heartbeat('B', '/'), now=102)
    assert table.live_count('/', now=now) == count


def test_heard_again_stays_alive():
    table = presence(timeout=3)
    table.heard(Heartbeat('A', '/'), now=100)
    table.heard(Heartbeat('A', '/'), now=102)
    table.expire(now=104)
    assert table.live_count('/', now=104) == 2


def test_expire_removes_silent_servers_and_empty_namespaces():
    table = presence(timeout=3)
    table.heard(Heartbeat('A', '/'), now=100)
    table.heard(Heartbeat('B', '/'), now=102)
    table.heard(Heartbeat('A', '/chat'), now=100)
    table.expire(now=103)
    assert table.namespaces_tracked == 1
    assert table.live_count('/', now=103) == 2
    assert table.live_count('/chat', now=100) == 1
    table.expire(now=105)
    assert table.namespaces_tracked == 0


def test_table_shrinks_back_after_many_namespaces():
    table = presence(timeout=3)
    for i in range(5000):
        table.heard(InitialHeartbeat(f'server{i % 7}', f'/ns{i}'), now=100)
    assert table.namespaces_tracked == 5000
    table.expire(now=102)
    assert table.namespaces_tracked == 5000
    table.expire(now=103)
    assert table.namespaces_tracked == 0
    assert table.live_count('/ns1', now=103) == 1


def beats(table, schedule, start=100.0):
    """Call check_own once a second from ``start``; ``schedule`` is a list
    of (published, subscribed, heard back) for each beat."""
    results = []
    for i, (published, subscribed, heard) in enumerate(schedule):
        now = start + i
        results.append(table.check_own(published, subscribed, now=now))
        if heard:
            table.heard(Heartbeat(ME, '/'), now=now + 0.01)
    return results


def test_own_heartbeats_heard_back():
    table = presence(interval=1, timeout=3)
    assert beats(table, [(True, True, True)] * 10) == [False] * 10


def test_own_heartbeats_lost_after_the_timeout():
    """Three beats (3 s at 1 s) published while subscribed and not heard
    back: the subscription is lost. The count then starts again."""
    table = presence(interval=1, timeout=3)
    results = beats(table, [(True, True, True)] + [(True, True, False)] * 7)
    assert results == [False, False, False, False, True, False, False, True]


LOST, HEARD = (True, True, False), (True, True, True)


@pytest.mark.parametrize('interruption,expected', [
    # not subscribed at a beat: the count starts again from there
    ((True, False, False), [False] * 5 + [True, False]),
    # Redis did not take a beat: it is not expected back at the next one
    ((False, True, False), [False] * 6 + [True]),
    # the beat was heard back
    (HEARD, [False] * 6 + [True]),
])
def test_own_heartbeat_count_starts_again(interruption, expected):
    table = presence(interval=1, timeout=3)
    assert beats(table, [LOST] * 2 + [interruption] + [LOST] * 4) == \
        expected


def test_longer_timeout_needs_more_beats():
    table = presence(interval=0.5, timeout=2)
    assert beats(table, [LOST] * 6) == [False] * 4 + [True, False]


def test_own_initial_heartbeat_is_not_a_heartbeat_heard_back():
    table = presence(interval=1, timeout=2)
    assert table.check_own(True, True, now=100) is False
    table.heard(InitialHeartbeat(ME, '/'), now=100.5)
    assert table.check_own(True, True, now=101) is False
    assert table.check_own(True, True, now=102) is True


def test_the_table_is_bounded(monkeypatch):
    """A peer announcing endless server ids fills the table to its bound,
    no further; servers already known stay fresh, and room comes back as
    servers leave or expire."""
    monkeypatch.setattr('sio_redis_streams.core.presence.MAX_TRACKED', 50)
    table = presence()
    for n in range(80):
        table.heard(Heartbeat(f'peer{n}', '/'), now=100)
    assert (table.servers_tracked, table.untracked) == (50, 30)
    assert table.heard(InitialHeartbeat('peer3', '/'), now=101) is True
    assert table.live_count('/', now=103.5) == 2  # only peer3 is fresh
    table.heard(AdapterClose('peer4', '/'), now=101)
    assert table.servers_tracked == 49
    table.expire(now=103.5)
    assert table.servers_tracked == 1
    table.heard(Heartbeat('newcomer', '/'), now=103.5)
    assert table.live_count('/', now=103.5) == 3
