"""The recovery bookkeeping of one server: private ids, sessions being
restored, replays handed out once, and packets held back for a socket until
its replay was sent (also under concurrent use)."""
import sys
import threading

import pytest

from sio_redis_streams.core.addressing import BroadcastOptions
from sio_redis_streams.core.recovery import RecoveryBook, Restored
from sio_redis_streams.core.replay import Session

NSP = '/chat'


def session(sid='s1', rooms=('s1', 'r1')):
    return Session(sid, f'pid-{sid}', list(rooms), {'user': sid})


def test_pids():
    book = RecoveryBook()
    assert book.pid_of(NSP, 's1') is None
    book.set_pid(NSP, 's1', 'p1')
    book.set_pid('/', 's1', 'p2')
    assert book.pid_of(NSP, 's1') == 'p1'
    assert book.pid_of('/', 's1') == 'p2'
    book.forget(NSP, 's1')
    assert book.pid_of(NSP, 's1') is None
    assert book.pid_of('/', 's1') == 'p2'


def test_restoring_is_taken_once():
    book = RecoveryBook()
    restored = Restored(session(), [['e', '1-0']])
    book.restoring('eio1', NSP, restored)
    assert book.take_restoring('eio1', '/') is None
    assert book.take_restoring('eio2', NSP) is None
    assert book.take_restoring('eio1', NSP) is restored
    assert book.take_restoring('eio1', NSP) is None


def test_restored_replay_is_taken_once():
    book = RecoveryBook()
    missed = [['a', 1, '1-0'], ['b', '1-1']]
    assert not book.is_recovered(NSP, 's1')
    assert book.take_replay(NSP, 's1') is None
    book.restored(NSP, 's1', Restored(session(), missed))
    assert book.is_recovered(NSP, 's1')
    assert not book.is_recovered('/', 's1')
    assert book.pid_of(NSP, 's1') == 'pid-s1'
    assert book.take_replay(NSP, 's1') == missed
    assert book.take_replay(NSP, 's1') is None
    assert book.is_recovered(NSP, 's1')


def test_restored_with_nothing_missed():
    book = RecoveryBook()
    book.restored(NSP, 's1', Restored(session()))
    assert book.take_replay(NSP, 's1') == []
    assert book.take_replay(NSP, 's1') is None


def test_forget():
    book = RecoveryBook()
    book.restored(NSP, 's1', Restored(session(), [['e', '1-0']]))
    book.hold(NSP, session())
    book.forget(NSP, 's1')
    assert not book.is_recovered(NSP, 's1')
    assert book.take_replay(NSP, 's1') is None
    assert book.pid_of(NSP, 's1') is None
    assert book.divert(NSP, BroadcastOptions.of(), ['e']) == set()
    book.forget(NSP, 'unknown')


def test_divert_by_the_session_rooms():
    """A held socket gets what its session's rooms receive, although it has
    not joined these rooms yet."""
    book = RecoveryBook()
    book.hold(NSP, session('s1', ['s1', 'r1']))
    book.hold(NSP, session('s2', ['s2', 'r2']))
    assert book.divert(NSP, BroadcastOptions.of(), ['all']) == {'s1', 's2'}
    assert book.divert(NSP, BroadcastOptions.of('r1'), ['r1']) == {'s1'}
    assert book.divert(NSP, BroadcastOptions.of('s2'), ['s2']) == {'s2'}
    assert book.divert(NSP, BroadcastOptions.of(None, 'r1'),
                       ['not-r1']) == {'s2'}
    assert book.divert(NSP, BroadcastOptions.of('r3'), ['r3']) == set()
    assert book.divert('/', BroadcastOptions.of(), ['other']) == set()
    sent = []
    book.flush(NSP, 's1', sent.append)
    assert sent == [['all'], ['r1']]
    sent.clear()
    book.flush(NSP, 's2', sent.append)
    assert sent == [['all'], ['s2'], ['not-r1']]


def test_flush_sends_first_then_held_and_stops_holding():
    book = RecoveryBook()
    book.hold(NSP, session())
    book.divert(NSP, BroadcastOptions.of(), ['held', 1])
    book.divert(NSP, BroadcastOptions.of('r1'), ['held', 2])
    sent = []
    book.flush(NSP, 's1', sent.append,
               first=[['missed', 1, '1-0'], ['missed', 2, '1-1']])
    assert sent == [['missed', 1, '1-0'], ['missed', 2, '1-1'],
                    ['held', 1], ['held', 2]]
    assert book.divert(NSP, BroadcastOptions.of(), ['late']) == set()
    sent.clear()
    book.flush(NSP, 's1', sent.append, first=[['again']])
    assert sent == [['again']]


def test_flush_can_call_back_into_the_book():
    book = RecoveryBook()
    book.hold(NSP, session())
    book.divert(NSP, BroadcastOptions.of(), ['held'])
    sent = []

    def send(packet):
        sent.append((packet, book.pid_of(NSP, 's1'),
                     book.divert(NSP, BroadcastOptions.of(), ['new'])))

    book.flush(NSP, 's1', send)
    assert sent == [(['held'], None, set())]


def test_release_drops_held_packets():
    book = RecoveryBook()
    book.hold(NSP, session('s1'))
    book.hold(NSP, session('s2'))
    book.divert(NSP, BroadcastOptions.of(), ['dropped'])
    book.release(NSP, 's1')
    sent = []
    book.flush(NSP, 's1', sent.append)
    assert sent == []
    assert book.divert(NSP, BroadcastOptions.of(), ['kept']) == {'s2'}
    book.release(NSP, 's2')
    book.release(NSP, 's2')
    assert book.divert(NSP, BroadcastOptions.of(), ['none']) == set()


@pytest.fixture
def fast_switching():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_concurrent_hold_divert_flush_forget(fast_switching):
    """Several threads hold, divert, flush and forget at once: every packet
    diverted to the held socket ``s1`` is flushed exactly once, in order,
    after the replay sent first."""
    book = RecoveryBook()
    rounds = 300
    errors = []
    diverted = {}  # thread -> packets diverted to s1, in order
    flushed = []
    start = threading.Barrier(5)

    def run(body):
        def target():
            try:
                start.wait()
                body()
            except Exception as exc:  # reported below
                errors.append(exc)
        return threading.Thread(target=target)

    def holder():
        for i in range(rounds):
            book.hold(NSP, session('s1', ['s1', 'r1']))
            book.restored(NSP, 's1', Restored(session('s1'),
                                              [['missed', i]]))
            book.flush(NSP, 's1', flushed.append,
                       first=book.take_replay(NSP, 's1'))

    def diverter(name):
        def body():
            mine = diverted[name] = []
            opts = BroadcastOptions.of(['r1', 'r2'])
            for i in range(rounds):
                packet = [name, i]
                if 's1' in book.divert(NSP, opts, packet):
                    mine.append(packet)
                book.divert('/', opts, ['elsewhere', i])
        return body

    def other_sockets():
        for i in range(rounds):
            sid = f'x{i % 3}'
            book.hold(NSP, session(sid, [sid, 'r2']))
            book.set_pid(NSP, sid, 'p')
            if i % 2:
                book.forget(NSP, sid)
            else:
                book.release(NSP, sid)
            book.forget(NSP, 'never-held')

    threads = [run(holder), run(diverter('a')), run(diverter('b')),
               run(other_sockets), run(diverter('c'))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    book.flush(NSP, 's1', flushed.append)  # nothing is held any longer
    assert [p for p in flushed if p[0] == 'missed'] == \
        [['missed', i] for i in range(rounds)]
    for name, packets in diverted.items():
        assert [p for p in flushed if p[0] == name] == packets
    assert len(flushed) == rounds + sum(map(len, diverted.values()))
    assert book.divert(NSP, BroadcastOptions.of(), ['end']) <= \
        {'x0', 'x1', 'x2'}
