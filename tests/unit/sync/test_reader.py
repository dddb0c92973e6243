"""The reader task against canned XREAD replies: every entry handled once,
in order; malformed entries and failing handlers counted and skipped,
never a reconnection."""
import json
import threading

from sio_redis_streams.core import codec
from sio_redis_streams.core.addressing import BroadcastOptions
from sio_redis_streams.core.messages import Broadcast
from sio_redis_streams.sync.reader import StreamReader
from tests.unit.sync.fakes import context

OTHER = 'b' * 16


def entry(n, **changes):
    fields = codec.encode_entry(Broadcast(OTHER, '/', None, 'e', (n,),
                                          BroadcastOptions()))
    fields.update(changes)
    return (f'{n}-0'.encode(),
            {k.encode(): v.encode() if isinstance(v, str) else v
             for k, v in fields.items() if v is not None})


class CannedRedis:
    """A reader's connection that answers XREAD with the batches given (raw,
    as Redis sends them), then stops the reader; a verified read gets a
    stream state that shows no loss (as Redis < 7)."""

    def __init__(self, ctx, batches):
        self._ctx = ctx
        self._batches = list(batches)
        self.reads_from = []
        self.socket = None

    def execute(self, *commands, key=None):
        assert key == 'socket.io'
        if commands[0] == ('MULTI',):
            inner = commands[1:-1]
            return [b'OK'] + [b'QUEUED'] * len(inner) + [
                [self._reply(command) for command in inner]]
        return [self._reply(command) for command in commands]

    def call(self, command, key=None):
        assert key == 'socket.io'
        return self._reply(command)

    def _reply(self, command):
        if command[0] == 'XINFO':
            return [b'last-generated-id', b'999999-0']
        assert command[0] == 'XREAD'
        self.reads_from.append(command[-1])
        if not self._batches:
            self._ctx.stopping.set()
            return None
        batch = self._batches.pop(0)
        flat = [[i, [x for pair in f.items() for x in pair]] for i, f in batch]
        return [[b'socket.io', flat]]


def read_all(batches, handle, **options):
    ctx = context(**options)
    reader = StreamReader(ctx, 'socket.io', json, handle)
    reader._redis = CannedRedis(ctx, batches)
    reader.position.at_tail(None)
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    return ctx, reader


POISON = [
    dict(type='²'), dict(type='9' * 5000), dict(type='-3'), dict(type=' 3'),
    dict(type='99'), dict(type=None), dict(uid=None), dict(nsp='chat'),
    dict(uid=b'\xff'), dict(data='{"packet":'), dict(data='[' * 50000),
    dict(data='{' + '"a":[' * 5000), dict(data='!!'), dict(data='xA=='),
    dict(data='{"packet":{"type":2,"data":["e"]},"opts":{"flags":[]}}'),
    dict(data='{"packet":{"type":2,"data":[{}]},"opts":{}}'),
]


def test_malformed_entries_are_counted_and_skipped_in_order():
    batches = [[entry(1), entry(2, **POISON[0])],
               [entry(3, **p) for p in POISON[1:]] + [entry(4)]]
    handled = []
    ctx, reader = read_all(batches, lambda m, i: handled.append(m.args[0]))
    assert handled == [1, 4]
    stats = ctx.stats.snapshot()
    assert stats['bad_entries'] == len(POISON)
    assert stats['entries_read'] == 2
    assert stats['reader_reconnects'] == 0
    assert reader.position.last_id == '4-0'


def test_a_failing_handler_is_counted_and_the_next_entry_handled():
    handled = []

    def handle(message, entry_id):
        if message.args[0] == 2:
            raise RuntimeError('app bug')
        handled.append(entry_id)

    ctx, _ = read_all([[entry(1), entry(2), entry(3)]], handle)
    assert handled == ['1-0', '3-0']
    stats = ctx.stats.snapshot()
    assert stats['handler_errors'] == 1
    assert stats['reader_reconnects'] == 0


def test_own_entries_are_skipped_unless_asked():
    own = context().uid
    batch = [entry(1), entry(2, uid=own), entry(3)]
    handled = []
    _, reader = read_all([list(batch)], lambda m, i: handled.append(i))
    assert handled == ['1-0', '3-0']
    assert reader.position.last_id == '3-0'


def test_each_read_continues_after_the_last_entry():
    ctx = context()
    reader = StreamReader(ctx, 'socket.io', json, lambda m, i: None)
    client = CannedRedis(ctx, [[entry(1), entry(2)], [entry(5)]])
    reader._redis = client
    reader.position.at_tail(None)
    reader.run()
    assert client.reads_from == ['0-0', '2-0', '5-0']


def test_the_outage_warning_says_where_reading_will_resume():
    """Before, a reader that never found its starting point (a wrong
    password, say) said it would resume "after None"."""
    ctx = context()
    reader = StreamReader(ctx, 'socket.io', json, lambda m, i: None)
    assert 'None' not in reader._resume()
    assert 'end of the stream' in reader._resume()
    reader.position.last_id = '7-1'
    assert reader._resume() == 'will resume after 7-1'
