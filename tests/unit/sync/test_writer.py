"""The writer task against an in-memory Redis: every entry written once, in
order, whatever breaks; and no batch retried forever."""
import threading
import time

import pytest
import redis

from sio_redis_streams.sync.writer import StreamWriter
from tests.unit.sync.fakes import FakeRedis, context


@pytest.fixture
def running():
    """Start writers; stop them at the end."""
    started = []

    def start(writer_context, client):
        writer = StreamWriter(writer_context, client)
        thread = threading.Thread(target=writer.run, daemon=True)
        thread.start()
        started.append((writer_context, writer, thread))
        return writer

    yield start
    for writer_context, writer, thread in started:
        writer_context.stopping.set()
        writer.wake()
        thread.join(5)
        assert not thread.is_alive()


def fields(n):
    return {'uid': 'a' * 16, 'nsp': '/', 'type': '3', 'data': str(n)}


def written(client, stream='socket.io'):
    return [int(f[b'data']) for _, f in client.streams.get(stream, [])]


def test_writes_in_order_in_batches(running):
    client = FakeRedis()
    ctx = context(write_batch_size=10)
    writer = running(ctx, client)
    for n in range(95):
        assert writer.submit('socket.io', fields(n))
    assert writer.flush(5)
    assert written(client) == list(range(95))
    assert ctx.stats.snapshot()['entries_written'] == 95


def test_a_broken_reply_neither_loses_nor_repeats_an_entry(running):
    client = FakeRedis()
    client.fail = redis.exceptions.ConnectionError('reply lost')
    client.after_write = True  # the entries are in, the reply is lost
    ctx = context()
    writer = running(ctx, client)
    for n in range(5):
        writer.submit('socket.io', fields(n))
    while client.transactions < 1:
        time.sleep(0.01)
    client.fail = None
    assert writer.flush(5)
    assert written(client) == [0, 1, 2, 3, 4]
    stats = ctx.stats.snapshot()
    assert stats['writer_reconnects'] == 1
    assert stats['resent_after_reconnect'] == 0


def test_a_refused_transaction_is_resent_whole(running):
    client = FakeRedis()
    client.fail = redis.exceptions.ConnectionError('refused')
    ctx = context()
    writer = running(ctx, client)
    for n in range(3):
        writer.submit('socket.io', fields(n))
    while client.transactions < 2:
        time.sleep(0.01)
    client.fail = None
    assert writer.flush(5)
    assert written(client) == [0, 1, 2]
    assert ctx.stats.snapshot()['resent_after_reconnect'] >= 3


def test_an_unexpected_error_drops_the_batch_after_a_few_tries(running):
    """Before, a batch that raised something else than a Redis error was
    retried forever, and the outbox filled behind it."""
    client = FakeRedis()
    client.fail = TypeError('a bug in a client library')
    ctx = context()
    writer = running(ctx, client)
    for n in range(3):
        writer.submit('socket.io', fields(n))
    assert writer.flush(5), 'the batch was retried forever'
    assert ctx.stats.snapshot()['write_errors'] == 3
    client.fail = None
    writer.submit('socket.io', fields(3))
    assert writer.flush(5)
    assert written(client) == [3]


def test_a_waiting_emit_gives_up_as_soon_as_redis_goes_away(running):
    """A full outbox waits for room while Redis is reachable; once the
    writer finds Redis gone, the emit waiting drops at once instead of
    waiting out ``outbox_timeout``."""
    client = FakeRedis()
    client.gate = threading.Event()
    ctx = context(outbox_size=2, outbox_timeout=30)
    writer = running(ctx, client)
    writer.submit('socket.io', fields(0))
    writer.submit('socket.io', fields(1))
    while client.transactions < 1:  # the batch is in flight
        time.sleep(0.01)

    def redis_goes_away():
        time.sleep(0.3)
        client.fail = redis.exceptions.ConnectionError('gone')
        client.gate.set()

    threading.Thread(target=redis_goes_away).start()
    started = time.monotonic()
    assert not writer.submit('socket.io', fields(2))
    assert time.monotonic() - started < 3
    assert ctx.stats.snapshot()['outbox_dropped'] == 1


def test_entries_that_come_while_a_batch_is_out_go_together(running):
    """An emitter that yields after each emit must not meet a writer that
    sends one entry per round trip: what gathers while a batch is out
    waits a moment for more, then goes in one batch."""
    client = FakeRedis()
    client.gate = threading.Event()
    ctx = context(write_batch_size=100)
    writer = running(ctx, client)
    writer.submit('socket.io', fields(0))
    while client.transactions < 1:  # the first goes alone, at once
        time.sleep(0.001)
    for n in range(1, 4):
        writer.submit('socket.io', fields(n))
    client.gate.set()
    deadline = time.monotonic() + 0.0002  # inside the writer's wait
    while time.monotonic() < deadline:
        pass
    writer.submit('socket.io', fields(4))
    assert writer.flush(5)
    assert written(client) == [0, 1, 2, 3, 4]
    assert client.batch_sizes[0] == 1
    assert len(client.batch_sizes) <= 3  # not one transaction each


def test_on_a_cluster_each_transaction_holds_one_stream(running):
    """A MULTI/EXEC must touch one slot, so one stream: the outbox order is
    kept, batches end where the stream changes."""
    client = FakeRedis()
    ctx = context(url='redis+cluster://127.0.0.1:1')
    writer = running(ctx, client)
    client.gate = threading.Event()
    for n, stream in enumerate('ababab'):
        writer.submit(stream, fields(n))
    client.gate.set()
    assert writer.flush(5)
    assert written(client, 'a') == [0, 2, 4]
    assert written(client, 'b') == [1, 3, 5]
    # namespaces of different streams emitting in turn still go in batches
    # (the first entry may go alone: it can find the writer idle)
    assert sum(client.batch_sizes) == 6 and len(client.batch_sizes) <= 3
    keys = [key for key in client.keys if key is not None]
    assert all(a != b for a, b in zip(keys, keys[1:])), keys


def test_a_batch_is_written_once_its_replicas_have_it(running, caplog):
    client = FakeRedis()
    client.replica_acks = [0, 0, 1]  # WAIT times out twice
    ctx = context(replica_acks=1, replica_ack_timeout=0.01)
    writer = running(ctx, client)
    writer.submit('socket.io', fields(0))
    assert writer.flush(5)
    assert written(client) == [0]
    stats = ctx.stats.snapshot()
    assert stats['replica_ack_waits'] == 2 and stats['entries_written'] == 1
    assert client.transactions == 1  # waited for, not written again
    assert any('0 of 1 replicas have the last batch' in r.getMessage()
               for r in caplog.records)


def test_a_primary_lost_before_its_replicas_had_the_batch(running):
    """The batch was written, then the primary failed before any replica
    got it: the promoted replica lacks it, and it is written again, once.
    """
    client = FakeRedis()
    client.replica_acks = [redis.exceptions.ConnectionError('primary died')]
    ctx = context(replica_acks=1)
    writer = running(ctx, client)
    for n in range(3):
        writer.submit('socket.io', fields(n))
    while client.transactions < 1:
        time.sleep(0.01)
    client.streams.clear()  # the promoted replica never had them
    client.replica_acks = [1]
    assert writer.flush(5)
    assert written(client) == [0, 1, 2]
    assert ctx.stats.snapshot()['resent_after_reconnect'] == 3


def test_entries_gone_after_a_failure_are_reported(running, caplog):
    """The primary failed before its replica had the last entries: the
    readers that had not read them cannot know, the writer says it."""
    client = FakeRedis()
    ctx = context()
    writer = running(ctx, client)
    writer.submit('socket.io', fields(0))
    assert writer.flush(5)
    client.streams.clear()  # the promoted replica never had it
    client.fail = redis.exceptions.ConnectionError('primary died')
    writer.submit('socket.io', fields(1))
    while client.transactions < 2:
        time.sleep(0.01)
    client.fail = None
    assert writer.flush(5)
    assert written(client) == [1]
    assert ctx.stats.snapshot()['writes_lost'] == 1
    assert any('up to 1-0 are gone (the stream now ends at 0-0)'
               in r.getMessage() for r in caplog.records)


def test_a_wait_refused_after_the_batch_is_in_does_not_write_it_twice(
        running):
    client = FakeRedis()
    client.replica_acks = [redis.ResponseError('READONLY You can\'t write '
                                               'against a read only replica'),
                           1]
    ctx = context(replica_acks=1)
    writer = running(ctx, client)
    for n in range(3):
        writer.submit('socket.io', fields(n))
    assert writer.flush(5)
    assert written(client) == [0, 1, 2]
    stats = ctx.stats.snapshot()
    assert stats['entries_written'] == 3 and stats['write_errors'] == 0
