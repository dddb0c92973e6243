"""Restoring a session never holds the stream reader back while Redis is
asked, and saving many sessions takes few round trips."""
import json
import threading

from sio_redis_streams.core import codec
from sio_redis_streams.core.addressing import BroadcastOptions
from sio_redis_streams.core.messages import Broadcast
from sio_redis_streams.core.replay import Session
from sio_redis_streams.sync.reader import StreamReader
from sio_redis_streams.sync.sessions import SessionStore
from tests.unit.sync.fakes import context

OTHER = 'b' * 16
SESSION = Session('sid1', 'pid1', ['sid1', 'room'], {'user': 'bob'})


class FakeCommands:
    """The GET/DEL, SET and XRANGE a session store sends; the replay's
    XRANGE waits for ``release``."""

    def __init__(self, entries):
        self.entries = entries
        self.replaying = threading.Event()
        self.release = threading.Event()
        self.stored = {}
        self.round_trips = 0

    def pipeline(self, transaction=True):
        return FakePipeline(self)

    def xrange(self, stream, start, end, count=100):
        if start == end:  # is the offset still there?
            return [(start.encode(), {})]
        self.replaying.set()
        self.release.wait(5)
        low = codec.entry_id_key(start)
        return [(i, f) for i, f in self.entries
                if codec.entry_id_key(i.decode()) >= low][:count]


class FakePipeline:
    def __init__(self, commands):
        self._commands = commands
        self._replies = []

    def get(self, key):
        self._replies.append(SESSION.to_wire().encode())

    def delete(self, key):
        self._replies.append(1)

    def set(self, key, value, px):
        self._commands.stored[key] = value
        self._replies.append(True)

    def execute(self):
        self._commands.round_trips += 1
        return self._replies


def entry(n, rooms=()):
    message = Broadcast(OTHER, '/', None, 'e', (n,),
                        BroadcastOptions.of(list(rooms)))
    fields = codec.encode_entry(message)
    return (f'{n}-0'.encode(),
            {k.encode(): v.encode() for k, v in fields.items()})


def test_restoring_does_not_hold_the_reader_during_the_replay():
    """Before, the reader's lock was held across the replay's XRANGE
    calls: a reconnect storm stalled every client's stream feed."""
    ctx = context(connection_state_recovery=True)
    commands = FakeCommands([entry(2), entry(3, ['room']), entry(4, ['x'])])
    store = SessionStore(ctx, commands, json)
    reader = StreamReader(ctx, 'socket.io', json, lambda m, i: None)
    reader.position.last_id = '4-0'
    held, result = [], {}
    thread = threading.Thread(target=lambda: result.update(
        restored=store.restore('/', 'pid1', '1-0', reader, held.append,
                               lambda s: None)))
    thread.start()
    assert commands.replaying.wait(2)
    assert reader._lock.acquire(timeout=1), 'the reader is held back'
    reader._lock.release()
    commands.release.set()
    thread.join(5)
    assert held == [SESSION]
    assert result['restored'].missed == [['e', 2, '2-0'], ['e', 3, '3-0']]


def test_many_sessions_are_stored_in_a_few_round_trips():
    """Before, every dropping socket stored its session with a SET of its
    own, each on a pooled connection: a storm ran out of connections."""
    ctx = context(connection_state_recovery=True)
    commands = FakeCommands([])
    store = SessionStore(ctx, commands, json)
    store.save([Session(f's{i}', f'p{i}', [f's{i}']) for i in range(1200)])
    store.store_queued()
    assert len(commands.stored) == 1200
    assert commands.round_trips == 3
